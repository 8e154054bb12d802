/**
 * Ancestral DDPM sampling (Ho et al., 2020, Algorithm 2) and DDIM (Song et al., 2021, "Denoising
 * Diffusion Implicit Models", arXiv 2010.02502, eq. 12), as async generators of steps, plus
 * `sample()` which runs one to the end and returns the result.
 *
 * Samplers are functions of (model, schedule, shape, options): they never see a network, only an
 * `EpsModel`. Noise comes from the options' seeded Rng or an injected NoiseSource. Guidance
 * (eps = (1 + w) eps_c - w eps_u) and fixed "known" positions are handled here, so every model and
 * every long-video procedure shares them.
 *
 * Tensor ownership: a yielded step's tensors stay valid until the consumer asks for the next step;
 * the generator then disposes them (also when the loop is left early). `sample()` returns a tensor
 * the caller owns. Inputs given in the options (xT, cond, known) are never disposed.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../nn/rng';
import { NoiseSchedule } from './schedule';
import { Cond, EpsModel, Guidance, KnownValues, NoiseSource, SamplerStep, withSelfCondition } from './types';

export interface SamplerOptions {
  /** Seeded source of x_T and of the per-step noise (used unless `noise` is given). */
  rng?: Rng;
  /** Injected noise source (overrides `rng`). */
  noise?: NoiseSource;
  /** Starting point x_T (default: standard normal noise of `shape`). Not disposed. */
  xT?: tf.Tensor5D;
  cond?: Cond;
  guidance?: Guidance;
  known?: KnownValues;
  /** Clamp the predicted x_0 to [-c, c] (pixel-space models use 1; latent models leave it off). */
  clipX0?: number;
}

export interface DdpmOptions extends SamplerOptions {
  /** Reverse-step variance: 'posterior' = beta~_t (fixed small), 'beta' = beta_t (fixed large). */
  variance?: 'posterior' | 'beta';
}

export type DdimSpacing = 'trailing' | 'leading';

export interface DdimOptions extends SamplerOptions {
  /** Number of denoising steps S (1..T). */
  steps: number;
  /** 0 = deterministic DDIM, 1 = DDPM-like ancestral noise. */
  eta?: number;
  /**
   * Which timesteps: 'trailing' (default) = floor((i + 1) T / S) - 1, i = 0..S-1, so the first step
   * starts at T - 1 (pure noise) and S = T gives every timestep; 'leading' = LDM/LVDM's "uniform"
   * discretisation, i * floor(T / S) + 1.
   */
  spacing?: DdimSpacing;
  /**
   * abar_prev of the last step: 'one' (default; the sample is the final x_0 estimate when eta = 0) or
   * 'alpha0' = abar at t = 0, as LDM/LVDM's DDIMSampler (make_ddim_sampling_parameters) has it.
   */
  finalAlpha?: 'one' | 'alpha0';
  /**
   * Start from x_{startT} = `xT` instead of pure noise at T - 1 (SDEdit, Meng et al. 2022: noise a
   * given latent to startT with q_sample and denoise it): the first step is at startT, then the
   * grid's timesteps below it. Needs `xT`.
   */
  startT?: number;
}

export type SamplerSpec = ({ kind: 'ddpm' } & DdpmOptions) | ({ kind: 'ddim' } & DdimOptions);

function noiseSource(opts: SamplerOptions): NoiseSource {
  if (opts.noise) return opts.noise;
  const rng = opts.rng;
  return (shape: number[]) => {
    if (!rng) throw new Error('sampler: noise is needed but neither options.rng nor options.noise was given');
    return tf.tensor(rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape, 'float32');
  };
}

function checkShape(shape: number[], opts: SamplerOptions): void {
  if (shape.length !== 5 || shape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`sampler: shape must be [B, T, H, W, C] positive integers, got [${shape}]`);
  const same = (s: number[]): boolean => s.length === shape.length && s.every((d, i) => d === shape[i]);
  if (opts.xT && !same(opts.xT.shape)) throw new Error(`sampler: xT has shape [${opts.xT.shape}], expected [${shape}]`);
  if (opts.known && !same(opts.known.values.shape)) throw new Error(`sampler: known.values has shape [${opts.known.values.shape}], expected [${shape}]`);
  if (opts.guidance && !(Number.isFinite(opts.guidance.scale) && opts.guidance.scale >= -1))
    throw new Error(`sampler: guidance scale w must be a finite number >= -1 (s = 1 + w >= 0), got ${opts.guidance.scale}`);
}

