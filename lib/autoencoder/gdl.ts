/**
 * Gradient difference loss (Mathieu, Couprie & LeCun 2016, "Deep multi-scale video prediction
 * beyond mean square error", eq. 5, alpha = 1), per pixel and per frame:
 *   gdl(i, j) = | |x(i,j) - x(i-1,j)| - |x^(i,j) - x^(i-1,j)| | + | |x(i,j) - x(i,j-1)| - |x^(i,j) - x^(i,j-1)| |
 * An L1 or MSE pixel loss is satisfied by a blurred edge that sits between the two colours; this term
 * asks for the edge's contrast as well. The first row and column have no upper/left neighbour and
 * contribute 0, so the map keeps the input's shape and can be added to the per-pixel term.
 */
import * as tf from '@tensorflow/tfjs';

/** |d/dy| and |d/dx| differences over axes 2 (H) and 3 (W) of [B, T, H, W, C], zero-padded to the input's shape. */
function absGradients(x: tf.Tensor5D): [tf.Tensor5D, tf.Tensor5D] {
  const [b, t, h, w, c] = x.shape;
  const dy = tf.abs(tf.sub(tf.slice(x, [0, 0, 1, 0, 0], [b, t, h - 1, w, c]), tf.slice(x, [0, 0, 0, 0, 0], [b, t, h - 1, w, c])));
  const dx = tf.abs(tf.sub(tf.slice(x, [0, 0, 0, 1, 0], [b, t, h, w - 1, c]), tf.slice(x, [0, 0, 0, 0, 0], [b, t, h, w - 1, c])));
  return [
    tf.pad(dy, [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0]]) as tf.Tensor5D,
    tf.pad(dx, [[0, 0], [0, 0], [0, 0], [1, 0], [0, 0]]) as tf.Tensor5D,
  ];
}

/** Per-pixel gradient difference between videos x and xr, [B, T, H, W, C] -> same shape. */
export function gradientDifference(x: tf.Tensor5D, xr: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [gy, gx] = absGradients(x);
    const [ry, rx] = absGradients(xr);
    return tf.add(tf.abs(tf.sub(gy, ry)), tf.abs(tf.sub(gx, rx))) as tf.Tensor5D;
  });
}
