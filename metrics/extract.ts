/**
 * Streaming feature extraction: clips are read (and decoded) one batch ahead of the network,
 * features accumulate into a float64 matrix, a progress line goes to stderr, and real-data
 * features can be cached on disk keyed by everything that determines them.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../lib/io/atomic';
import { readNpz, writeNpz } from '../lib/io/npy';
import { FeatureMatrix, featureMatrix } from './features';
import { I3D } from './i3d/model';
import { PreprocessOptions, ResizeConvention, preprocessClip, resizeBilinear } from './preprocess';
import { ClipRef } from './protocols';
import { Frames, VideoSource } from './videos';

/** A video feature extractor: uint8 clips in, one feature vector per clip out. */
/**
 * Preprocesses `b` uint8 clips [T, H, W, 3] into one float batch [B, T, size, size, 3] with
 * `prep(clip, out, offset)`, runs `forward` on it and returns its output values.
 */
export async function runOnClips(
  clips: Uint8Array,
  b: number,
  t: number,
  h: number,
  w: number,
  size: number,
  prep: (clip: Uint8Array, out: Float32Array, offset: number) => void,
  forward: (x: tf.Tensor5D) => tf.Tensor,
): Promise<Float32Array> {
  const x = new Float32Array(b * t * size * size * 3);
  const per = t * h * w * 3;
  for (let i = 0; i < b; i++) prep(clips.subarray(i * per, (i + 1) * per), x, i * t * size * size * 3);
  const input = tf.tensor5d(x, [b, t, size, size, 3]);
  try {
    const y = forward(input);
    const out = (await y.data()) as Float32Array;
    y.dispose();
    return out;
  } finally {
    input.dispose();
  }
}

export interface FeatureExtractor {
  /** 'i3d' or a documented proxy name ('synthetic-motion'). */
  readonly name: string;
  /** Appended to metric names: '' for I3D (fvd, kvd), '_proxy' otherwise (fvd_proxy, kvd_proxy). */
  readonly metricSuffix: string;
  readonly featureDim: number;
  /** Clips per forward pass. */
  readonly batchSize: number;
  /** Everything that determines the features (weights digests, preprocessing), for results and cache keys. */
  describe(): Record<string, unknown>;
  /** clips [B, T, H, W, 3] uint8 -> [B, featureDim] float32. */
  extract(clips: Uint8Array, b: number, t: number, h: number, w: number): Promise<Float32Array>;
  dispose(): void;
}

/** I3D logits (averaged over time) after the FVD preprocessing. */
export class I3DExtractor implements FeatureExtractor {
  readonly name = 'i3d';
  readonly metricSuffix = '';
  readonly featureDim: number;
  constructor(
    readonly model: I3D,
    readonly preprocessing: PreprocessOptions,
    readonly batchSize = 1,
  ) {
    this.featureDim = model.numClasses;
  }
  describe(): Record<string, unknown> {
    return {
      extractor: 'i3d',
      weights_file: this.model.info.source,
      weights_sha256: this.model.info.fileSha256 ?? null,
      weights_content_sha256: this.model.info.contentSha256,
      weights_layout: this.model.info.layout,
      bn_eps: this.model.info.eps,
      resize: this.preprocessing.convention,
      geometry: this.preprocessing.geometry ?? 'stretch',
      input_size: this.preprocessing.size ?? 224,
      value_range: '[-1, 1] (2x/255 - 1)',
      output: `${this.featureDim}-d logits averaged over time`,
    };
  }
  async extract(clips: Uint8Array, b: number, t: number, h: number, w: number): Promise<Float32Array> {
    const size = this.preprocessing.size ?? 224;
    return runOnClips(clips, b, t, h, w, size, (clip, out, offset) => preprocessClip(clip, t, h, w, this.preprocessing, out, offset), (x) => this.model.forward(x));
  }
  dispose(): void {
    this.model.dispose();
  }
}

