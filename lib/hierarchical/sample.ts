/**
 * Sampling one window of a long-video model with condition latents (lvdm-facts.md sections 4-5):
 *   - the condition latents are perturbed once per clip, z_s = q(z_cond, s), and written into the
 *     condition positions before every model call and after every update (the sampler's `known`);
 *   - the network gets { mask, s level } (conditioning.ts);
 *   - unconditional guidance eps = (1 + w) eps_c - w eps_u, eps_u from the same network with the
 *     all-zero mask and s level S_UNCOND, exactly as training presented unconditional examples;
 *   - after the last step the condition positions are reset to the clean condition latents.
 * Noise is drawn per item (one Rng per window), so a window's result does not depend on which
 * other windows share its batch.
 */
import * as tf from '@tensorflow/tfjs';
import { LongVideoConfig } from '../config/schema';
import { Rng } from '../nn/rng';
import { NoiseSchedule } from '../diffusion/schedule';
import { sample, writeKnown } from '../diffusion/samplers';
import { Cond, EpsModel, Guidance, NoiseSource, Timesteps, withSelfCondition } from '../diffusion/types';
import { condFor, frameMask, sLevel, uncondFor } from './conditioning';
import { perturbLatents } from './perturb';

export interface WindowSampling {
  sampler: 'ddim' | 'ddpm';
  /** DDIM steps (DDPM uses all T). */
  steps: number;
  eta: number;
  /** Fixed perturbation strength of the conditions (null = clean, for models without s). */
  s: number | null;
  /** Unconditional guidance scale w >= 0 (0 = plain conditional sampling). */
  w: number;
}

/** N(0, I) noise whose item b (leading axis) comes from rngs[b]. */
export function perItemNoise(rngs: readonly Rng[]): NoiseSource {
  return (shape: number[]) => {
    if (shape[0] !== rngs.length) throw new Error(`perItemNoise: batch ${shape[0]} but ${rngs.length} item generators`);
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    const out = new Float32Array(shape[0] * per);
    rngs.forEach((r, i) => out.set(r.normalArray(per), i * per));
    return tf.tensor(out, shape, 'float32');
  };
}

/** Runs `model` on at most `maxBatch` items per forward (splits x, t and every cond entry along axis 0). */
export function microBatched(model: EpsModel, maxBatch: number): EpsModel {
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`microBatched: maxBatch must be a positive integer, got ${maxBatch}`);
  return withSelfCondition((x: tf.Tensor5D, t: Timesteps, cond?: Cond) => {
    const b = x.shape[0];
    if (b <= maxBatch) return model(x, t, cond);
    const tv = t instanceof Int32Array ? t : Int32Array.from(t.dataSync());
    const parts: tf.Tensor5D[] = [];
    try {
      for (let i = 0; i < b; i += maxBatch) {
        const n = Math.min(maxBatch, b - i);
        const xi = tf.slice(x, [i, 0, 0, 0, 0], [n, -1, -1, -1, -1]);
        const ci: Record<string, tf.Tensor> = {};
        for (const [k, v] of Object.entries(cond ?? {})) ci[k] = tf.slice(v, [i], [n]);
        parts.push(model(xi, tv.slice(i, i + n), cond ? ci : undefined));
        tf.dispose([xi, ...Object.values(ci)]);
      }
      return tf.concat(parts, 0) as tf.Tensor5D;
    } finally {
      tf.dispose(parts);
    }
  }, model.selfCondition);
}

export interface ConditionalWindowOptions {
  model: EpsModel;
  schedule: NoiseSchedule;
  spec: Pick<LongVideoConfig, 's_max'>;
  /** [B, W, h, w, c] of the windows to sample. */
  shape: number[];
  /** Per-frame mask shared by the batch (1 = condition); all zero = unconditional generation. */
  mask: Float32Array;
  /** Clean condition latents [B, W, h, w, c]; only condition positions are read. Not disposed. */
  conditions?: tf.Tensor5D;
  sampling: WindowSampling;
  /** One Rng per window: x_T, the perturbation noise and the per-step noise come from its forks. */
  rngs: readonly Rng[];
}

