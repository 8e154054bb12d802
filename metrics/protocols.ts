/**
 * Clip protocols: which frames of which videos are compared (fvd-kvd.md section 2).
 *
 * - fvd16 / fvd128: 2048 real vs 2048 generated clips of 16 / 128 consecutive frames
 *   (StyleGAN-V `fvd2048_16f`, `fvd2048_128f`); fvd128-subsample8: 16 frames taking every 8th
 *   (`fvd2048_128f_subsample8f`).
 * - Real clips: one per video; videos shorter than the clip span are discarded; selection
 *   'first' takes the first N videos in sorted order (StyleGAN-V), 'random' a seeded random N;
 *   each clip starts at a seeded random offset (StyleGAN-V uses Python's unseeded random).
 * - Generated clips: the first frames of each video (StyleGAN-V `--fake_data_path` behaviour).
 * - Windows: frames [k W, (k + 1) W) of every generated video, for FVD along long videos.
 */
import { Rng } from '../lib/nn/rng';

export type RealSelection = 'first' | 'random';

export interface ClipProtocol {
  /** Protocol name as reported ('fvd16', 'fvd128', 'fvd128-subsample8', 'custom'). */
  name: string;
  /** Frames per clip fed to the extractor. */
  frames: number;
  /** Step between the clip's frames (1 = consecutive). */
  stride: number;
  numReal: number;
  numFake: number;
  realSelection: RealSelection;
  /** Seed of the real-clip draw (run r uses seed + r). */
  seed: number;
}

export const PROTOCOLS: Record<string, Omit<ClipProtocol, 'seed' | 'realSelection'>> = {
  fvd16: { name: 'fvd16', frames: 16, stride: 1, numReal: 2048, numFake: 2048 },
  fvd128: { name: 'fvd128', frames: 128, stride: 1, numReal: 2048, numFake: 2048 },
  'fvd128-subsample8': { name: 'fvd128-subsample8', frames: 16, stride: 8, numReal: 2048, numFake: 2048 },
};

/** One clip: frames start, start + stride, ..., of video `video`. */
export interface ClipRef {
  video: number;
  start: number;
}

/** Frames spanned by a clip. */
export function clipSpan(frames: number, stride: number): number {
  return (frames - 1) * stride + 1;
}

export interface ClipSelection {
  clips: ClipRef[];
  /** Videos skipped because they were shorter than the clip span. */
  discarded: number;
  /** Requested count, when fewer eligible videos existed. */
  shortfall?: { requested: number; available: number };
}

/**
 * Real clips: one per eligible video (length >= span), the first N (or a random N) videos, a
 * uniformly random start in [0, length - span] each. `lengths` gives each video's frame count.
 */
export function selectRealClips(lengths: readonly number[], p: ClipProtocol, run = 0): ClipSelection {
  validateProtocol(p);
  const span = clipSpan(p.frames, p.stride);
  const rng = new Rng(p.seed + run);
  const eligible: number[] = [];
  lengths.forEach((len, i) => {
    if (len >= span) eligible.push(i);
  });
  const discarded = lengths.length - eligible.length;
  let chosen: number[];
  if (p.realSelection === 'first') {
    chosen = eligible.slice(0, p.numReal);
  } else {
    const perm = rng.fork('videos').permutation(eligible.length);
    chosen = perm.slice(0, p.numReal).map((k) => eligible[k]);
  }
  const offsets = rng.fork('offsets');
  const clips = chosen.map((video) => ({ video, start: offsets.int(0, lengths[video] - span) }));
  const out: ClipSelection = { clips, discarded };
  if (chosen.length < p.numReal) out.shortfall = { requested: p.numReal, available: chosen.length };
  return out;
}

/** Generated clips: the first `span` frames of the first N videos long enough. */
export function selectFakeClips(lengths: readonly number[], p: ClipProtocol): ClipSelection {
  validateProtocol(p);
  const span = clipSpan(p.frames, p.stride);
  const clips: ClipRef[] = [];
  let discarded = 0;
  for (let i = 0; i < lengths.length && clips.length < p.numFake; i++) {
    if (lengths[i] >= span) clips.push({ video: i, start: 0 });
    else discarded++;
  }
  const out: ClipSelection = { clips, discarded };
  if (clips.length < p.numFake) out.shortfall = { requested: p.numFake, available: clips.length };
  return out;
}

/** Window k of every generated video: frames [k W, (k + 1) W) (stride 1), first N videos that have it. */
export function selectWindowClips(lengths: readonly number[], window: number, k: number, numFake: number): ClipSelection {
  if (!Number.isInteger(window) || window < 1) throw new Error(`window must be a positive integer, got ${window}`);
  const clips: ClipRef[] = [];
  let discarded = 0;
  for (let i = 0; i < lengths.length && clips.length < numFake; i++) {
    if (lengths[i] >= (k + 1) * window) clips.push({ video: i, start: k * window });
    else discarded++;
  }
  return { clips, discarded };
}

/** Number of complete windows in the shortest of the first `numFake` videos. */
export function windowCount(lengths: readonly number[], window: number, numFake: number): number {
  const used = lengths.slice(0, numFake);
  if (used.length === 0) return 0;
  return Math.floor(Math.min(...used) / window);
}

export function validateProtocol(p: ClipProtocol): void {
  const ints: [string, number, number][] = [
    ['frames', p.frames, 1],
    ['stride', p.stride, 1],
    ['numReal', p.numReal, 2],
    ['numFake', p.numFake, 2],
  ];
  for (const [k, v, min] of ints) if (!Number.isInteger(v) || v < min) throw new Error(`clip protocol: ${k} must be an integer >= ${min}, got ${v}`);
  if (p.realSelection !== 'first' && p.realSelection !== 'random') throw new Error(`clip protocol: realSelection must be 'first' or 'random', got '${String(p.realSelection)}'`);
  if (!Number.isFinite(p.seed)) throw new Error(`clip protocol: seed must be a number, got ${p.seed}`);
}
