/**
 * Short-video generation: sample normalised latents with the trained UNet (DDIM or DDPM), undo
 * the latent normalisation (z = z_n / scale - shift), decode with the autoencoder and convert to
 * uint8 RGB; then write each video as MP4 and GIF, one PNG grid of all samples and optionally the
 * raw uint8 array as .npz (N x T x H x W x 3) for the metrics.
 *
 * Seeds: sample i starts from noise drawn from Rng(seed).fork('sample-i'), so with DDIM eta = 0 a
 * sample does not depend on the batch size or on how many samples are requested.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../nn/rng';
import { autoguidedModel, cfgGuidance, epsilonScaledModel, noiseLevelExperts, sample } from '../diffusion/samplers';
import { Cond, Guidance } from '../diffusion/types';
import { floatToUint8, videoGrid, writeGif, writePng } from '../io/image';
import { writeMp4 } from '../io/video-writer';
import { writeNpz } from '../io/npy';
import { displayScale, upscaleNearest } from '../autoencoder/outputs';
import { LatentCodec } from './latents';
import { LoadedLvdm } from './weights';

export interface GenerateOptions {
  n: number;
  /** Pixel frames per video (default: the training clip length); latent frames = ceil(frames / ft). */
  frames?: number;
  batchSize: number;
  sampler: 'ddim' | 'ddpm';
  /** DDIM steps (ignored by DDPM, which uses all T). */
  steps: number;
  eta: number;
  /** DDIM timestep spacing (default 'trailing'). */
  spacing?: 'trailing' | 'leading';
  /** DDIM's last abar_prev (default 'one'). */
  finalAlpha?: 'one' | 'alpha0';
  seed: number;
  /** Text-to-video: one prompt per video (n of them); required by text-conditioned models. */
  prompts?: readonly string[];
  /** Class-conditional models (unet.num_classes): one class label per video (n of them); the model's num_classes is the null label. */
  classLabels?: readonly number[];
  /** Classifier-free guidance scale s of text or class conditioning: eps = eps_u + s (eps_c - eps_u); 1 (default) = conditional only. */
  cfg?: number;
  /** Prompt of the unconditional branch eps_u (default: the empty prompt). */
  negativePrompt?: string;
  /**
   * Autoguidance (lib/diffusion/samplers.ts autoguidedModel): a weaker model of the same latents
   * (an earlier snapshot, a smaller network) and the scale s of D_bad + s (D_good - D_bad).
   */
  autoguide?: { model: LoadedLvdm; scale: number };
  /**
   * Noise-level experts (lib/diffusion/samplers.ts noiseLevelExperts): another model of the same
   * latents denoises the timesteps t < below; the model itself the rest.
   */
  lowNoise?: { model: LoadedLvdm; below: number };
  /**
   * Epsilon scaling (lib/diffusion/samplers.ts epsilonScaledModel): eps / lambda_t with lambda_t =
   * lambda + k t, applied to the combined (guided, expert) eps; unset = none.
   */
  epsScale?: { lambda: number; k?: number };
  /** Called after each batch with the number of videos done. */
  onProgress?: (done: number, total: number) => void;
}

export interface GeneratedVideos {
  /** Each [T, H, W, 3] uint8. */
  videos: Uint8Array[];
  frames: number;
  height: number;
  width: number;
  sampleSeconds: number;
  decodeSeconds: number;
}

/** Conditioning of unconditional generation: all-zero mask and s = 0 where the model has them. */
export function unconditionalCond(model: LoadedLvdm, batch: number, latentFrames: number): Cond | undefined {
  const u = model.unet.cfg;
  const cond: Record<string, tf.Tensor> = {};
  if (u.mask_channel) cond.mask = tf.zeros([batch, latentFrames]);
  if (u.s_embed !== 'none') cond.s = tf.zeros([batch], 'int32');
  return Object.keys(cond).length ? cond : undefined;
}

/**
 * Conditioning and guidance of samples first..first+n-1: text-to-video models encode their prompts
 * (and, for s != 1, the negative or empty prompt as the unconditional branch); class-conditional
 * models read their labels (and the null label as the unconditional branch); other models get
 * `unconditionalCond`. The caller disposes the returned tensors.
 */
