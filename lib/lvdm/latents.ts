/**
 * Latent cache: the training clips are encoded once by the autoencoder and the diagonal Gaussian
 * posteriors (mean, logvar) are kept in memory and on disk, so diffusion epochs never re-encode.
 * Each training example draws a fresh posterior sample z = mean + exp(logvar / 2) * eps (as LVDM
 * does when it encodes every batch) and normalises it, z_n = scale * (z + shift) (lvdm-facts.md
 * section 1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../nn/rng';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { toUnitRange } from '../../data/loader';
import type { ClipDataset } from '../../data/types';

/** What the latent diffusion stage needs from an autoencoder (VideoAutoencoder satisfies it). */
export interface LatentCodec {
  /** Down-sampling factors [ft, fs, fs]. */
  readonly factors: readonly [number, number, number];
  encode(x: tf.Tensor5D): { mean: tf.Tensor5D; logvar: tf.Tensor5D };
  decode(z: tf.Tensor5D): tf.Tensor5D;
  latentShape(frames: number, height: number, width: number): [number, number, number, number];
}

export interface LatentNorm {
  shift: number;
  scale: number;
}

/** Identifies what a cache was built from; a cache is reused only when this matches exactly. */
export interface LatentCacheKey {
  autoencoder: string;
  autoencoderBytes: number;
  autoencoderMtimeMs: number;
  data: unknown;
  seed: number;
  windowsPerVideo: number;
  maxClips: number | null;
}

export class LatentCache {
  /** Latent shape of one clip [t, h, w, c]. */
  readonly shape: [number, number, number, number];
  readonly per: number;

  constructor(
    readonly mean: Float32Array,
    readonly logvar: Float32Array,
    readonly count: number,
    shape: [number, number, number, number],
    readonly norm: LatentNorm,
    /** Caption of each cached clip (text-to-video), when the data set has captions. */
    readonly captions?: readonly string[],
    /** Class label of each cached clip (class-conditional models), when the data set has labels. */
    readonly labels?: readonly number[],
  ) {
    this.shape = shape;
    this.per = shape.reduce((a, b) => a * b, 1);
    if (mean.length !== count * this.per || logvar.length !== count * this.per)
      throw new Error(`LatentCache: ${count} clips of [${shape}] need ${count * this.per} values, got ${mean.length} / ${logvar.length}`);
    if (captions && captions.length !== count) throw new Error(`LatentCache: ${captions.length} captions for ${count} clips`);
    if (labels && labels.length !== count) throw new Error(`LatentCache: ${labels.length} labels for ${count} clips`);
  }

  /**
   * Encodes `windowsPerVideo` random windows of every clip of `dataset` (window positions from
   * `seed`; the same seed gives the same cache): clip k is video k mod size, so a `maxClips` cap
   * keeps the first windows of the first videos.
   */
  static async build(opts: {
    codec: LatentCodec;
    dataset: ClipDataset;
    windowsPerVideo: number;
    batchSize: number;
    seed: number;
    /** At most this many clips (the first ones in encoding order). */
    maxClips?: number;
    norm?: LatentNorm;
    onProgress?: (done: number, total: number) => void;
  }): Promise<LatentCache> {
    const { codec, dataset } = opts;
    const shape = codec.latentShape(dataset.frames, dataset.height, dataset.width);
    const per = shape.reduce((a, b) => a * b, 1);
    const total = Math.min(dataset.size * opts.windowsPerVideo, opts.maxClips ?? Infinity);
    const mean = new Float32Array(total * per);
    const logvar = new Float32Array(total * per);
    const rng = new Rng(opts.seed).fork('latent-cache');
    const pixels = dataset.frames * dataset.height * dataset.width * 3;
    const captions: string[] = [];
    const labels: number[] = [];
    let captioned = true;
    let labelled = true;
    for (let start = 0; start < total; start += opts.batchSize) {
      const n = Math.min(opts.batchSize, total - start);
      const buf = new Float32Array(n * pixels);
      for (let j = 0; j < n; j++) {
        const k = start + j;
        const clip = await dataset.get(k % dataset.size, rng.fork(`window-${k}`));
        toUnitRange(clip.video, buf, j * pixels);
        captions.push(clip.caption ?? '');
        captioned &&= clip.caption !== undefined;
        labels.push(clip.label ?? -1);
        labelled &&= clip.label !== undefined;
      }
      const x = tf.tensor5d(buf, [n, dataset.frames, dataset.height, dataset.width, 3]);
      const p = codec.encode(x);
      mean.set(p.mean.dataSync(), start * per);
      logvar.set(p.logvar.dataSync(), start * per);
      tf.dispose([x, p.mean, p.logvar]);
      opts.onProgress?.(start + n, total);
    }
    return new LatentCache(mean, logvar, total, shape, opts.norm ?? LatentCache.statsNorm(mean, logvar), captioned ? captions : undefined, labelled ? labels : undefined);
  }