/** x * (1 - mask) + values * mask. */
export function writeKnown(x: tf.Tensor5D, known: KnownValues): tf.Tensor5D {
  return tf.tidy(() => tf.add(tf.mul(x, tf.sub(1, known.mask)), tf.mul(known.values, known.mask)) as tf.Tensor5D);
}

/** Concatenates two conditionings key by key along the batch axis (they must have the same keys). */
export function concatCond(a: Cond, b: Cond): Cond {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i]))
    throw new Error(`guidance: conditional keys {${ka.join(', ')}} and unconditional keys {${kb.join(', ')}} differ`);
  const out: Record<string, tf.Tensor> = {};
  for (const k of ka) out[k] = tf.concat([a[k], b[k]], 0);
  return out;
}

/**
 * The one guidance combination: eps = eps_u + s (eps_c - eps_u). Classifier-free guidance (Ho &
 * Salimans, 2022) with scale s; LVDM's long-video form eps = (1 + w) eps_c - w eps_u is s = 1 + w.
 * s = 1 gives eps_c, s = 0 gives eps_u.
 */
export function combineGuidance<T extends tf.Tensor>(epsC: T, epsU: T, s: number): T {
  return tf.tidy(() => tf.add(epsU, tf.mul(tf.sub(epsC, epsU), s)) as T);
}

/**
 * Autoguidance (Karras et al., 2024, "Guiding a Diffusion Model with a Bad Version of Itself",
 * arXiv 2406.02507, eq. 2): D = D_bad + s (D_good - D_bad), a weaker model of the same task (less
 * trained or smaller) in place of the unconditional branch, so an unconditional model can be guided.
 * Written on eps: x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar) is affine in eps with weights summing
 * to one, so the same combination holds for x0, eps and v. s = 1 is the good model alone.
 */
export function autoguidedModel(good: EpsModel, bad: EpsModel, s: number): EpsModel {
  if (!(Number.isFinite(s) && s >= 0)) throw new Error(`autoguidance: scale s must be a finite number >= 0, got ${s}`);
  if (s === 1) return good;
  // One estimate of x_0 (the combined one) is fed back to whichever of the two reads it.
  const self = good.selfCondition || bad.selfCondition;
  return withSelfCondition((x, t, cond) => tf.tidy(() => combineGuidance(good(x, t, forModel(good, cond)), bad(x, t, forModel(bad, cond)), s)), self);
}

/**
 * Expert denoisers by noise level (Balaji et al. 2022, eDiff-I, section 4: an ensemble of
 * denoisers, each trained for or chosen at a range of noise levels): `low` denoises the timesteps
 * t < below, `high` the rest. One x_0 estimate is fed back to whichever of the two reads it
 * (self-conditioning). A sampler's step gives every batch element the same t; timesteps on both
 * sides of `below` in one call are refused.
 */
export function noiseLevelExperts(high: EpsModel, low: EpsModel, below: number): EpsModel {
  if (!(Number.isInteger(below) && below >= 1)) throw new Error(`noise-level experts: the switch timestep must be an integer >= 1, got ${below}`);
  const self = high.selfCondition || low.selfCondition;
  return withSelfCondition((x, t, cond) => {
    const ts = t instanceof Int32Array ? t : t.dataSync();
    const nLow = ts.filter((v) => v < below).length;
    if (nLow !== 0 && nLow !== ts.length)
      throw new Error(`noise-level experts: one call with timesteps on both sides of t = ${below} (${Math.min(...ts)} to ${Math.max(...ts)})`);
    const expert = nLow ? low : high;
    return expert(x, t, forModel(expert, cond));
  }, self);
}

/**
 * Epsilon scaling against exposure bias (Ning et al. 2024, "Elucidating the Exposure Bias in
 * Diffusion Models", ICLR, section 5: eps_theta(x_t, t) / lambda_t), with lambda_t = lambda + k t
 * (the paper's linear schedule over t; k = 0 its constant one). In sampling the network reads
 * inputs built from its own estimates, and the paper finds it predicting a larger eps there than
 * in training (experiments/exposure-bias.ts measures this for a model); dividing by lambda > 1
 * moves the sampling trajectory back towards the training one. lambda = 1, k = 0 is the model
 * itself. Self-conditioning is passed through.
 */
