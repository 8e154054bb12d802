/**
 * Sinusoidal timestep embedding (Vaswani et al., 2017; as in DDPM/LDM): for half = dim / 2,
 * freq_i = exp(-ln(max_period) * i / half), emb = [cos(t freq), sin(t freq)] (zero-padded when
 * dim is odd). Computed in float64 on the host (t is a handful of numbers) and uploaded once.
 */
import * as tf from '@tensorflow/tfjs';
import { Timesteps } from '../../diffusion/types';

/** Timesteps as host numbers (reads a tensor once; timesteps may be fractional). */
export function timestepValues(t: Timesteps): Float64Array {
  if (t instanceof Int32Array) return Float64Array.from(t);
  if (t.rank !== 1) throw new Error(`timesteps must be 1-D, got shape [${t.shape}]`);
  return Float64Array.from(t.dataSync());
}

/** [N] timesteps -> [N, dim] float32 embedding. */
export function sinusoidEmbedding(t: ArrayLike<number>, dim: number, maxPeriod = 10000): tf.Tensor2D {
  const n = t.length;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(n * dim);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < half; i++) {
      const a = t[b] * Math.exp((-Math.log(maxPeriod) * i) / half);
      out[b * dim + i] = Math.cos(a);
      out[b * dim + half + i] = Math.sin(a);
    }
  }
  return tf.tensor2d(out, [n, dim]);
}