export function sampleConditioning(model: LoadedLvdm, n: number, latentFrames: number, first: number, opts: GenerateOptions): { cond?: Cond; guidance?: Guidance } {
  const classes = model.unet.cfg.num_classes;
  if (opts.prompts && !model.text) throw new Error(`${model.source}: prompts given, but this model is not text-conditioned (its config has no 'text' section)`);
  if (opts.classLabels && classes === undefined) throw new Error(`${model.source}: class labels given, but this model is not class-conditional (unet.num_classes is unset)`);
  let branches: { cond: () => Cond; uncond: () => Cond };
  if (model.text) {
    const text = model.text;
    if (!opts.prompts) throw new Error(`${model.source}: a text-to-video model needs prompts (lvdm sample --prompt "..." or --prompts FILE)`);
    const prompts = opts.prompts.slice(first, first + n);
    if (prompts.length !== n) throw new Error(`${opts.prompts.length} prompts for ${opts.n} videos`);
    branches = { cond: () => text.encode(prompts), uncond: () => text.encode(new Array<string>(n).fill(opts.negativePrompt ?? '')) };
  } else if (classes !== undefined) {
    if (!opts.classLabels) throw new Error(`${model.source}: a class-conditional model needs class labels (lvdm sample --class NAME)`);
    const labels = opts.classLabels.slice(first, first + n);
    if (labels.length !== n) throw new Error(`${opts.classLabels.length} class labels for ${opts.n} videos`);
    for (const v of labels) if (!Number.isInteger(v) || v < 0 || v > classes) throw new Error(`${model.source}: class label ${v} outside [0, ${classes}] (${classes} classes; ${classes} = none)`);
    branches = { cond: () => ({ class_label: tf.tensor1d(labels, 'int32') }), uncond: () => ({ class_label: tf.fill([n], classes, 'int32') }) };
  } else {
    return { cond: unconditionalCond(model, n, latentFrames) };
  }
  const s = opts.cfg ?? 1;
  // s = 1: eps_c alone; s = 0: eps_u alone (one forward each); otherwise both, combined.
  if (s === 0) return { cond: branches.uncond() };
  return { cond: branches.cond(), guidance: s === 1 ? undefined : cfgGuidance(s, branches.uncond()) };
}

/** Normalised latents [n, t, h, w, c] for samples first..first+n-1. */
export async function sampleLatents(model: LoadedLvdm, n: number, latentFrames: number, first: number, opts: GenerateOptions): Promise<tf.Tensor5D> {
  // Checked where the two models are combined, so every caller of sampleLatents gets the check.
  if (opts.autoguide) checkAutoguide(model, opts.autoguide.model);
  if (opts.lowNoise) checkLowNoiseExpert(model, opts.lowNoise.model);
  const [, h, w, c] = model.state.latent_shape;
  const shape = [n, latentFrames, h, w, c];
  const per = latentFrames * h * w * c;
  const noise = new Float32Array(n * per);
  for (let i = 0; i < n; i++) noise.set(new Rng(opts.seed).fork(`sample-${first + i}`).normalArray(per), i * per);
  const xT = tf.tensor5d(noise, [n, latentFrames, h, w, c]);
  const { cond, guidance } = sampleConditioning(model, n, latentFrames, first, opts);
  const rng = new Rng(opts.seed).fork(`steps-${first}`);
  try {
    const spec =
      opts.sampler === 'ddpm' ? { kind: 'ddpm' as const, xT, rng, cond, guidance } : { kind: 'ddim' as const, steps: opts.steps, eta: opts.eta, spacing: opts.spacing, finalAlpha: opts.finalAlpha, xT, rng, cond, guidance };
    const denoiser = opts.lowNoise ? noiseLevelExperts(model.eps, opts.lowNoise.model.eps, opts.lowNoise.below) : model.eps;
    const guided = opts.autoguide ? autoguidedModel(denoiser, opts.autoguide.model.eps, opts.autoguide.scale) : denoiser;
    const eps = opts.epsScale ? epsilonScaledModel(guided, opts.epsScale.lambda, opts.epsScale.k ?? 0) : guided;
    return await sample(eps, model.schedule, shape, spec);
  } finally {
    tf.dispose([xT, ...Object.values(cond ?? {}), ...Object.values(guidance?.uncond ?? {})]);
  }
}

/**
 * Why `b` cannot stand in for `a` on the same sampling trajectory (null when it can): the same
 * latents (shape and normalisation), the same noise schedule and the same conditioning inputs, so
 * both answer the same question.
 */
function latentTaskDifference(a: LoadedLvdm, b: LoadedLvdm): string | null {
  const differ = (what: string, va: unknown, vb: unknown): string => `${what} differ (${JSON.stringify(vb)} against ${JSON.stringify(va)})`;
  const [as, bs] = [a.state, b.state];
  if (as.latent_shape.join() !== bs.latent_shape.join()) return differ('latent shapes', as.latent_shape, bs.latent_shape);
  if (as.latent.shift !== bs.latent.shift || as.latent.scale !== bs.latent.scale) return differ('latent normalisations (shift, scale)', as.latent, bs.latent);
  const [aa, ba] = [a.schedule.alphasCumprod, b.schedule.alphasCumprod];
  if (aa.length !== ba.length || aa.some((v, i) => Math.abs(v - ba[i]) > 1e-7)) return differ('noise schedules (T, abar_t)', aa.length, ba.length);
  const inputs = (m: LoadedLvdm): string => `text ${m.text ? 'yes' : 'no'}, classes ${m.unet.cfg.num_classes ?? 'none'}, mask ${m.unet.cfg.mask_channel}, s ${m.unet.cfg.s_embed}`;
  if (inputs(a) !== inputs(b)) return differ('conditioning inputs', inputs(a), inputs(b));
  return null;
}

