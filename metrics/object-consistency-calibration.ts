/**
 * Calibration of the object-consistency reading (metrics/object-consistency.ts): real clips of
 * the synthetic shapes family, and the same clips corrupted in the ways a bad generator fails
 * (frames shuffled in time, two videos spliced, heavy blur, heavy noise). Used by
 * `lvdm consistency --calibrate` and the tests; the numbers are in metrics/OBJECT-CONSISTENCY.md.
 */
import { Rng } from '../lib/nn/rng';
import { renderSyntheticFrames, SyntheticDataset, syntheticVideoInfo } from '../data/synthetic';
import { clipConsistency, ConsistencyOptions, ConsistencyTest, objectConsistency } from './object-consistency';
import { isRegularOutline, SHAPE_KINDS, type ShapeKind } from './shape-kind';

export type Corruption = 'real' | 'shuffled' | 'spliced' | 'blurred' | 'noisy';
export const CORRUPTIONS: readonly Corruption[] = ['real', 'shuffled', 'spliced', 'blurred', 'noisy'];

export interface ClipSet {
  /** [n, frames, size, size, 3] uint8 */
  data: Uint8Array;
  shape: [number, number, number, number, number];
}

/** `n` real shapes clips (videos 0..n-1 of content seed `seed`, window starts drawn from Rng(seed)). */
export function realShapesClips(n: number, opts: { seed?: number; frames?: number; size?: number } = {}): ClipSet {
  const seed = opts.seed ?? 0;
  const ds = new SyntheticDataset({ family: 'shapes', size: n, frames: opts.frames ?? 16, height: opts.size ?? 32, width: opts.size ?? 32, seed });
  const rng = new Rng(seed).fork('object-consistency-windows');
  const clipLen = ds.frames * ds.height * ds.width * 3;
  const data = new Uint8Array(n * clipLen);
  for (let i = 0; i < n; i++) data.set(ds.clipAt(i, rng.int(0, ds.videoLength - ds.span())).video, i * clipLen);
  return { data, shape: [n, ds.frames, ds.height, ds.width, 3] };
}

/** Separable Gaussian blur of one frame [H, W, 3] (replicate edges). */
function blurFrame(src: Uint8Array, off: number, h: number, w: number, sigma: number, dst: Uint8Array): void {
  const r = Math.ceil(3 * sigma);
  const k: number[] = [];
  let ks = 0;
  for (let i = -r; i <= r; i++) {
    k.push(Math.exp(-0.5 * (i / sigma) ** 2));
    ks += k[k.length - 1];
  }
  const tmp = new Float64Array(h * w * 3);
  const at = (v: number, n: number): number => Math.min(n - 1, Math.max(0, v));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let i = -r; i <= r; i++) s += k[i + r] * src[off + (y * w + at(x + i, w)) * 3 + c];
        tmp[(y * w + x) * 3 + c] = s / ks;
      }
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let i = -r; i <= r; i++) s += k[i + r] * tmp[(at(y + i, h) * w + x) * 3 + c];
        dst[off + (y * w + x) * 3 + c] = Math.round(s / ks);
      }
}

export interface CorruptionOptions {
  /** Gaussian blur sigma of 'blurred', px at 32 x 32 (default 2.5; scales with the frame size). */
  blurSigma?: number;
  /** Noise std of 'noisy' in 0-255 units (default 60). */
  noiseStd?: number;
}

/**
 * The clips corrupted: 'shuffled' permutes each clip's frames (seeded, never the identity),
 * 'spliced' takes the first half of the frames from clip i and the rest from clip i + 1,
 * 'blurred' blurs every frame (Gaussian, `blurSigma`), 'noisy' adds Gaussian noise
 * (`noiseStd`), clipped to [0, 255]. 'real' copies.
 */
