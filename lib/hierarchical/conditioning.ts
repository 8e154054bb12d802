/**
 * Masks and the condition noise level s: the conventions shared by training (batch.ts) and
 * sampling (sample.ts), so that the unconditional branch at sampling is exactly what training saw
 * (lvdm-facts.md section 4; the public code passes no s there although training always passed one).
 *
 * Mask: one value per latent frame, 1 = condition (given) frame, 0 = frame to generate.
 *   prediction    [1 x k, 0 x (W - k)]   the first k latents are given
 *   interpolation [1, 0 x (W - 2), 1]    the first and the last latents are given
 *   unconditional [0 x W]
 *
 * s levels (the integer fed to the UNet's s embedding, `cond.s`):
 *   S_UNCOND = 0   no condition (all-zero mask), in training and in the guidance branch
 *   s + 1          conditions perturbed to z_s = q(z_0, s), s in {0..s_max} (0-based timesteps)
 * so a table embedding needs s_max + 2 rows. Models trained without perturbation (s_max null)
 * take no s at all.
 */
import * as tf from '@tensorflow/tfjs';
import { ExperimentConfig, LongVideoConfig, UNetConfig } from '../config/schema';
import { Cond } from '../diffusion/types';

/** The s level of the unconditional case (all-zero mask). */
export const S_UNCOND = 0;

export type MaskKind = 'prediction' | 'interpolation' | 'unconditional';

/** The per-frame mask of one window: 1 = condition latent, 0 = latent to generate. */
export function frameMask(kind: MaskKind, window: number, condFrames = 1): Float32Array {
  if (!Number.isInteger(window) || window < 1) throw new Error(`mask: window must be a positive integer, got ${window}`);
  const m = new Float32Array(window);
  if (kind === 'unconditional') return m;
  if (kind === 'prediction') {
    if (!Number.isInteger(condFrames) || condFrames < 1 || condFrames >= window)
      throw new Error(`prediction mask: cond_frames must be an integer in [1, ${window - 1}] for a window of ${window}, got ${condFrames}`);
    m.fill(1, 0, condFrames);
    return m;
  }
  if (kind === 'interpolation') {
    if (window < 3) throw new Error(`interpolation mask: window must be >= 3 (first and last given, at least one generated), got ${window}`);
    m[0] = 1;
    m[window - 1] = 1;
    return m;
  }
  throw new Error(`mask: unknown kind '${String(kind)}' (expected prediction, interpolation or unconditional)`);
}

/** The conditional mask kind of a model role. */
export function conditionalKind(spec: LongVideoConfig): MaskKind {
  return spec.role === 'prediction' ? 'prediction' : 'interpolation';
}

/** Mask rows [B, W] (float32) from per-example rows. */
export function maskTensor(rows: readonly Float32Array[]): tf.Tensor2D {
  if (rows.length === 0) throw new Error('mask: no rows');
  const w = rows[0].length;
  const out = new Float32Array(rows.length * w);
  rows.forEach((r, i) => {
    if (r.length !== w) throw new Error(`mask: row ${i} has ${r.length} frames, expected ${w}`);
    out.set(r, i * w);
  });
  return tf.tensor2d(out, [rows.length, w]);
}

/** The s level of a perturbation strength s (null = model without s input). */
export function sLevel(spec: Pick<LongVideoConfig, 's_max'>, s: number): number {
  if (spec.s_max === null) throw new Error('s level: this model was trained without condition perturbation (long.s_max is null) and takes no s');
  if (!Number.isInteger(s) || s < 0 || s > spec.s_max) throw new Error(`s must be an integer in [0, ${spec.s_max}] (long.s_max), got ${s}`);
  return s + 1;
}

/**
 * The UNet conditioning of a batch: mask rows and, for perturbation models, the s level of each
 * example (`s[b]` null = unconditional example, level S_UNCOND).
 */
export function condFor(spec: Pick<LongVideoConfig, 's_max'>, rows: readonly Float32Array[], s: readonly (number | null)[]): Cond {
  if (s.length !== rows.length) throw new Error(`conditioning: ${rows.length} mask rows but ${s.length} s values`);
  const cond: Record<string, tf.Tensor> = { mask: maskTensor(rows) };
  if (spec.s_max !== null) {
    const lv = Int32Array.from(s, (v, i) => {
      const uncond = rows[i].every((x) => x === 0);
      if (v === null || uncond) return S_UNCOND;
      return sLevel(spec, v);
    });
    cond.s = tf.tensor1d(lv, 'int32');
  }
  return cond;
}

/** The conditioning of the unconditional case for B windows of W latents (all-zero mask, S_UNCOND). */
export function uncondFor(spec: Pick<LongVideoConfig, 's_max'>, batch: number, window: number): Cond {
  const rows = Array.from({ length: batch }, () => frameMask('unconditional', window));
  return condFor(spec, rows, new Array<number | null>(batch).fill(null));
}

/** Checks that the config can train / run a long-video model; returns its sections. */
export function longSections(config: ExperimentConfig, source = `config '${config.name}'`): { long: LongVideoConfig; unet: UNetConfig } {
  const long = config.long;
  const unet = config.unet;
  if (!long) throw new Error(`${source}: the 'long' section (role, window, p_cond, ...) is required for long-video models`);
  if (!unet) throw new Error(`${source}: the 'unet' section is required`);
  if (!unet.mask_channel) throw new Error(`${source}: unet.mask_channel must be true for long-video models (the mask marks condition latents)`);
  if (long.role === 'prediction') frameMask('prediction', long.window, long.cond_frames);
  else frameMask('interpolation', long.window);
  if (long.role === 'interpolation' && long.latent_stride !== 1)
    throw new Error(`${source}: long.latent_stride must be 1 for the interpolation model (it fills consecutive latents), got ${long.latent_stride}`);
  if (long.s_max === null) {
    if (unet.s_embed !== 'none') throw new Error(`${source}: long.s_max is null (no perturbation) but unet.s_embed is '${unet.s_embed}'; set unet.s_embed: none`);
  } else {
    if (unet.s_embed === 'none')
      throw new Error(`${source}: long.s_max is ${long.s_max} (perturbation on) but unet.s_embed is 'none': the network must be told s (set unet.s_embed: table or sinusoid)`);
    if (unet.s_embed === 'table' && unet.s_levels < long.s_max + 2)
      throw new Error(
        `${source}: unet.s_levels is ${unet.s_levels} but long.s_max ${long.s_max} needs ${long.s_max + 2} rows (level 0 = unconditional, s + 1 = perturbed by s)`,
      );
  }
  return { long, unet };
}
