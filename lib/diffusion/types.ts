/**
 * The contract between samplers and networks. A sampler knows a noise schedule and calls an
 * `EpsModel`; it knows nothing about the network behind it (UNet, text-conditioned UNet, an
 * analytic denoiser in tests).
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Conditioning passed through to the model unchanged: named batch-first tensors (e.g.
 * `{ mask: [B, T], s: [B] int32 }` for the long-video models, `{ context: [B, N, D] }` for text).
 * Batched guidance concatenates the conditional and unconditional entries along axis 0, so both
 * must have the same keys.
 */
export type Cond = Readonly<Record<string, tf.Tensor>>;

/** Timesteps, one per batch element (0-based, 0..T-1). */
export type Timesteps = Int32Array | tf.Tensor1D;

/**
 * eps_theta(x_t, t, cond): [B, ...] -> noise prediction of the same shape. Must not dispose its
 * inputs; the caller disposes the result.
 */
export type EpsModel = ((x: tf.Tensor5D, t: Timesteps, cond?: Cond) => tf.Tensor5D) & {
  /**
   * The network reads an earlier estimate of x_0 as `cond.self_cond` (self-conditioning, Chen et
   * al. 2022): the samplers then pass the previous step's estimate (zeros at the first step).
   */
  readonly selfCondition?: boolean;
};

/** `fn` as an EpsModel that does (true) or does not read `cond.self_cond`; wrappers use it to keep the flag of the model they wrap. */
export function withSelfCondition(fn: (x: tf.Tensor5D, t: Timesteps, cond?: Cond) => tf.Tensor5D, on: boolean | undefined): EpsModel {
  return on ? Object.assign(fn, { selfCondition: true }) : fn;
}

/** Draws standard normal noise of a shape (an Rng-backed default is provided by the samplers). */
export type NoiseSource = (shape: number[]) => tf.Tensor;

/**
 * Unconditional / classifier-free guidance: eps = (1 + w) * eps_c - w * eps_u (LVDM's long-video
 * form), i.e. eps = eps_u + s (eps_c - eps_u) with s = 1 + w (Ho & Salimans' classifier-free
 * guidance as text-to-video uses it; `cfgGuidance(s, ...)` builds this from s).
 */
export interface Guidance {
  /** w >= -1; 0 (s = 1) means plain conditional sampling (no extra forward pass); -1 (s = 0) the unconditional branch alone. */
  scale: number;
  /** Conditioning of the unconditional branch (e.g. an all-zero mask). */
  uncond: Cond;
  /** One forward on the concatenated batch [x; x] (default) or two separate forwards. */
  batched?: boolean;
}

/**
 * Values written into fixed positions of x before every model call and after every update:
 * x <- x * (1 - mask) + values * mask. Long-video sampling uses it to keep (noised) condition
 * frames in place (lvdm-facts.md section 4). `mask` broadcasts to x (e.g. [B, T, 1, 1, 1]).
 */
export interface KnownValues {
  values: tf.Tensor5D;
  mask: tf.Tensor;
}

/** One denoising step as yielded by the sampler generators. */
export interface SamplerStep {
  /** 0-based step index; `total` steps in all. */
  index: number;
  total: number;
  /** Timestep the model was evaluated at. */
  t: number;
  /** The sample after this step (x_{t_prev}); on the last step, the final sample. */
  x: tf.Tensor5D;
  /** The model's prediction of x_0 at this step. */
  x0: tf.Tensor5D;
}