export function corrupt(set: ClipSet, kind: Corruption, seed = 0, opts: CorruptionOptions = {}): ClipSet {
  const sigma = opts.blurSigma ?? 2.5;
  const std = opts.noiseStd ?? 60;
  if (!(sigma > 0) || !(std >= 0)) throw new Error(`corrupt: blurSigma must be > 0 and noiseStd >= 0, got ${sigma} and ${std}`);
  const [n, t, h, w] = set.shape;
  const fsz = h * w * 3;
  const clipLen = t * fsz;
  const src = set.data;
  const out = new Uint8Array(src.length);
  const rng = new Rng(seed).fork(`object-consistency-${kind}`);
  for (let i = 0; i < n; i++) {
    const off = i * clipLen;
    if (kind === 'real') out.set(src.subarray(off, off + clipLen), off);
    else if (kind === 'shuffled') {
      let perm = rng.permutation(t);
      while (perm.every((p, j) => p === j)) perm = rng.permutation(t);
      perm.forEach((p, j) => out.set(src.subarray(off + p * fsz, off + (p + 1) * fsz), off + j * fsz));
    } else if (kind === 'spliced') {
      const other = ((i + 1) % n) * clipLen;
      const half = Math.floor(t / 2) * fsz;
      out.set(src.subarray(off, off + half), off);
      out.set(src.subarray(other + half, other + clipLen), off + half);
    } else if (kind === 'blurred') {
      for (let f = 0; f < t; f++) blurFrame(src, off + f * fsz, h, w, (sigma * Math.min(h, w)) / 32, out);
    } else {
      for (let j = off; j < off + clipLen; j++) out[j] = Math.min(255, Math.max(0, Math.round(src[j] + std * rng.normal())));
    }
  }
  return { data: out, shape: set.shape };
}

export interface CalibrationRow {
  set: Corruption;
  clips: number;
  fraction: number;
  /** Clips that failed each test first. */
  failures: Record<ConsistencyTest, number>;
}

/** Scores `n` real shapes clips and their corruptions. */
export function calibrate(n: number, opts: { seed?: number; frames?: number; size?: number; consistency?: ConsistencyOptions } & CorruptionOptions = {}): CalibrationRow[] {
  const real = realShapesClips(n, opts);
  return CORRUPTIONS.map((kind) => {
    const set = corrupt(real, kind, opts.seed ?? 0, opts);
    const r = objectConsistency(set.data, set.shape, opts.consistency);
    return { set: kind, clips: n, fraction: r.fraction, failures: r.failures };
  });
}

export interface KindConfusionRow {
  family: 'shapes' | 'shapes-large';
  /** The drawn kind of the clip's only shape. */
  truth: ShapeKind;
  clips: number;
  /** How many clips read as each kind (and as none: no object found). */
  read: Record<ShapeKind | 'none', number>;
  /** How many clips' outlines are regular (shape-kind.ts isRegularOutline). */
  regular: number;
}

/**
 * The shape-kind reading (shape-kind.ts) on real clips whose video holds a single shape, so the
 * truth is known: the first `n` such videos of content seed `seed` (16 frames from frame 0) of
 * each shapes family, read by objectConsistency's tracker.
 */
export function kindConfusion(n: number, opts: { seed?: number; size?: number } = {}): KindConfusionRow[] {
  const size = opts.size ?? 32;
  const rows: KindConfusionRow[] = [];
  for (const family of ['shapes', 'shapes-large'] as const) {
    const byKind = new Map<ShapeKind, KindConfusionRow>();
    for (const truth of SHAPE_KINDS) byKind.set(truth, { family, truth, clips: 0, read: { disc: 0, square: 0, triangle: 0, none: 0 }, regular: 0 });
    let seen = 0;
    for (let index = 0; seen < n; index++) {
      const spec = { family, seed: opts.seed ?? 0, index, height: size, width: size };
      const info = syntheticVideoInfo(spec);
      if (info.caption.includes(' and ')) continue; // two or three shapes: the tracked one's kind is not known
      const c = clipConsistency(renderSyntheticFrames(spec, 0, 16), [16, size, size, 3]);
      const row = byKind.get(info.className as ShapeKind)!;
      row.clips++;
      row.read[c.kind ?? 'none']++;
      if (isRegularOutline(c.outline)) row.regular++;
      seen++;
    }
    rows.push(...byKind.values());
  }
  return rows;
}