export function epsilonScaledModel(model: EpsModel, lambda: number, k = 0): EpsModel {
  if (!(Number.isFinite(lambda) && lambda > 0)) throw new Error(`epsilon scaling: lambda must be a finite number > 0, got ${lambda}`);
  if (!Number.isFinite(k)) throw new Error(`epsilon scaling: the slope k must be a finite number, got ${k}`);
  if (lambda === 1 && k === 0) return model;
  return withSelfCondition((x, t, cond) => {
    const ts = t instanceof Int32Array ? t : t.dataSync();
    const scale = new Float32Array(ts.length);
    for (let i = 0; i < ts.length; i++) {
      const l = lambda + k * ts[i];
      if (!(l > 0)) throw new Error(`epsilon scaling: lambda_t = ${lambda} + ${k} t is ${l} at t = ${ts[i]}; it must stay > 0`);
      scale[i] = 1 / l;
    }
    return tf.tidy(() => tf.mul(model(x, t, cond), tf.tensor(scale, [ts.length, ...new Array<number>(x.rank - 1).fill(1)])) as tf.Tensor5D);
  }, model.selfCondition);
}

/** cond without `self_cond` for a model that does not read it. */
function forModel(model: EpsModel, cond: Cond | undefined): Cond | undefined {
  if (!cond || model.selfCondition || !('self_cond' in cond)) return cond;
  const { self_cond: _, ...rest } = cond;
  return rest;
}

/** Classifier-free guidance with scale s (text-to-video: eps_u from the empty or negative prompt) as a sampler `Guidance` (w = s - 1). */
export function cfgGuidance(s: number, uncond: Cond, batched?: boolean): Guidance {
  if (!(Number.isFinite(s) && s >= 0)) throw new Error(`guidance: scale s must be a finite number >= 0, got ${s}`);
  return { scale: s - 1, uncond, batched };
}

/**
 * eps for one step, with guidance when requested: eps = eps_u + (1 + w) (eps_c - eps_u)
 * (= (1 + w) eps_c - w eps_u), eps_u from the same model under `guidance.uncond`; batched into one
 * forward of [x; x] unless `batched: false`.
 */
export function guidedEps(model: EpsModel, x: tf.Tensor5D, t: Int32Array, cond: Cond | undefined, guidance?: Guidance): tf.Tensor5D {
  const w = guidance?.scale ?? 0;
  if (!guidance || w === 0) return model(x, t, cond);
  return tf.tidy(() => {
    const b = x.shape[0];
    let ec: tf.Tensor5D;
    let eu: tf.Tensor5D;
    if (guidance.batched !== false) {
      const tt = new Int32Array(2 * b);
      tt.set(t, 0);
      tt.set(t, b);
      const e = model(tf.concat([x, x], 0), tt, concatCond(cond ?? {}, guidance.uncond)); // [2B, ...]
      ec = tf.slice(e, [0, 0, 0, 0, 0], [b, -1, -1, -1, -1]);
      eu = tf.slice(e, [b, 0, 0, 0, 0], [b, -1, -1, -1, -1]);
    } else {
      ec = model(x, t, cond);
      eu = model(x, t, guidance.uncond);
    }
    return combineGuidance(ec, eu, 1 + w);
  });
}

function fullT(b: number, t: number): Int32Array {
  return new Int32Array(b).fill(t);
}

/**
 * cond and guidance with the previous step's x_0 estimate as `self_cond` for a self-conditioned
 * model (zeros before the first estimate, as in training; Chen et al. 2022, Algorithm 2); unchanged
 * otherwise. Both guidance branches read the same estimate.
 */
function selfConditioned(model: EpsModel, x: tf.Tensor5D, prevX0: tf.Tensor5D | null, opts: SamplerOptions): { cond?: Cond; guidance?: Guidance } {
  if (!model.selfCondition) return { cond: opts.cond, guidance: opts.guidance };
  const self_cond = prevX0 ?? tf.zerosLike(x);
  return { cond: { ...opts.cond, self_cond }, guidance: opts.guidance && { ...opts.guidance, uncond: { ...opts.guidance.uncond, self_cond } } };
}

