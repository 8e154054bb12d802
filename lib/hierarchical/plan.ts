/**
 * Exact-length planning for long videos. Units are explicit: pixel frames F, latent frames L,
 * the autoencoder's temporal factor ft (1 latent frame decodes to ft pixel frames).
 *
 *   L = ceil(F / ft) latents are generated and decoded to L * ft >= F frames, then trimmed to F.
 *
 * Autoregressive (baseline): a first unconditional window of W latents, then windows that
 * condition on the last k latents and add W - k new ones.
 * Hierarchical (lvdm-facts.md section 5): keyframes spaced S latents apart (the prediction model's
 * latent_stride), N = ceil((L - 1) / S) + 1 of them, generated autoregressively with the prediction
 * model (window Wp, k conditions); then every consecutive pair of keyframes is filled by the
 * interpolation model (window S + 1) -> (N - 1) S + 1 >= L latents. Every pair is interpolated
 * (the public sampler interpolated a third of them: 1024 frames requested -> ~356 produced).
 */

export interface AutoregressivePlan {
  frames: number;
  /** Latent frames to produce. */
  latents: number;
  window: number;
  cond: number;
  /** Sampling calls (windows per video). */
  calls: number;
  /** Latents the calls produce before trimming (>= latents). */
  produced: number;
}

export interface HierarchicalPlan {
  frames: number;
  latents: number;
  /** Keyframe spacing S in latent frames. */
  stride: number;
  keyframes: number;
  predWindow: number;
  predCond: number;
  /** Prediction-model calls (windows per video). */
  predCalls: number;
  /** Keyframes those calls produce before trimming (>= keyframes). */
  producedKeyframes: number;
  /** Interpolation windows per video (keyframes - 1). */
  pairs: number;
  /** Dense latents after interpolation, (keyframes - 1) S + 1 (>= latents). */
  denseLatents: number;
}

function posInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
}

/** Latent frames needed for F pixel frames: ceil(F / ft). */
export function latentsFor(frames: number, ft: number): number {
  posInt(frames, 'frames');
  posInt(ft, 'temporal factor');
  return Math.ceil(frames / ft);
}

/** Windows needed to reach `total` latents: first window W, then W - k new per window. */
function windowsFor(total: number, window: number, cond: number): { calls: number; produced: number } {
  if (!(Number.isInteger(cond) && cond >= 1 && cond < window)) throw new Error(`cond frames must be in [1, ${window - 1}] for a window of ${window}, got ${cond}`);
  const calls = 1 + Math.max(0, Math.ceil((total - window) / (window - cond)));
  return { calls, produced: window + (calls - 1) * (window - cond) };
}

export function planAutoregressive(frames: number, ft: number, window: number, cond: number): AutoregressivePlan {
  posInt(window, 'window');
  const latents = latentsFor(frames, ft);
  return { frames, latents, window, cond, ...windowsFor(latents, window, cond) };
}

export function planHierarchical(frames: number, ft: number, stride: number, predWindow: number, predCond: number): HierarchicalPlan {
  posInt(stride, 'keyframe stride');
  posInt(predWindow, 'prediction window');
  const latents = latentsFor(frames, ft);
  const keyframes = Math.ceil((latents - 1) / stride) + 1;
  const w = windowsFor(keyframes, predWindow, predCond);
  return {
    frames,
    latents,
    stride,
    keyframes,
    predWindow,
    predCond,
    predCalls: w.calls,
    producedKeyframes: w.produced,
    pairs: keyframes - 1,
    denseLatents: (keyframes - 1) * stride + 1,
  };
}
