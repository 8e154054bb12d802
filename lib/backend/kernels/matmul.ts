// Fast BatchMatMul for the wasm backend. The stock kernel uses XNNPACK only for a single batch
// without transposes (about 16 GFLOP/s); every other case runs a scalar loop (about 1.7 GFLOP/s),
// and every matmul gradient transposes. We transpose explicitly, fold a shared right-hand matrix
// into the rows, and otherwise run the fast path batch by batch on zero-copy views.
import * as tf from '@tensorflow/tfjs';
import { transposeInfo } from './transpose';
import { alias, alloc, free, heapF32, matmulInto, offsetOf, releaseView, sizeOf, view, WasmBackend } from './wasm-util';

/** Output-batch index -> input-batch index under numpy-style broadcasting of the outer dims. */
function broadcastIndex(outOuter: number[], inOuter: number[]): (o: number) => number {
  const r = outOuter.length;
  const inPad = new Array<number>(r - inOuter.length).fill(1).concat(inOuter);
  const inStrides = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = r - 1; i >= 0; i--) {
    inStrides[i] = inPad[i] === 1 ? 0 : acc;
    acc *= inPad[i];
  }
  return (o: number) => {
    let idx = 0;
    let rem = o;
    for (let i = r - 1; i >= 0; i--) {
      const c = rem % outOuter[i];
      rem = Math.floor(rem / outOuter[i]);
      idx += c * inStrides[i];
    }
    return idx;
  };
}

export function batchMatMulInfo(b: WasmBackend, a: tf.TensorInfo, bm: tf.TensorInfo, transposeA: boolean, transposeB: boolean): tf.TensorInfo {
  const ar = a.shape.length;
  const br = bm.shape.length;
  const m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const ka = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const kb = transposeB ? bm.shape[br - 1] : bm.shape[br - 2];
  const n = transposeB ? bm.shape[br - 2] : bm.shape[br - 1];
  if (ka !== kb) {
    throw new Error(`matMul: inner shapes (${ka}) and (${kb}) of [${a.shape}] and [${bm.shape}] (transposeA=${transposeA}, transposeB=${transposeB}) must match`);
  }
  const k = ka;
  const outerA = a.shape.slice(0, -2);
  const outerB = bm.shape.slice(0, -2);
  const outOuter = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const batchOut = sizeOf(outOuter);
  const out = alloc(b, [batchOut * m, n]);
  if (batchOut * m * n === 0) return alias(out, [...outOuter, m, n]);
  if (k === 0) {
    const off = offsetOf(b, out);
    heapF32(b).fill(0, off, off + batchOut * m * n);
    return alias(out, [...outOuter, m, n]);
  }
  const a3 = transposeA ? transposeInfo(b, alias(a, [batchA, k, m]), [0, 2, 1]) : alias(a, [batchA, m, k]);
  const b3 = transposeB ? transposeInfo(b, alias(bm, [batchB, n, k]), [0, 2, 1]) : alias(bm, [batchB, k, n]);
  try {
    if (batchB === 1 && batchA === batchOut) {
      // Shared right-hand side: one [batch*m, k] x [k, n] product.
      matmulInto(b, a3, b3, batchA * m, k, n, out);
    } else {
      const ia = broadcastIndex(outOuter, outerA);
      const ib = broadcastIndex(outOuter, outerB);
      for (let o = 0; o < batchOut; o++) {
        const va = view(b, a3, ia(o) * m * k, [m, k]);
        const vb = view(b, b3, ib(o) * k * n, [k, n]);
        const vo = view(b, out, o * m * n, [m, n]);
        matmulInto(b, va, vb, m, k, n, vo);
        releaseView(b, va);
        releaseView(b, vb);
        releaseView(b, vo);
      }
    }
  } finally {
    if (transposeA) free(b, a3);
    if (transposeB) free(b, b3);
  }
  return alias(out, [...outOuter, m, n]);
}