/** (x0, eps) from the model at timestep t with abar = abar_t, optionally clamping x0; prevX0 = the previous step's estimate (self-conditioning). */
function predict(
  model: EpsModel,
  x: tf.Tensor5D,
  t: number,
  ab: number,
  opts: SamplerOptions,
  prevX0: tf.Tensor5D | null,
): { x0: tf.Tensor5D; eps: tf.Tensor5D } {
  return tf.tidy(() => {
    const xin = opts.known ? writeKnown(x, opts.known) : x;
    const { cond, guidance } = selfConditioned(model, xin, prevX0, opts);
    let eps = guidedEps(model, xin, fullT(x.shape[0], t), cond, guidance);
    // x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
    let x0 = tf.div(tf.sub(xin, tf.mul(eps, Math.sqrt(1 - ab))), Math.sqrt(ab)) as tf.Tensor5D;
    if (opts.clipX0 && opts.clipX0 > 0) {
      x0 = tf.clipByValue(x0, -opts.clipX0, opts.clipX0);
      eps = tf.div(tf.sub(xin, tf.mul(x0, Math.sqrt(ab))), Math.sqrt(1 - ab)) as tf.Tensor5D;
    }
    return { x0, eps };
  });
}

/** DDIM timesteps in increasing order. */
export function ddimTimesteps(T: number, steps: number, spacing: DdimSpacing = 'trailing'): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new Error(`DDIM: steps must be an integer in [1, ${T}], got ${steps}`);
  if (spacing === 'trailing') return Array.from({ length: steps }, (_, i) => Math.floor(((i + 1) * T) / steps) - 1);
  if (spacing === 'leading') {
    const c = Math.floor(T / steps);
    return Array.from({ length: steps }, (_, i) => Math.min(i * c + 1, T - 1));
  }
  throw new Error(`DDIM: unknown spacing '${String(spacing)}' (expected 'trailing' or 'leading')`);
}

/** The grid `ts` (increasing) cut to start at opts.startT, if given: [grid below startT..., startT]. */
function ddimStartingAt(ts: number[], opts: DdimOptions, T: number): number[] {
  const start = opts.startT;
  if (start === undefined) return ts;
  if (!Number.isInteger(start) || start < 0 || start >= T) throw new Error(`DDIM: startT must be an integer in [0, ${T - 1}], got ${start}`);
  if (!opts.xT) throw new Error('DDIM: startT needs xT, the latent noised to startT (q_sample)');
  return [...ts.filter((t) => t < start), start];
}

/** Shared driver: owns x/x0 between yields and disposes them when the consumer moves on. */
async function* drive(
  shape: number[],
  opts: SamplerOptions,
  ts: number[],
  update: (x: tf.Tensor5D, i: number, noise: NoiseSource, prevX0: tf.Tensor5D | null) => { x: tf.Tensor5D; x0: tf.Tensor5D },
): AsyncGenerator<SamplerStep> {
  checkShape(shape, opts);
  const noise = noiseSource(opts);
  let x: tf.Tensor5D = opts.xT ? opts.xT.clone() : (noise(shape) as tf.Tensor5D);
  if (opts.known) {
    const w = writeKnown(x, opts.known);
    x.dispose();
    x = w;
  }
  let x0: tf.Tensor5D | null = null;
  try {
    for (let k = 0; k < ts.length; k++) {
      const i = ts.length - 1 - k; // walk the timesteps from the noisiest down
      const r = update(x, i, noise, x0);
      let nx = r.x;
      if (opts.known) {
        const w = writeKnown(nx, opts.known);
        nx.dispose();
        nx = w;
      }
      x.dispose();
      x0?.dispose();
      x = nx;
      x0 = r.x0;
      yield { index: k, total: ts.length, t: ts[i], x, x0 };
    }
  } finally {
    x.dispose();
    x0?.dispose();
  }
}