/** A one-line progress indicator on stderr (rewritten in place on a TTY, every 10% otherwise). */
export class Progress {
  private readonly t0 = Date.now();
  private lastPct = -1;
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly enabled: boolean,
  ) {}
  update(done: number): void {
    if (!this.enabled) return;
    const el = (Date.now() - this.t0) / 1000;
    const rate = done / Math.max(el, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    const line = `${this.label}: ${done}/${this.total} clips, ${rate.toFixed(2)} clips/s, ${fmtTime(el)} elapsed, ETA ${fmtTime(eta)}`;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${line}\x1b[K${done === this.total ? '\n' : ''}`);
    } else {
      const pct = Math.floor((10 * done) / Math.max(this.total, 1));
      if (pct !== this.lastPct || done === this.total) {
        this.lastPct = pct;
        process.stderr.write(line + '\n');
      }
    }
  }
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.floor(s % 60)
    .toString()
    .padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)
    .toString()
    .padStart(2, '0')}m`;
}

export interface ExtractOptions {
  frames: number;
  stride: number;
  /** Label of the progress line. */
  label?: string;
  progress?: boolean;
  /**
   * Resize every frame to size x size first (bilinear with this convention, rounded to uint8), as
   * if the videos had been stored at that resolution (e.g. real data at the generated size).
   */
  clipResize?: { size: number; convention: ResizeConvention };
}

/** Bilinear resize of every frame to size x size, rounded back to uint8. */
export function resizeFrames(f: Frames, size: number, convention: ResizeConvention): Frames {
  if (f.height === size && f.width === size) return f;
  const fin = f.height * f.width * 3;
  const fout = size * size * 3;
  const data = new Uint8Array(f.count * fout);
  for (let k = 0; k < f.count; k++) {
    const r = resizeBilinear(f.data.subarray(k * fin, (k + 1) * fin), f.height, f.width, 3, size, size, convention);
    for (let i = 0; i < fout; i++) data[k * fout + i] = Math.min(255, Math.max(0, Math.round(r[i])));
  }
  return { data, count: f.count, height: size, width: size };
}

async function readBatch(src: VideoSource, clips: readonly ClipRef[], o: ExtractOptions): Promise<Frames[]> {
  const out: Frames[] = [];
  for (const c of clips) {
    const f = await src.readFrames(c.video, c.start, o.frames, o.stride);
    out.push(o.clipResize ? resizeFrames(f, o.clipResize.size, o.clipResize.convention) : f);
  }
  return out;
}

/** Features of the given clips of a source, in clip order. */
export async function extractFeatures(src: VideoSource, clips: readonly ClipRef[], extractor: FeatureExtractor, o: ExtractOptions): Promise<FeatureMatrix> {
  if (clips.length === 0) throw new Error(`${src.path}: no clips to extract`);
  const d = extractor.featureDim;
  const feats = new Float64Array(clips.length * d);
  const bs = Math.max(1, extractor.batchSize);
  const progress = new Progress(o.label ?? `features ${path.basename(src.path)}`, clips.length, o.progress ?? false);
  progress.update(0);
  let next: Promise<Frames[]> = readBatch(src, clips.slice(0, bs), o);
  for (let i = 0; i < clips.length; i += bs) {
    const frames = await next;
    if (i + bs < clips.length) next = readBatch(src, clips.slice(i + bs, i + 2 * bs), o);
    const { height, width } = frames[0];
    for (const f of frames)
      if (f.height !== height || f.width !== width)
        throw new Error(`${src.path}: videos in one batch differ in size (${f.height}x${f.width} vs ${height}x${width}); resize them to one size first`);
    const b = frames.length;
    const per = o.frames * height * width * 3;
    const batch = new Uint8Array(b * per);
    frames.forEach((f, k) => batch.set(f.data, k * per));
    const y = await extractor.extract(batch, b, o.frames, height, width);
    if (y.length !== b * d) throw new Error(`extractor ${extractor.name} returned ${y.length} values for ${b} clips of dimension ${d}`);
    for (let k = 0; k < y.length; k++) feats[i * d + k] = y[k];
    progress.update(Math.min(i + b, clips.length));
  }
  return featureMatrix(feats, clips.length, d, `${extractor.name} features of ${src.path}`);
}

/** Cache key over everything that determines a feature set. */
export function featureCacheKey(parts: Record<string, unknown>): string {
  return createHash('sha256').update(stableJson(parts)).digest('hex').slice(0, 32);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v as Record<string, unknown>)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** Reads cached features (`<dir>/<key>.npz`), or null. */
export function readCachedFeatures(dir: string, key: string): FeatureMatrix | null {
  const file = path.join(dir, `${key}.npz`);
  if (!fs.existsSync(file)) return null;
  const a = readNpz(file).get('features');
  if (!a || a.shape.length !== 2 || !(a.data instanceof Float64Array)) throw new Error(`${file}: corrupt feature cache entry (delete it)`);
  return { n: a.shape[0], d: a.shape[1], data: a.data };
}

/** Writes features plus a JSON description of what they are. */
export function writeCachedFeatures(dir: string, key: string, x: FeatureMatrix, about: Record<string, unknown>): void {
  writeNpz(path.join(dir, `${key}.npz`), new Map([['features', { shape: [x.n, x.d], data: x.data }]]));
  writeJsonAtomic(path.join(dir, `${key}.json`), about);
}
