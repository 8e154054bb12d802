/**
 * Object consistency of video files: the sample sets the experiment runner and `lvdm sample`
 * write (`videos.npz`, an N x T x H x W x 3 uint8 array; float arrays in a stated range also
 * work) or a folder of video files (decoded with ffmpeg). Videos are read one at a time; long
 * videos can be cut into consecutive windows of `window` frames, each judged as one clip.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openNpyArray } from '../lib/io/npy';
import { RgbImage, videoGrid } from '../lib/io/image';
import { displayScale, upscaleNearest } from '../lib/autoencoder/outputs';
import { openVideoSource, videoArrayKey } from './videos';
import { isPolygon, isRegularOutline } from './shape-kind';
import { CONSISTENCY_DEFAULTS, ClipConsistency, ConsistencyOptions, ConsistencyResult, ValueRange, clipBytes, clipConsistency, summarizeConsistency } from './object-consistency';

export interface VideoConsistencyOptions extends ConsistencyOptions {
  /** The .npz member holding the videos (default 'videos', else the only 5-D array). */
  key?: string;
  /** Judge consecutive windows of this many frames of every video (default: each whole video). */
  window?: number;
  /** Keep the first `keepClips` clips as uint8 (`VideoConsistency.shown`) for a contact sheet (default 0). */
  keepClips?: number;
}

/** A judged clip kept for display: frames [T, H, W, 3] uint8. */
export interface ShownClip {
  key: string;
  frames: Uint8Array;
  shape: [number, number, number, number];
  verdict: ClipConsistency;
}

export interface VideoConsistency extends ConsistencyResult {
  /** The file or folder read. */
  source: string;
  videos: number;
  /** One key per judged clip: the video (`file[i]` or a file path), with `@start` when windowed. */
  keys: string[];
  /** The first `keepClips` clips (see VideoConsistencyOptions). */
  shown: ShownClip[];
}

/** Start frames of the clips judged in a video of `frames` frames. */
function windowStarts(frames: number, window: number | undefined, label: string): number[] {
  const w = window ?? frames;
  if (!Number.isInteger(w) || w < 3) throw new Error(`object consistency: window must be an integer >= 3, got ${w}`);
  if (frames < w) throw new Error(`${label}: ${frames} frames, fewer than the window of ${w}`);
  return Array.from({ length: Math.floor(frames / w) }, (_, k) => k * w);
}

/**
 * Judges every video (or window) of `input`: a .npz/.npy video array, or a folder of video files.
 * uint8 arrays are in `opts.range` (default [0, 255]), float arrays too (default [-1, 1]); decoded
 * video files are always [0, 255].
 */
export async function videoConsistency(input: string, opts: VideoConsistencyOptions = {}): Promise<VideoConsistency> {
  if (!fs.existsSync(input)) throw new Error(`${input}: not found (expected a .npz/.npy video array or a folder of videos)`);
  const perClip: ClipConsistency[] = [];
  const keys: string[] = [];
  const shown: ShownClip[] = [];
  const judge = (clip: ArrayLike<number>, shape: [number, number, number, number], r: ValueRange, key: string): void => {
    const verdict = clipConsistency(clip, shape, { ...opts, range: r });
    perClip.push(verdict);
    keys.push(key);
    if (shown.length < (opts.keepClips ?? 0)) shown.push({ key, frames: clipBytes(clip, r), shape, verdict });
  };
  let size: [number, number] = [0, 0];
  let range: ValueRange = '[0, 255]';
  let videos = 0;
  const lower = input.toLowerCase();
  if (!fs.statSync(input).isDirectory() && (lower.endsWith('.npz') || lower.endsWith('.npy'))) {
    const k = videoArrayKey(input, opts.key, true);
    const arr = openNpyArray(input, k);
    const label = k ? `${input}:${k}` : input;
    try {
      const [n, t, h, w, c] = arr.shape;
      if (arr.shape.length !== 5 || c !== 3 || arr.shape.some((d) => d < 1)) {
        throw new Error(`${label}: expected videos as an N x T x H x W x 3 array, got [${arr.shape.join(', ')}]`);
      }
      if (arr.dtype !== 'uint8' && arr.dtype !== 'float32' && arr.dtype !== 'float64') {
        throw new Error(`${label}: expected uint8, float32 or float64 videos, got ${arr.dtype}`);
      }
      range = opts.range ?? (arr.dtype === 'uint8' ? '[0, 255]' : '[-1, 1]');
      size = [h, w];
      videos = n;
      const starts = windowStarts(t, opts.window, label);
      const len = (opts.window ?? t) * h * w * 3;
      for (let i = 0; i < n; i++) {
        const row = await arr.readRows(i, 1);
        if (row instanceof BigInt64Array) throw new Error(`${label}: int64 videos are not supported`);
        for (const s of starts) {
          judge(row.subarray(s * h * w * 3, s * h * w * 3 + len), [opts.window ?? t, h, w, 3], range, `${path.basename(input)}[${i}]${opts.window ? `@${s}` : ''}`);
        }
      }
    } finally {
      arr.close();
    }
  } else {
    const src = openVideoSource(input);
    try {
      videos = src.count;
      for (let i = 0; i < src.count; i++) {
        const total = await src.frameCount(i);
        const v = await src.readFrames(i, 0, total, 1);
        if (i === 0) size = [v.height, v.width];
        const win = opts.window ?? v.count;
        for (const s of windowStarts(v.count, opts.window, src.key(i))) {
          const fsz = v.height * v.width * 3;
          judge(v.data.subarray(s * fsz, (s + win) * fsz), [win, v.height, v.width, 3], '[0, 255]', `${path.relative(input, src.key(i)) || src.key(i)}${opts.window ? `@${s}` : ''}`);
        }
      }
    } finally {
      src.close();
    }
  }
  return { ...summarizeConsistency(perClip, { ...opts, range, height: size[0], width: size[1] }), source: input, videos, keys, shown };
}

