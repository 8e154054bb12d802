/**
 * Group normalisation (Wu & He, 2018) with its affine map and the UNet's adaptive scale/shift
 * (AdaGN, Dhariwal & Nichol 2021: h = GN(h) * (1 + scale) + shift) fused into one
 * per-(sample, channel) multiply-add, with a hand-written gradient.
 *
 * Why: on the wasm backend a reduction over positions of [N, S, C] (tf.mean / tf.sum over a
 * non-innermost axis) transposes first and is ~10x slower than NHWC average pooling, and autodiff
 * of the unfused chain adds several passes over the activation. Here every position reduction is
 * an average pool with window [S, 1] on [N, S, 1, C]; the forward reads x twice and writes y
 * once; the backward needs two pooled sums and one fused dx = dy * P + x * Q + R.
 *
 * Statistics: per-channel E[x], E[x^2] over positions, pooled within each group;
 * var = E[x^2] - E[x]^2 (clamped at 0) - accurate while |mean| is not orders of magnitude larger
 * than the standard deviation, which normalised networks keep true.
 */
import * as tf from '@tensorflow/tfjs';
import { GroupNorm } from '../../nn/layers';

/** Largest group count <= `groups` that divides `channels`. */
export function groupsFor(groups: number, channels: number): number {
  let g = Math.min(groups, channels);
  while (channels % g !== 0) g -= 1;
  return g;
}

/** Mean over positions: [N, S, 1, C] -> [N, C] (average pooling, channels-last). */
function positionMean(x4: tf.Tensor4D): tf.Tensor2D {
  const [n, s, , c] = x4.shape;
  return tf.reshape(tf.avgPool(x4, [s, 1], 1, 'valid'), [n, c]) as tf.Tensor2D;
}

/** [N, C] -> per-group mean [N, G] broadcast back to [N, C]. */
function groupMeanC(v: tf.Tensor2D, g: number): tf.Tensor2D {
  const [n, c] = v.shape;
  const cg = c / g;
  if (cg === 1) return v;
  const m = tf.mean(tf.reshape(v, [n, g, cg]), 2, true); // [N, G, 1]
  return tf.reshape(tf.mul(m, tf.ones([1, 1, cg])), [n, c]) as tf.Tensor2D;
}

/**
 * x: [N, ..., C] normalised over all non-batch positions within each of `norm.groups` channel
 * groups, then affine (norm.gamma, norm.beta), then, if given, * (1 + scale) + shift with
 * scale/shift [N, C] (one row per sample, i.e. per frame when frames are folded into N).
 */
export function adaptiveGroupNorm<T extends tf.Tensor>(x: T, norm: GroupNorm, scale?: tf.Tensor2D, shift?: tf.Tensor2D): T {
  return tf.tidy(() => {
    const n = x.shape[0];
    const c = x.shape[x.shape.length - 1];
    const s = x.size / (n * c);
    const g = norm.groups;
    const eps = norm.eps;
    const m = s * (c / g); // elements per group
    const sc = scale ?? tf.zeros([n, c]);
    const sh = shift ?? tf.zeros([n, c]);
    const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xi, gamma, beta, scl, shf] = args as tf.Tensor[];
      const save = args[5] as tf.GradSaveFunc;
      const x4 = tf.reshape(xi, [n, s, 1, c]) as tf.Tensor4D;
      const mu = groupMeanC(positionMean(x4), g); // [N, C] (group mean, per channel)
      const ex2 = groupMeanC(positionMean(tf.square(x4)), g);
      const r = tf.rsqrt(tf.add(tf.relu(tf.sub(ex2, tf.square(mu))), eps)); // [N, C]
      const s1 = tf.add(scl, 1);
      const gp = tf.mul(gamma, s1); // gamma' = gamma (1 + scale)
      const a = tf.mul(r, gp);
      const b = tf.sub(tf.add(tf.mul(beta, s1), shf), tf.mul(mu, a));
      const y = tf.add(tf.mul(x4, tf.reshape(a, [n, 1, 1, c])), tf.reshape(b, [n, 1, 1, c]));
      save([x4, mu, r, gp, s1, gamma, beta]);
      return {
        value: tf.reshape(y, xi.shape),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, muS, rS, gpS, s1S, gammaS, betaS] = saved as [tf.Tensor4D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
          const dy4 = tf.reshape(dy, [n, s, 1, c]) as tf.Tensor4D;
          const sumDy = tf.mul(positionMean(dy4), s); // [N, C] sum_s dy
          const sumDyX = tf.mul(positionMean(tf.mul(dy4, xs) as tf.Tensor4D), s); // [N, C] sum_s dy x
          const sumDyXhat = tf.mul(rS, tf.sub(sumDyX, tf.mul(muS, sumDy))); // sum_s dy xhat
          // Group sums of dxhat = dy gamma' and of dxhat * xhat, per channel.
          const gA = tf.mul(groupMeanC(tf.mul(gpS, sumDy) as tf.Tensor2D, g), c / g);
          const gB = tf.mul(groupMeanC(tf.mul(gpS, sumDyXhat) as tf.Tensor2D, g), c / g);
          // dx = r gamma' dy - (r / M) gA - xhat (r / M) gB = dy P + x Q + R
          const P = tf.mul(rS, gpS);
          const Q = tf.mul(tf.mul(tf.square(rS), gB), -1 / m);
          const R = tf.sub(tf.mul(tf.mul(muS, tf.square(rS)), tf.div(gB, m)), tf.mul(rS, tf.div(gA, m)));
          const dx = tf.add(tf.add(tf.mul(dy4, tf.reshape(P, [n, 1, 1, c])), tf.mul(xs, tf.reshape(Q, [n, 1, 1, c]))), tf.reshape(R, [n, 1, 1, c]));
          const dGammaP = sumDyXhat; // d gamma'
          const dBetaP = sumDy; // d beta'
          return [
            tf.reshape(dx, dy.shape),
            tf.sum(tf.mul(dGammaP, s1S), 0),
            tf.sum(tf.mul(dBetaP, s1S), 0),
            tf.add(tf.mul(dGammaP, gammaS), tf.mul(dBetaP, betaS)),
            dBetaP,
          ];
        },
      };
    });
    return fused(x, norm.gamma, norm.beta, sc, sh) as T;
  });
}

/** Reference implementation by plain autodiff-able ops (used by tests). */
export function adaptiveGroupNormReference<T extends tf.Tensor>(x: T, norm: GroupNorm, scale?: tf.Tensor2D, shift?: tf.Tensor2D): T {
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
