/**
 * Conditional / unconditional joint training batches (lvdm-facts.md section 4): a `BatchPreparer`
 * for LvdmTrainer. Per example:
 *   window   W latents at spacing `latent_stride` from a random offset of the cached clip
 *            (sparse latents for the prediction model, consecutive for interpolation);
 *   mask     the role's conditional mask with probability p_cond, else all zero (unconditional);
 *   t        ~ U{0..T-1}, eps ~ N(0, I): x_gen = q(z_0, t);
 *   s        ~ U{0..s_max} (conditional examples of perturbation models): z_s = q(z_0, s);
 *   input    x = x_gen * (1 - m) + z_s * m, target eps (x0 = the window, for v-prediction), cond { mask, s level };
 *   loss     over the generated latents (weights 1 - m) or over all of them.
 * The random draws (`ConditionalDraws`) are separate from the tensor work so tests can rebuild a
 * batch independently from the same numbers.
 */
import * as tf from '@tensorflow/tfjs';
import { LongVideoConfig, TimestepSampling } from '../config/schema';
import { Rng } from '../nn/rng';
import { NoiseSchedule } from '../diffusion/schedule';
import { qSample } from '../diffusion/process';
import { sampleTimesteps } from '../diffusion/loss';
import { BatchPreparer, PreparedBatch } from '../lvdm/trainer';
import { conditionalKind, condFor, frameMask } from './conditioning';
import { composeInput, frameMask5d, perturbLatents } from './perturb';

/** Everything random about one batch (host arrays). */
export interface ConditionalDraws {
  /** First latent index of each example's window in its cached clip. */
  offsets: Int32Array;
  /** 1 = conditional mask, 0 = unconditional. */
  conditional: Uint8Array;
  /** Diffusion timestep of each example. */
  t: Int32Array;
  /** Perturbation strength of each example (null for unconditional examples or without perturbation). */
  s: (number | null)[];
  /** eps of x_gen, [B, W, h, w, c] flattened. */
  noise: Float32Array;
  /** eps' of z_s, same size (all zero without perturbation). */
  sNoise: Float32Array;
}

/** Latent frames a window spans in the cached clip: (W - 1) * stride + 1. */
export function windowSpan(spec: Pick<LongVideoConfig, 'window' | 'latent_stride'>): number {
  return (spec.window - 1) * spec.latent_stride + 1;
}

/** Draws a batch's randomness in a fixed order: offsets, mask choice, t, s, eps, eps'. */
export function drawConditional(
  rng: Rng,
  spec: LongVideoConfig,
  batch: number,
  clipLatents: number,
  frameSize: number,
  T: number,
  timestepSampling?: TimestepSampling,
): ConditionalDraws {
  const span = windowSpan(spec);
  if (span > clipLatents)
    throw new Error(
      `long.window ${spec.window} at latent_stride ${spec.latent_stride} spans ${span} latent frames but the cached clips have ${clipLatents} ` +
        `(raise data.frames to at least ${span} x the autoencoder's temporal factor)`,
    );
  const offsets = Int32Array.from({ length: batch }, () => rng.int(0, clipLatents - span));
  const conditional = Uint8Array.from({ length: batch }, () => (rng.uniform() < spec.p_cond ? 1 : 0));
  const t = sampleTimesteps(rng, batch, T, timestepSampling);
  const sMax = spec.s_max;
  if (sMax !== null && sMax >= T) throw new Error(`long.s_max ${sMax} must be below the number of diffusion timesteps ${T}`);
  const s = Array.from(conditional, (c) => (sMax !== null && c === 1 ? rng.int(0, sMax) : null));
  const n = batch * spec.window * frameSize;
  const noise = Float32Array.from(rng.normalArray(n));
  const sNoise = sMax !== null ? Float32Array.from(rng.normalArray(n)) : new Float32Array(n);
  return { offsets, conditional, t, s, noise, sNoise };
}

/** The mask row of each example. */
export function maskRows(spec: LongVideoConfig, conditional: ArrayLike<number>): Float32Array[] {
  const cond = frameMask(conditionalKind(spec), spec.window, spec.cond_frames);
  const none = frameMask('unconditional', spec.window);
  return Array.from(conditional, (c) => (c ? cond : none));
}

/** Windows [B, W, h, w, c] of the cached clips z0 [B, L, h, w, c] at the drawn offsets. */
export function selectWindows(z0: tf.Tensor5D, offsets: ArrayLike<number>, spec: Pick<LongVideoConfig, 'window' | 'latent_stride'>): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, l, h, w, c] = z0.shape;
    const idx = new Int32Array(b * spec.window);
    for (let i = 0; i < b; i++) for (let j = 0; j < spec.window; j++) idx[i * spec.window + j] = i * l + offsets[i] + j * spec.latent_stride;
    const flat = tf.reshape(z0, [b * l, h, w, c]);
    return tf.reshape(tf.gather(flat, tf.tensor1d(idx, 'int32')), [b, spec.window, h, w, c]) as tf.Tensor5D; // [B, W, h, w, c]
  });
}

/** Builds the batch of `draws` from cached clips z0 [B, L, h, w, c] (z0 is not disposed). */
export function buildConditionalBatch(z0: tf.Tensor5D, draws: ConditionalDraws, spec: LongVideoConfig, schedule: NoiseSchedule): PreparedBatch {
  const rows = maskRows(spec, draws.conditional);
  const cond = condFor(spec, rows, draws.s);
  const { x, target, x0, weights } = tf.tidy(() => {
    const z = selectWindows(z0, draws.offsets, spec); // [B, W, h, w, c]
    const shape = z.shape;
    const eps = tf.tensor(draws.noise, shape) as tf.Tensor5D;
    const xGen = qSample(schedule, z, draws.t, eps); // q(z_0, t)
    // Unconditional examples have no condition positions; their s is irrelevant (0 used for the draw).
    const sT = spec.s_max === null ? null : Int32Array.from(draws.s, (v) => v ?? 0);
    const zs = perturbLatents(schedule, z, sT, sT ? (tf.tensor(draws.sNoise, shape) as tf.Tensor5D) : null); // q(z_0, s)
    const xIn = composeInput(xGen, zs, cond.mask);
    const w = spec.loss_frames === 'generated' ? (tf.sub(1, frameMask5d(cond.mask)) as tf.Tensor5D) : undefined; // [B, W, 1, 1, 1]
    return { x: xIn, target: eps, x0: z, weights: w };
  });
  const out: PreparedBatch = { x, t: draws.t, target, x0, cond };
  if (weights) out.weights = weights;
  return out;
}

/** The BatchPreparer of a prediction / interpolation model. */
export function conditionalBatchPreparer(spec: LongVideoConfig): BatchPreparer {
  return (z0, { schedule, rng, timestepSampling }) => {
    const [b, l, h, w, c] = z0.shape;
    const draws = drawConditional(rng, spec, b, l, h * w * c, schedule.T, timestepSampling);
    return buildConditionalBatch(z0, draws, spec, schedule);
  };
}