  /**
   * shift = -E[z], scale = 1 / std(z) of the posterior samples z implied by the cache
   * (E[z^2] = mean^2 + exp(logvar)): the convention the autoencoder stage uses.
   */
  static statsNorm(mean: Float32Array, logvar: Float32Array): LatentNorm {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < mean.length; i++) {
      s += mean[i];
      s2 += mean[i] * mean[i] + Math.exp(logvar[i]);
    }
    const m = s / mean.length;
    const sd = Math.sqrt(Math.max(s2 / mean.length - m * m, 1e-12));
    return { shift: -m, scale: 1 / sd };
  }

  /** The same latents with the normalised values multiplied by `b` (diffusion.latents.input_scale). */
  withInputScale(b: number): LatentCache {
    if (!(b > 0 && Number.isFinite(b))) throw new Error(`LatentCache: input scale must be a positive number, got ${b}`);
    return new LatentCache(this.mean, this.logvar, this.count, this.shape, { shift: this.norm.shift, scale: this.norm.scale * b }, this.captions, this.labels);
  }

  /** Normalised posterior samples of the given clips: [B, t, h, w, c]. */
  sample(indices: number[], rng: Rng): tf.Tensor5D {
    const b = indices.length;
    const z = new Float32Array(b * this.per);
    const eps = rng.normalArray(b * this.per);
    const { shift, scale } = this.norm;
    indices.forEach((k, j) => {
      if (!(k >= 0 && k < this.count)) throw new Error(`LatentCache: clip ${k} outside [0, ${this.count - 1}]`);
      const o = k * this.per;
      for (let i = 0; i < this.per; i++) {
        const v = this.mean[o + i] + Math.exp(0.5 * this.logvar[o + i]) * eps[j * this.per + i];
        z[j * this.per + i] = scale * (v + shift);
      }
    });
    return tf.tensor5d(z, [b, ...this.shape]);
  }

  /**
   * One normalised posterior frame per entry: frame frames[j] of clip indices[j], as [B, 1, h, w, c]
   * (the images of joint image-video training). The same draws as `sample` of those clips, sliced.
   */
  sampleFrames(indices: number[], frames: number[], rng: Rng): tf.Tensor5D {
    if (frames.length !== indices.length) throw new Error(`LatentCache: ${indices.length} clips but ${frames.length} frame indices`);
    const [t, h, w, c] = this.shape;
    const per = h * w * c;
    const clips = this.sample(indices, rng);
    const all = clips.dataSync();
    clips.dispose();
    const out = new Float32Array(indices.length * per);
    frames.forEach((f, j) => {
      if (!(Number.isInteger(f) && f >= 0 && f < t)) throw new Error(`LatentCache: frame ${f} outside [0, ${t - 1}]`);
      out.set(all.subarray((j * t + f) * per, (j * t + f + 1) * per), j * per);
    });
    return tf.tensor5d(out, [indices.length, 1, h, w, c]);
  }

  save(file: string, key: LatentCacheKey): void {
    const shape = [this.count, ...this.shape];
    saveSafetensors(
      file,
      new Map([
        ['mean', { shape, data: this.mean }],
        ['logvar', { shape, data: this.logvar }],
      ]),
      { lvdm_latents: JSON.stringify({ key, norm: this.norm, ...(this.captions ? { captions: this.captions } : {}), ...(this.labels ? { labels: this.labels } : {}) }) },
    );
  }

  /** Loads a cache written by `save`; returns null when the file is missing or its key differs. */
  static load(file: string, key?: LatentCacheKey): LatentCache | null {
    if (!fs.existsSync(file)) return null;
    const { tensors, metadata } = loadSafetensors(file);
    if (!metadata.lvdm_latents) throw new Error(`${file}: not a latent cache (no 'lvdm_latents' metadata)`);
    const meta = JSON.parse(metadata.lvdm_latents) as { key: LatentCacheKey; norm: LatentNorm; captions?: string[]; labels?: number[] };
    if (key && JSON.stringify(meta.key) !== JSON.stringify(key)) return null;
    const mean = tensors.get('mean');
    const logvar = tensors.get('logvar');
    if (!mean || !logvar || !(mean.data instanceof Float32Array) || !(logvar.data instanceof Float32Array))
      throw new Error(`${file}: latent cache needs float32 tensors 'mean' and 'logvar'`);
    const [count, ...shape] = mean.shape;
    return new LatentCache(mean.data, logvar.data, count, shape as [number, number, number, number], meta.norm, meta.captions, meta.labels);
  }
}

/** The key of a cache built from `autoencoderFile` with the given data settings. */
export function latentCacheKey(autoencoderFile: string, data: unknown, seed: number, windowsPerVideo: number, maxClips?: number): LatentCacheKey {
  const st = fs.statSync(autoencoderFile);
  return {
    autoencoder: path.resolve(autoencoderFile),
    autoencoderBytes: st.size,
    autoencoderMtimeMs: Math.floor(st.mtimeMs),
    data,
    seed,
    windowsPerVideo,
    maxClips: maxClips ?? null,
  };
}