/** Validates s and w against what the model was trained for. */
export function checkWindowSampling(spec: Pick<LongVideoConfig, 's_max' | 'p_cond'>, sampling: WindowSampling, source: string): void {
  if (spec.s_max === null && sampling.s !== null)
    throw new Error(`${source}: the model was trained without condition perturbation (long.s_max null); s must be none, got ${sampling.s}`);
  if (spec.s_max !== null) {
    if (sampling.s === null) throw new Error(`${source}: the model was trained with condition perturbation; give s in [0, ${spec.s_max}]`);
    sLevel(spec, sampling.s);
  }
  if (!(Number.isFinite(sampling.w) && sampling.w >= 0)) throw new Error(`${source}: guidance scale w must be a finite number >= 0, got ${sampling.w}`);
  if (sampling.w > 0 && spec.p_cond >= 1) throw new Error(`${source}: guidance needs the unconditional score but the model was trained with p_cond = 1 (never unconditional)`);
}

/**
 * Samples B windows; returns [B, W, h, w, c] (caller owns) with condition positions equal to the
 * clean conditions.
 */
export async function sampleConditionalWindow(o: ConditionalWindowOptions): Promise<tf.Tensor5D> {
  const [b, w] = o.shape;
  if (o.rngs.length !== b) throw new Error(`sampleConditionalWindow: ${b} windows but ${o.rngs.length} generators`);
  if (o.mask.length !== w) throw new Error(`sampleConditionalWindow: mask has ${o.mask.length} frames, windows have ${w}`);
  const hasCond = o.mask.some((v) => v !== 0);
  if (hasCond && !o.conditions) throw new Error('sampleConditionalWindow: the mask has condition frames but no conditions were given');
  const per = o.shape.slice(1).reduce((a, c) => a * c, 1);
  const draw = (tag: string): tf.Tensor5D => {
    const buf = new Float32Array(b * per);
    o.rngs.forEach((r, i) => buf.set(r.fork(tag).normalArray(per), i * per));
    const t: tf.Tensor = tf.tensor(buf, o.shape);
    return t as tf.Tensor5D;
  };
  const xT = draw('xT');
  const rows = Array.from({ length: b }, () => o.mask);
  const sVal = hasCond ? o.sampling.s : null;
  const cond = condFor(o.spec, rows, new Array<number | null>(b).fill(sVal));
  const mask5 = tf.tensor(o.mask, [1, w, 1, 1, 1]);
  let known: { values: tf.Tensor5D; mask: tf.Tensor } | undefined;
  if (hasCond) {
    // z_s = q(z_cond, s), computed once per clip and kept fixed through all steps.
    const sNoise = o.sampling.s !== null ? draw('perturb') : null;
    const s = o.sampling.s !== null ? new Int32Array(b).fill(o.sampling.s) : null;
    known = { values: perturbLatents(o.schedule, o.conditions!, s, sNoise), mask: mask5 };
    sNoise?.dispose();
  }
  const guidance: Guidance | undefined = o.sampling.w > 0 && hasCond ? { scale: o.sampling.w, uncond: uncondFor(o.spec, b, w) } : undefined;
  const noise = perItemNoise(o.rngs.map((r) => r.fork('steps')));
  try {
    const common = { xT, noise, cond, known, guidance };
    const spec = o.sampling.sampler === 'ddpm' ? { kind: 'ddpm' as const, ...common } : { kind: 'ddim' as const, steps: o.sampling.steps, eta: o.sampling.eta, ...common };
    const out = await sample(o.model, o.schedule, o.shape, spec);
    if (!hasCond) return out;
    const clean = writeKnown(out, { values: o.conditions!, mask: mask5 });
    out.dispose();
    return clean;
  } finally {
    tf.dispose([xT, mask5, ...Object.values(cond), ...(known ? [known.values] : []), ...(guidance ? Object.values(guidance.uncond) : [])]);
  }
}

/** The mask of a prediction window (first k given) or the unconditional first window. */
export function predictionMask(window: number, k: number, conditional: boolean): Float32Array {
  return conditional ? frameMask('prediction', window, k) : frameMask('unconditional', window);
}
