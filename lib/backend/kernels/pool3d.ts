// MaxPool3D / AvgPool3D forward for the wasm backend (the stock ones are plain loops, 25x slower
// than the 2D pools). A kt x kh x kw pool is a per-frame 2D pool followed by a reduction over the
// kt frames of each time window; padded positions are excluded in both, so the average factorises
// exactly (TF semantics: padding is not counted).
import * as tf from '@tensorflow/tfjs';
import { alias, alloc, free, heapF32, offsetOf, WasmBackend } from './wasm-util';

type Pool3DAttrs = tf.MaxPool3DAttrs | tf.AvgPool3DAttrs;

function pool3d(b: WasmBackend, x: tf.TensorInfo, attrs: Pool3DAttrs, kind: 'max' | 'avg'): tf.TensorInfo {
  const info = tf.backend_util.computePool3DInfo(
    x.shape as [number, number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const [N, D, H, W, C] = x.shape;
  const { filterDepth: kt, strideDepth: st, outDepth: Do, outHeight: Ho, outWidth: Wo } = info;
  const front = info.padInfo.front;
  const kernelName = kind === 'max' ? 'MaxPool' : 'AvgPool';
  const k2 = tf.getKernel(kernelName, 'wasm');
  if (k2 === undefined) throw new Error(`${kernelName} is not registered for wasm`);
  // TF padding ('same' | 'valid' | number) is computed per dimension, so the 2D pool's spatial
  // padding for the same setting equals the 3D pool's (checked on the output size below).
  const pad2d = attrs.pad;
  const y = k2.kernelFunc({
    inputs: { x: alias(x, [N * D, H, W, C]) },
    backend: b,
    attrs: {
      filterSize: [info.filterHeight, info.filterWidth],
      strides: [info.strideHeight, info.strideWidth],
      pad: pad2d,
      dimRoundingMode: attrs.dimRoundingMode,
    } as unknown as tf.NamedAttrMap,
  }) as tf.TensorInfo; // [N*D, Ho, Wo, C]
  if (y.shape[1] !== Ho || y.shape[2] !== Wo) {
    free(b, y);
    throw new Error(`${kind}Pool3d: 2D pool gave ${y.shape[1]}x${y.shape[2]}, expected ${Ho}x${Wo}`);
  }
  if (kt === 1 && st === 1 && front === 0 && Do === D) return alias(y, [N, D, Ho, Wo, C]);
  const out = alloc(b, [N, Do, Ho, Wo, C]);
  const heap = heapF32(b);
  const yo = offsetOf(b, y);
  const oo = offsetOf(b, out);
  const F = Ho * Wo * C;
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < Do; d++) {
      const dst = oo + (n * Do + d) * F;
      let used = 0;
      for (let t = 0; t < kt; t++) {
        const f = d * st + t - front;
        if (f < 0 || f >= D) continue;
        const src = yo + (n * D + f) * F;
        if (used === 0) heap.copyWithin(dst, src, src + F);
        else if (kind === 'max') {
          for (let i = 0; i < F; i++) {
            const v = heap[src + i];
            if (v > heap[dst + i] || v !== v) heap[dst + i] = v;
          }
        } else {
          for (let i = 0; i < F; i++) heap[dst + i] += heap[src + i];
        }
        used++;
      }
      if (used === 0) heap.fill(0, dst, dst + F);
      else if (kind === 'avg' && used > 1) {
        const inv = 1 / used;
        for (let i = 0; i < F; i++) heap[dst + i] *= inv;
      }
    }
  }
  free(b, y);
  return out;
}

export function maxPool3dForward(b: WasmBackend, x: tf.TensorInfo, attrs: tf.MaxPool3DAttrs): tf.TensorInfo {
  return pool3d(b, x, attrs, 'max');
}

export function avgPool3dForward(b: WasmBackend, x: tf.TensorInfo, attrs: tf.AvgPool3DAttrs): tf.TensorInfo {
  return pool3d(b, x, attrs, 'avg');
}
