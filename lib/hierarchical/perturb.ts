/**
 * Conditional latent perturbation (LVDM, He et al. 2022, Sec. 4.1; lvdm-facts.md section 4):
 * condition latents enter the network as z_s = q(z_0, s) = sqrt(abar_s) z_0 + sqrt(1 - abar_s) eps',
 * and the noisy input is
 *   x = q(z_0, t) * (1 - m) + z_s * m
 * with m the per-frame mask (1 = condition). s = null means clean conditions (z_s = z_0).
 */
import * as tf from '@tensorflow/tfjs';
import { NoiseSchedule } from '../diffusion/schedule';
import { qSample } from '../diffusion/process';

/** z_s = q(z_0, s) for every frame of each example (s per example); s null -> a copy of z_0. */
export function perturbLatents(schedule: NoiseSchedule, z0: tf.Tensor5D, s: ArrayLike<number> | null, noise: tf.Tensor5D | null): tf.Tensor5D {
  if (s === null) return z0.clone();
  if (!noise) throw new Error('perturbLatents: noise is required when s is given');
  schedule.checkTimesteps(s, 'perturbation s');
  return qSample(schedule, z0, s, noise);
}

/** Mask [B, W] (or [B, W, 1, 1, 1]) as [B, W, 1, 1, 1] float32. */
export function frameMask5d(mask: tf.Tensor): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, w] = mask.shape;
    if (mask.size !== b * w) throw new Error(`mask of shape [${mask.shape}] is not per frame ([B, W])`);
    return tf.reshape(tf.cast(mask, 'float32'), [b, w, 1, 1, 1]) as tf.Tensor5D;
  });
}

/** x = x_gen * (1 - m) + z_cond * m, m per frame ([B, W]). */
export function composeInput(xGen: tf.Tensor5D, zCond: tf.Tensor5D, mask: tf.Tensor): tf.Tensor5D {
  return tf.tidy(() => {
    const m = frameMask5d(mask); // [B, W, 1, 1, 1]
    return tf.add(tf.mul(xGen, tf.sub(1, m)), tf.mul(zCond, m)) as tf.Tensor5D;
  });
}
