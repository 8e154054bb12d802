/**
 * The Gaussian forward process and its posterior, as tensor functions (Ho et al., 2020):
 *   q(x_t | x_0)          = N(sqrt(abar_t) x_0, (1 - abar_t) I)                     (eq. 4)
 *   q(x_{t-1} | x_t, x_0) = N(coef1_t x_0 + coef2_t x_t, beta~_t I)                 (eqs. 6-7)
 *   x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)                                 (from eq. 4)
 *   v   = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0   (Salimans & Ho, 2022, "Progressive Distillation
 *         for Fast Sampling of Diffusion Models", section 4), so eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t
 * `t` is one timestep per batch element; per-timestep constants come from the float64 tables of a
 * NoiseSchedule and are broadcast over the non-batch axes (tensors are [B, ...]).
 */
import * as tf from '@tensorflow/tfjs';
import { NoiseSchedule } from './schedule';

/** table[t[b]] as a float32 tensor [B, 1, ..., 1] of the given rank (broadcasts over x). */
export function extract(table: Float64Array, t: ArrayLike<number>, rank: number): tf.Tensor {
  const v = new Float32Array(t.length);
  for (let i = 0; i < t.length; i++) {
    const ti = t[i];
    if (!(ti >= 0 && ti < table.length)) throw new Error(`timestep ${ti} outside [0, ${table.length - 1}]`);
    v[i] = table[ti];
  }
  return tf.tensor(v, [t.length, ...new Array<number>(rank - 1).fill(1)], 'float32');
}

function checkBatch(x: tf.Tensor, t: ArrayLike<number>, fn: string): void {
  if (x.shape[0] !== t.length) throw new Error(`${fn}: batch of x is ${x.shape[0]} but ${t.length} timesteps were given`);
}

/** Samples x_t ~ q(x_t | x_0) with the given noise: sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4). */
export function qSample<T extends tf.Tensor>(s: NoiseSchedule, x0: T, t: ArrayLike<number>, noise: T): T {
  checkBatch(x0, t, 'qSample');
  return tf.tidy(() => {
    const r = x0.rank;
    return tf.add(tf.mul(x0, extract(s.sqrtAlphasCumprod, t, r)), tf.mul(noise, extract(s.sqrtOneMinusAlphasCumprod, t, r))) as T;
  });
}

/** Mean and variance of q(x_t | x_0); the variance is per batch element (float64). */
export function qMeanVariance<T extends tf.Tensor>(s: NoiseSchedule, x0: T, t: ArrayLike<number>): { mean: T; variance: Float64Array } {
  checkBatch(x0, t, 'qMeanVariance');
  const mean = tf.tidy(() => tf.mul(x0, extract(s.sqrtAlphasCumprod, t, x0.rank)) as T);
  const variance = Float64Array.from(Array.from(t, (ti) => 1 - s.alphasCumprod[ti]));
  return { mean, variance };
}

/** x_0 predicted from x_t and eps: sqrt(1 / abar_t) x_t - sqrt(1 / abar_t - 1) eps. */
export function predictX0FromEps<T extends tf.Tensor>(s: NoiseSchedule, xt: T, t: ArrayLike<number>, eps: T): T {
  checkBatch(xt, t, 'predictX0FromEps');
  return tf.tidy(() => {
    const r = xt.rank;
    return tf.sub(tf.mul(xt, extract(s.sqrtRecipAlphasCumprod, t, r)), tf.mul(eps, extract(s.sqrtRecipm1AlphasCumprod, t, r))) as T;
  });
}

/** eps implied by x_t and x_0: (sqrt(1 / abar_t) x_t - x_0) / sqrt(1 / abar_t - 1). */
export function predictEpsFromX0<T extends tf.Tensor>(s: NoiseSchedule, xt: T, t: ArrayLike<number>, x0: T): T {
  checkBatch(xt, t, 'predictEpsFromX0');
  return tf.tidy(() => {
    const r = xt.rank;
    return tf.div(tf.sub(tf.mul(xt, extract(s.sqrtRecipAlphasCumprod, t, r)), x0), extract(s.sqrtRecipm1AlphasCumprod, t, r)) as T;
  });
}

/** The v-prediction target (Salimans & Ho 2022): sqrt(abar_t) eps - sqrt(1 - abar_t) x_0. */
export function vFromEps<T extends tf.Tensor>(s: NoiseSchedule, x0: T, t: ArrayLike<number>, eps: T): T {
  checkBatch(x0, t, 'vFromEps');
  return tf.tidy(() => {
    const r = x0.rank;
    return tf.sub(tf.mul(eps, extract(s.sqrtAlphasCumprod, t, r)), tf.mul(x0, extract(s.sqrtOneMinusAlphasCumprod, t, r))) as T;
  });
}

/**
 * eps implied by x_t and a v prediction: sqrt(abar_t) v + sqrt(1 - abar_t) x_t (substitute
 * x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps into the definition of v).
 */
export function epsFromV<T extends tf.Tensor>(s: NoiseSchedule, xt: T, t: ArrayLike<number>, v: T): T {
  checkBatch(xt, t, 'epsFromV');
  return tf.tidy(() => {
    const r = xt.rank;
    return tf.add(tf.mul(v, extract(s.sqrtAlphasCumprod, t, r)), tf.mul(xt, extract(s.sqrtOneMinusAlphasCumprod, t, r))) as T;
  });
}

export interface Posterior<T extends tf.Tensor> {
  mean: T;
  /** beta~_t per batch element. */
  variance: Float64Array;
  /** log beta~_t, clipped at t = 0 (see NoiseSchedule). */
  logVariance: Float64Array;
}

/** q(x_{t-1} | x_t, x_0) = N(coef1_t x_0 + coef2_t x_t, beta~_t) (eqs. 6-7). */
export function qPosterior<T extends tf.Tensor>(s: NoiseSchedule, x0: T, xt: T, t: ArrayLike<number>): Posterior<T> {
  checkBatch(xt, t, 'qPosterior');
  const mean = tf.tidy(() => {
    const r = xt.rank;
    return tf.add(tf.mul(x0, extract(s.posteriorMeanCoef1, t, r)), tf.mul(xt, extract(s.posteriorMeanCoef2, t, r))) as T;
  });
  const variance = Float64Array.from(Array.from(t, (ti) => s.posteriorVariance[ti]));
  const logVariance = Float64Array.from(Array.from(t, (ti) => s.posteriorLogVarianceClipped[ti]));
  return { mean, variance, logVariance };
}