/** Throws unless `bad` can guide `good` (autoguidance: latentTaskDifference). */
export function checkAutoguide(good: LoadedLvdm, bad: LoadedLvdm): void {
  const why = latentTaskDifference(good, bad);
  if (why) throw new Error(`autoguidance: ${bad.source} cannot guide ${good.source}: ${why}`);
}

/** Throws unless `low` can denoise the low noise levels of `model`'s trajectory (noise-level experts: latentTaskDifference). */
export function checkLowNoiseExpert(model: LoadedLvdm, low: LoadedLvdm): void {
  const why = latentTaskDifference(model, low);
  if (why) throw new Error(`noise-level experts: ${low.source} cannot denoise below the switch for ${model.source}: ${why}`);
}

/** Samples, decodes and converts `opts.n` videos. */
export async function generateVideos(model: LoadedLvdm, codec: LatentCodec, opts: GenerateOptions): Promise<GeneratedVideos> {
  const [ft] = codec.factors;
  const frames = opts.frames ?? model.state.clip.frames;
  if (!Number.isInteger(frames) || frames < 1) throw new Error(`frames must be a positive integer, got ${frames}`);
  if (!Number.isInteger(opts.n) || opts.n < 1) throw new Error(`n must be a positive integer, got ${opts.n}`);
  const latentFrames = Math.ceil(frames / ft);
  const { shift, scale } = model.state.latent;
  const videos: Uint8Array[] = [];
  let height = 0;
  let width = 0;
  let sampleSeconds = 0;
  let decodeSeconds = 0;
  for (let first = 0; first < opts.n; first += opts.batchSize) {
    const b = Math.min(opts.batchSize, opts.n - first);
    const t0 = Date.now();
    const zn = await sampleLatents(model, b, latentFrames, first, opts);
    const t1 = Date.now();
    const x = tf.tidy(() => {
      const z = tf.sub(tf.div(zn, scale), shift) as tf.Tensor5D;
      const y = codec.decode(z); // [b, latentFrames * ft, H, W, 3]
      return tf.slice(y, [0, 0, 0, 0, 0], [b, frames, -1, -1, -1]);
    });
    zn.dispose();
    [, , height, width] = x.shape;
    const data = floatToUint8(x.dataSync());
    x.dispose();
    const per = frames * height * width * 3;
    for (let i = 0; i < b; i++) videos.push(data.slice(i * per, (i + 1) * per));
    sampleSeconds += (t1 - t0) / 1000;
    decodeSeconds += (Date.now() - t1) / 1000;
    opts.onProgress?.(first + b, opts.n);
  }
  return { videos, frames, height, width, sampleSeconds, decodeSeconds };
}

export interface SampleOutputOptions {
  fps: number;
  /** Also write samples.npz (key 'videos', uint8 [N, T, H, W, 3]). */
  npz?: boolean;
  /** Per-sample MP4 (needs ffmpeg); default true. */
  mp4?: boolean;
  /** Per-sample GIF; default true. */
  gif?: boolean;
}

/** Writes sample_XXX.{mp4,gif}, grid.png and optionally samples.npz into `dir`; returns the files. */
export async function writeSampleOutputs(dir: string, gen: GeneratedVideos, opts: SampleOutputOptions): Promise<string[]> {
  const { frames: t, height: h, width: w } = gen;
  const k = displayScale(h, w);
  const files: string[] = [];
  const frameSize = h * w * 3;
  for (let i = 0; i < gen.videos.length; i++) {
    const v = gen.videos[i];
    const big = Array.from({ length: t }, (_, f) => upscaleNearest({ data: v.subarray(f * frameSize, (f + 1) * frameSize), width: w, height: h }, k).data);
    const name = `sample_${String(i).padStart(3, '0')}`;
    if (opts.mp4 !== false) {
      const f = path.join(dir, `${name}.mp4`);
      await writeMp4(f, big, w * k, h * k, { fps: opts.fps });
      files.push(f);
    }
    if (opts.gif !== false) {
      const f = path.join(dir, `${name}.gif`);
      writeGif(f, big, w * k, h * k, opts.fps);
      files.push(f);
    }
  }
  const grid = upscaleNearest(videoGrid(gen.videos, t, h, w), k);
  const png = path.join(dir, 'grid.png');
  writePng(png, grid.data, grid.width, grid.height);
  files.push(png);
  if (opts.npz) {
    const all = new Uint8Array(gen.videos.length * t * frameSize);
    gen.videos.forEach((v, i) => all.set(v, i * t * frameSize));
    const f = path.join(dir, 'samples.npz');
    writeNpz(f, { videos: { shape: [gen.videos.length, t, h, w, 3], data: all } });
    files.push(f);
  }
  return files;
}