/**
 * The sample sets under `dir`: its own `videos.npz` (a sweep point's folder) or `samples.npz`
 * (`lvdm sample --npz`), so the raw array is read rather than the folder's GIF/MP4 previews; else
 * every `videos.npz` below it (a run folder: one per sweep point), else the folder itself (a
 * folder of video files).
 */
export function findSampleSets(dir: string, fileName = 'videos.npz'): string[] {
  if (!fs.existsSync(dir)) throw new Error(`${dir}: not found (expected a .npz/.npy video array or a folder of videos)`);
  if (!fs.statSync(dir).isDirectory()) return [dir];
  const own = [fileName, 'samples.npz'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (own) return [own];
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === fileName) found.push(p);
    }
  };
  walk(dir);
  return found.length ? found.sort() : [dir];
}

/**
 * A contact sheet to check the verdicts by eye: one row per clip (every `frameStride`-th frame,
 * enlarged), framed in green (consistent) or red (not), with the tracked object's centroid
 * marked by a black cross. Clips whose shape differs from the first clip's are left out.
 */
export function consistencySheet(clips: readonly ShownClip[], opts: { frameStride?: number } = {}): RgbImage {
  if (clips.length === 0) throw new Error('consistencySheet: no clips');
  const [t, h, w] = clips[0].shape;
  const k = displayScale(h, w);
  const b = Math.max(2, k); // border width
  const H = h * k + 2 * b;
  const W = w * k + 2 * b;
  const videos: Uint8Array[] = [];
  for (const c of clips.filter((x) => x.shape.join() === clips[0].shape.join())) {
    const border = c.verdict.consistent ? [40, 200, 60] : [220, 30, 30];
    const out = new Uint8Array(t * H * W * 3);
    for (let f = 0; f < t; f++) {
      const big = upscaleNearest({ data: c.frames.subarray(f * h * w * 3, (f + 1) * h * w * 3), width: w, height: h }, k);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inside = y >= b && y < H - b && x >= b && x < W - b;
          const o = ((f * H + y) * W + x) * 3;
          if (inside) out.set(big.data.subarray(((y - b) * w * k + (x - b)) * 3, ((y - b) * w * k + (x - b)) * 3 + 3), o);
          else out.set(border, o);
        }
      }
      const [cx, cy] = c.verdict.centroids[f];
      if (!Number.isFinite(cx)) continue;
      const px = Math.round(cx * k) + b;
      const py = Math.round(cy * k) + b;
      for (let d = -k; d <= k; d++) {
        for (const [x, y] of [[px + d, py], [px, py + d]]) {
          if (x >= b && x < W - b && y >= b && y < H - b) out.fill(0, ((f * H + y) * W + x) * 3, ((f * H + y) * W + x) * 3 + 3);
        }
      }
    }
    videos.push(out);
  }
  return videoGrid(videos, t, H, W, { frameStride: opts.frameStride ?? Math.max(1, Math.floor(t / 8)) });
}

/** Both readings of one sample set: object consistency (every test) and motion consistency (no edge test). */
export interface ConsistencyReadings {
  object: number;
  motion: number;
  /** Per clip (window), in videoConsistency's order: consistent under every test. */
  objectPerClip: boolean[];
  /**
   * Fraction of clips consistent under every test whose object reads as a square or a triangle
   * (shape-kind.ts): the reading for "recognisable shapes". Kinds of clips that fail the tests are
   * not counted (a lumpy, changing blob can read as any kind).
   */
  polygons: number;
  /**
   * Fraction of clips consistent under every test whose object's outline is regular (a disc, a
   * square or a triangle, not an elongated or lumpy blob: shape-kind.ts isRegularOutline): the
   * reading for "clean shapes" that a person checks by eye.
   */
  regular: number;
}

/**
 * Object and motion consistency from one pass over `input`: the tests are a conjunction, so a clip
 * passes them all exactly when it passes them without the edge test and its edge sharpness
 * reaches the default `minEdge`.
 */
export async function consistencyReadings(input: string, opts: { window?: number } = {}): Promise<ConsistencyReadings> {
  const r = await videoConsistency(input, { ...opts, minEdge: 0 });
  const objectPerClip = r.perClip.map((c) => c.consistent && c.edge >= CONSISTENCY_DEFAULTS.minEdge);
  const n = Math.max(1, objectPerClip.length);
  const polygons = r.perClip.filter((c, i) => objectPerClip[i] && isPolygon(c.kind)).length / n;
  const regular = r.perClip.filter((c, i) => objectPerClip[i] && isRegularOutline(c.outline)).length / n;
  return { object: objectPerClip.filter(Boolean).length / n, motion: r.fraction, objectPerClip, polygons, regular };
}
