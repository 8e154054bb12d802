/**
 * Training objective: L_simple = E_{t, x_0, eps} || eps - eps_theta(x_t, t) ||  (Ho et al., 2020, eq. 14)
 * with the norm a config choice: 'mse' is the paper's formula, 'l1' what the public LVDM code uses
 * (lvdm-facts.md section 2). Timesteps are drawn uniformly from {0, ..., T-1}.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../nn/rng';
import type { NoiseSchedule } from './schedule';
import type { TimestepSampling } from '../config/schema';

export type LossKind = 'l1' | 'mse';

/**
 * Mean of |pred - target| ('l1') or (pred - target)^2 ('mse'). Optional `weights` broadcastable to
 * pred (e.g. [B, T, 1, 1, 1]: 1 for the frames that count) gives the weighted mean
 * sum(w * l) / sum(w broadcast to pred's shape); all-zero weights give 0.
 */
export function diffusionLoss(pred: tf.Tensor, target: tf.Tensor, kind: LossKind, weights?: tf.Tensor): tf.Scalar {
  if (pred.shape.length !== target.shape.length || pred.shape.some((d, i) => d !== target.shape[i]))
    throw new Error(`diffusionLoss: prediction [${pred.shape}] and target [${target.shape}] differ in shape`);
  if (kind !== 'l1' && kind !== 'mse') throw new Error(`diffusionLoss: unknown loss '${String(kind)}' (expected 'l1' or 'mse')`);
  return tf.tidy(() => {
    const d = tf.sub(pred, target);
    const l = kind === 'l1' ? tf.abs(d) : tf.square(d);
    if (!weights) return tf.mean(l) as tf.Scalar;
    if (weights.rank !== pred.rank || weights.shape.some((w, i) => w !== 1 && w !== pred.shape[i]))
      throw new Error(`diffusionLoss: weights [${weights.shape}] do not broadcast to [${pred.shape}]`);
    // Each weight entry covers `rep` elements of the loss.
    const rep = pred.size / weights.size;
    const denom = tf.maximum(tf.mul(tf.sum(weights), rep), 1e-12);
    return tf.div(tf.sum(tf.mul(l, weights)), denom) as tf.Scalar;
  });
}

/**
 * B training timesteps: uniformly from {0, ..., T-1} (L_simple), or with `sampling.logit_normal`
 * t = min(T - 1, floor(T * sigmoid(n))), n ~ N(mean, std) (Esser et al. 2024, section 3.1: the
 * logit-normal density over t / T, weighting the middle steps).
 */
export function sampleTimesteps(rng: Rng, batch: number, T: number, sampling?: TimestepSampling): Int32Array {
  const t = new Int32Array(batch);
  const ln = sampling?.logit_normal;
  for (let i = 0; i < batch; i++) {
    if (!ln) t[i] = rng.int(0, T - 1);
    else t[i] = Math.min(T - 1, Math.floor(T / (1 + Math.exp(-(ln.mean + ln.std * rng.normal())))));
  }
  return t;
}

/** eps ~ N(0, I) of the given shape, drawn from `rng`. */
export function gaussianNoise(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.normalArray(n), shape, 'float32');
}

/**
 * Per-sample weights that turn the eps loss into the v-prediction loss (Salimans & Ho 2022):
 * v^ - v = (eps^ - eps) / sqrt(abar_t), so 1 / sqrt(abar_t) for 'l1' and 1 / abar_t for 'mse'.
 * Returned as [B, 1, 1, 1, 1].
 */
export function vLossWeights(schedule: NoiseSchedule, t: ArrayLike<number>, kind: LossKind): tf.Tensor5D {
  const w = new Float32Array(t.length);
  for (let i = 0; i < t.length; i++) {
    const ab = schedule.alphasCumprod[t[i]];
    w[i] = kind === 'l1' ? 1 / Math.sqrt(ab) : 1 / ab;
  }
  return tf.tensor5d(w, [t.length, 1, 1, 1, 1]);
}

/**
 * Loss weights towards moving latents, 1 + lambda * max(m - tau, 0) with m the mean over latent
 * channels of |x0 - x0's mean over frames| (lib/nn/motion-weights.ts; `diffusion.motion_weight`).
 */
export { motionWeights } from '../nn/motion-weights';

/** `extra` multiplied into existing loss weights (disposing both inputs), or `extra` alone. */
export function withExtraWeights(weights: tf.Tensor | undefined, extra: tf.Tensor5D): tf.Tensor {
  if (!weights) return extra;
  const out = tf.mul(weights, extra);
  tf.dispose([weights, extra]);
  return out;
}
