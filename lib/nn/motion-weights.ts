/**
 * Per-element loss weights that emphasise what moves (this project's option, not LVDM's; issue 12:
 * small moving objects weigh a few percent of a uniform loss, and the models treat them as noise,
 * experiments/RESULTS.md "Ucf fs2: a larger short-video UNet"):
 *   w = 1 + lambda * max(m - tau, 0),
 * m = |x - x's mean over the clip's frames| reduced over channels ('mean' for latents, 'max' for
 * pixels: a pixel moves where any colour changes), shape [B, T, H, W, 1]. A threshold tau > 0 leaves
 * changes below it at weight 1. x is data (no gradient). Used by the latent models' loss
 * (lib/diffusion/loss.ts, `diffusion.motion_weight`) and by the autoencoder's reconstruction loss
 * (`autoencoder.loss.motion_weight`, `finetune.motion_weight`).
 */
import * as tf from '@tensorflow/tfjs';

export type ChannelReduce = 'mean' | 'max';

/** m = |x - x's mean over frames| reduced over channels, [B, T, H, W, 1]. */
export function motionMagnitude(x: tf.Tensor5D, channels: ChannelReduce = 'mean'): tf.Tensor5D {
  if (channels !== 'mean' && channels !== 'max') throw new Error(`motionMagnitude: channels must be 'mean' or 'max', got '${String(channels)}'`);
  return tf.tidy(() => {
    const dev = tf.abs(tf.sub(x, tf.mean(x, 1, true)));
    return (channels === 'mean' ? tf.mean(dev, 4, true) : tf.max(dev, 4, true)) as tf.Tensor5D;
  });
}

export function motionWeights(x: tf.Tensor5D, lambda: number, tau = 0, channels: ChannelReduce = 'mean'): tf.Tensor5D {
  if (!(lambda >= 0)) throw new Error(`motionWeights: lambda must be >= 0, got ${lambda}`);
  if (!(tau >= 0)) throw new Error(`motionWeights: threshold tau must be >= 0, got ${tau}`);
  return tf.tidy(() => tf.add(tf.mul(tf.relu(tf.sub(motionMagnitude(x, channels), tau)), lambda), 1) as tf.Tensor5D);
}

/** Throws where a motion threshold is set without a motion weight (it would change nothing); `section` names the config section, `source` the config. */
export function checkMotionKeys(section: string, weight: number | undefined, threshold: number | undefined, source?: string): void {
  if (threshold !== undefined && !weight)
    throw new Error(
      `${source ? `${source}: ` : ''}${section}.motion_threshold is ${threshold} but ${section}.motion_weight is unset or 0, so it would change nothing; set motion_weight > 0 or remove motion_threshold`,
    );
}
