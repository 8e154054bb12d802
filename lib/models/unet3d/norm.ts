/**
 * Group normalisation (Wu & He, 2018) with its affine map and the UNet's adaptive scale/shift
 * (AdaGN, Dhariwal & Nichol 2021: h = GN(h) * (1 + scale) + shift) fused into one
 * per-(sample, channel) multiply-add, with a hand-written gradient.
 *
 * Why: on the wasm backend a reduction over positions of [N, S, C] (tf.mean / tf.sum over a
 * non-innermost axis) transposes first and is ~10x slower than NHWC average pooling, and autodiff
 * of the unfused chain adds several passes over the activation. Here every position reduction is
 * an average pool with window [S, 1] on [N, S, 1, C]; the forward reads x twice and writes y
 * once; the backward needs two pooled sums and one fused dx = dy * P + x * Q + R. The small
 * per-(sample, channel) algebra runs on the host (wasm/cpu reads are plain memory copies).
 *
 * Statistics: per-channel E[x], E[x^2] over positions, pooled within each group;
 * var = E[x^2] - E[x]^2 (clamped at 0) - accurate while |mean| is not orders of magnitude larger
 * than the standard deviation, which normalised networks keep true.
 */
import * as tf from '@tensorflow/tfjs';
import { GroupNormParams, fusedGroupNorm, silu } from '../../nn/layers';
import { FUSED_KERNELS, hasKernel } from '../../backend/fused';

export interface NormOptions {
  /** Apply SiLU to the result (fused into the same kernel where the backend has one). */
  silu?: boolean;
}

/** Largest group count <= `groups` that divides `channels`. */
export function groupsFor(groups: number, channels: number): number {
  let g = Math.min(groups, channels);
  while (channels % g !== 0) g -= 1;
  return g;
}

/** Sum over positions: [N, S, 1, C] -> [N, C] host array (average pooling, channels-last, then * S). */
function positionSum(x4: tf.Tensor4D): Float32Array {
  const [, s] = x4.shape;
  const p = tf.avgPool(x4, [s, 1], 1, 'valid');
  const v = p.dataSync() as Float32Array;
  p.dispose();
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * s;
  return out;
}

/** [N, C] host values as a [N, 1, 1, C] tensor (broadcasts over the positions of [N, S, 1, C]). */
function rowTensor(v: Float32Array, n: number, c: number): tf.Tensor4D {
  return tf.tensor4d(v, [n, 1, 1, c]);
}

/**
 * x: [N, ..., C] normalised over all non-batch positions within each of `norm.groups` channel
 * groups, then affine (norm.gamma, norm.beta), then, if given, * (1 + scale) + shift with
 * scale/shift [N, C] (one row per sample, i.e. per frame when frames are folded into N).
 *
 * The per-(sample, channel) coefficients are computed on the host in float64 from pooled sums
 * (a few thousand numbers), so a call costs ~10 kernels forward and ~12 backward instead of ~40
 * small ones: at small sizes the kernel count, not the arithmetic, sets the time.
 */