/** Ancestral sampling over all T timesteps: x_{t-1} = mu~(x_0_hat, x_t) + sigma_t z (Algorithm 2). */
export function ddpmSteps(model: EpsModel, schedule: NoiseSchedule, shape: number[], opts: DdpmOptions = {}): AsyncGenerator<SamplerStep> {
  const ts = Array.from({ length: schedule.T }, (_, i) => i);
  const large = opts.variance === 'beta';
  if (opts.variance !== undefined && opts.variance !== 'posterior' && !large)
    throw new Error(`DDPM: unknown variance '${String(opts.variance)}' (expected 'posterior' or 'beta')`);
  return drive(shape, opts, ts, (x, t, noise, prevX0) => {
    const { x0, eps } = predict(model, x, t, schedule.alphasCumprod[t], opts, prevX0);
    const nx = tf.tidy(() => {
      // mu~_t = coef1 x_0 + coef2 x_t (eq. 7)
      const mean = tf.add(tf.mul(x0, schedule.posteriorMeanCoef1[t]), tf.mul(x, schedule.posteriorMeanCoef2[t])) as tf.Tensor5D;
      if (t === 0) return mean;
      const variance = large ? schedule.betas[t] : schedule.posteriorVariance[t];
      return tf.add(mean, tf.mul(noise(shape), Math.sqrt(variance))) as tf.Tensor5D;
    });
    eps.dispose();
    return { x: nx, x0 };
  });
}

/**
 * DDIM, eq. 12: x_prev = sqrt(abar_prev) x_0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
 * sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev); abar_prev = 1
 * after the last step (the sample is the final x_0 estimate when eta = 0).
 */
export function ddimSteps(model: EpsModel, schedule: NoiseSchedule, shape: number[], opts: DdimOptions): AsyncGenerator<SamplerStep> {
  const eta = opts.eta ?? 0;
  if (!(eta >= 0 && eta <= 1)) throw new Error(`DDIM: eta must be in [0, 1], got ${eta}`);
  const ts = ddimStartingAt(ddimTimesteps(schedule.T, opts.steps, opts.spacing ?? 'trailing'), opts, schedule.T);
  return drive(shape, opts, ts, (x, i, noise, prevX0) => {
    const t = ts[i];
    const ab = schedule.alphasCumprod[t];
    const abPrev = i > 0 ? schedule.alphasCumprod[ts[i - 1]] : opts.finalAlpha === 'alpha0' ? schedule.alphasCumprod[0] : 1;
    const sigma = eta * Math.sqrt((1 - abPrev) / (1 - ab)) * Math.sqrt(1 - ab / abPrev);
    const { x0, eps } = predict(model, x, t, ab, opts, prevX0);
    const nx = tf.tidy(() => {
      const dirCoef = Math.sqrt(Math.max(1 - abPrev - sigma * sigma, 0));
      let y = tf.add(tf.mul(x0, Math.sqrt(abPrev)), tf.mul(eps, dirCoef)) as tf.Tensor5D;
      if (sigma > 0) y = tf.add(y, tf.mul(noise(shape), sigma));
      return y;
    });
    eps.dispose();
    return { x: nx, x0 };
  });
}

/** The step generator for a spec. */
export function samplerSteps(model: EpsModel, schedule: NoiseSchedule, shape: number[], spec: SamplerSpec): AsyncGenerator<SamplerStep> {
  if (spec.kind === 'ddpm') return ddpmSteps(model, schedule, shape, spec);
  if (spec.kind === 'ddim') return ddimSteps(model, schedule, shape, spec);
  throw new Error(`sampler: unknown kind '${String((spec as { kind: unknown }).kind)}' (expected 'ddpm' or 'ddim')`);
}

/**
 * Runs a sampler to the end and returns the final sample (caller owns it). `onStep` sees every
 * step (its tensors are valid only during the call).
 */
export async function sample(
  model: EpsModel,
  schedule: NoiseSchedule,
  shape: number[],
  spec: SamplerSpec,
  onStep?: (step: SamplerStep) => void | Promise<void>,
): Promise<tf.Tensor5D> {
  let out: tf.Tensor5D | null = null;
  for await (const step of samplerSteps(model, schedule, shape, spec)) {
    if (onStep) await onStep(step);
    if (step.index === step.total - 1) out = step.x.clone();
  }
  if (!out) throw new Error('sampler: produced no steps');
  return out;
}