export function adaptiveGroupNorm<T extends tf.Tensor>(x: T, norm: GroupNormParams, scale?: tf.Tensor2D, shift?: tf.Tensor2D, opts: NormOptions = {}): T {
  if (hasKernel(FUSED_KERNELS.adaGroupNorm)) return fusedGroupNorm(x, norm, scale, shift, opts.silu === true);
  if (opts.silu === true) return tf.tidy(() => silu(adaptiveGroupNorm(x, norm, scale, shift)));
  return tf.tidy(() => {
    const n = x.shape[0];
    const c = x.shape[x.shape.length - 1];
    const s = x.size / (n * c);
    const g = norm.groups;
    const cg = c / g;
    const eps = norm.eps;
    const m = s * cg; // elements per group
    const sc = scale ?? tf.zeros([n, c]);
    const sh = shift ?? tf.zeros([n, c]);
    const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xi, gamma, beta, scl, shf] = args as tf.Tensor[];
      const save = args[5] as tf.GradSaveFunc;
      const x4 = tf.reshape(xi, [n, s, 1, c]) as tf.Tensor4D;
      const s1x = positionSum(x4);
      const sq = tf.square(x4) as tf.Tensor4D;
      const s2x = positionSum(sq);
      sq.dispose();
      const gam = gamma.dataSync();
      const bet = beta.dataSync();
      const scv = scl.dataSync();
      const shv = shf.dataSync();
      // Group statistics (float64) and the fused affine y = x * a + b per (sample, channel).
      const mu = new Float64Array(n * g);
      const r = new Float64Array(n * g);
      const a = new Float32Array(n * c);
      const b = new Float32Array(n * c);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < g; k++) {
          let t1 = 0;
          let t2 = 0;
          for (let j = k * cg; j < (k + 1) * cg; j++) {
            t1 += s1x[i * c + j];
            t2 += s2x[i * c + j];
          }
          const mean = t1 / m;
          mu[i * g + k] = mean;
          r[i * g + k] = 1 / Math.sqrt(Math.max(t2 / m - mean * mean, 0) + eps);
        }
        for (let j = 0; j < c; j++) {
          const q = i * g + Math.floor(j / cg);
          const o = i * c + j;
          const s1 = 1 + scv[o];
          a[o] = r[q] * gam[j] * s1;
          b[o] = (bet[j] * s1 + shv[o]) - mu[q] * a[o];
        }
      }
      const y = tf.add(tf.mul(x4, rowTensor(a, n, c)), rowTensor(b, n, c));
      save([x4]);
      return {
        value: tf.reshape(y, xi.shape),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const xs = saved[0] as tf.Tensor4D;
          const dy4 = tf.reshape(dy, [n, s, 1, c]) as tf.Tensor4D;
          const sumDy = positionSum(dy4); // sum_s dy
          const dyx = tf.mul(dy4, xs) as tf.Tensor4D;
          const sumDyX = positionSum(dyx); // sum_s dy x
          dyx.dispose();
          const P = new Float32Array(n * c);
          const Q = new Float32Array(n * c);
          const R = new Float32Array(n * c);
          const dGamma = new Float32Array(c);
          const dBeta = new Float32Array(c);
          const dScale = new Float32Array(n * c);
          const dShift = new Float32Array(n * c);
          const dxh = new Float64Array(n * c); // sum_s dy * xhat
          for (let i = 0; i < n; i++) {
            for (let k = 0; k < g; k++) {
              const q = i * g + k;
              // Group sums of dxhat = dy * gamma' and of dxhat * xhat.
              let gA = 0;
              let gB = 0;
              for (let j = k * cg; j < (k + 1) * cg; j++) {
                const o = i * c + j;
                const gp = gam[j] * (1 + scv[o]);
                dxh[o] = r[q] * (sumDyX[o] - mu[q] * sumDy[o]);
                gA += gp * sumDy[o];
                gB += gp * dxh[o];
              }
              // dx = r gamma' dy - (r / M) gA - xhat (r / M) gB = dy P + x Q + R
              const rq = r[q];
              for (let j = k * cg; j < (k + 1) * cg; j++) {
                const o = i * c + j;
                P[o] = rq * gam[j] * (1 + scv[o]);
                Q[o] = (-rq * rq * gB) / m;
                R[o] = (mu[q] * rq * rq * gB) / m - (rq * gA) / m;
              }
            }
            for (let j = 0; j < c; j++) {
              const o = i * c + j;
              const s1 = 1 + scv[o];
              dGamma[j] += dxh[o] * s1;
              dBeta[j] += sumDy[o] * s1;
              dScale[o] = dxh[o] * gam[j] + sumDy[o] * bet[j];
              dShift[o] = sumDy[o];
            }
          }
          const dx = tf.add(tf.add(tf.mul(dy4, rowTensor(P, n, c)), tf.mul(xs, rowTensor(Q, n, c))), rowTensor(R, n, c));
          return [tf.reshape(dx, dy.shape), tf.tensor1d(dGamma), tf.tensor1d(dBeta), tf.tensor2d(dScale, [n, c]), tf.tensor2d(dShift, [n, c])];
        },
      };
    });
    return fused(x, norm.gamma, norm.beta, sc, sh) as T;
  });
}

/**
 * GroupNorm with statistics over a whole clip (frames x positions within each group: PyTorch's
 * GroupNorm on [B, C, T, H, W], as in the public LVDM UNet's residual blocks and output layer),
 * then the per-frame AdaGN h * (1 + scale) + shift. x: [B*T, H, W, C] with `frames` = T;
 * scale/shift: [B*T, C].
 */
export function clipGroupNorm(x: tf.Tensor4D, norm: GroupNormParams, frames: number, scale?: tf.Tensor2D, shift?: tf.Tensor2D, opts: NormOptions = {}): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    let y = tf.reshape(adaptiveGroupNorm(tf.reshape(x, [n / frames, frames * h * w, c]), norm), [n, h, w, c]) as tf.Tensor4D;
    if (scale) y = tf.mul(y, tf.add(tf.reshape(scale, [n, 1, 1, c]), 1));
    if (shift) y = tf.add(y, tf.reshape(shift, [n, 1, 1, c]));
    return opts.silu === true ? silu(y) : y;
  });
}

/** Reference implementation by plain autodiff-able ops (used by tests). */
export function adaptiveGroupNormReference<T extends tf.Tensor>(x: T, norm: GroupNormParams, scale?: tf.Tensor2D, shift?: tf.Tensor2D): T {
  return tf.tidy(() => {
    const n = x.shape[0];
    const c = x.shape[x.shape.length - 1];
    const g = norm.groups;
    const xg = tf.reshape(x, [n, -1, g, c / g]); // [N, S, G, cg]
    const { mean, variance } = tf.moments(xg, [1, 3], true);
    let y = tf.reshape(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, norm.eps))), [n, -1, c]);
    y = tf.add(tf.mul(y, norm.gamma), norm.beta);
    if (scale) y = tf.mul(y, tf.add(tf.reshape(scale, [n, 1, c]), 1));
    if (shift) y = tf.add(y, tf.reshape(shift, [n, 1, c]));
    return tf.reshape(y, x.shape) as T;
  });
}
