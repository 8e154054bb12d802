// Shared helpers for the backend kernel tests: run the same computation on wasm and on cpu,
// compare, count leaks, and check gradients by finite differences.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';

export async function setupWasm(): Promise<void> {
  await initBackend({ prefer: 'wasm', quiet: true });
}

export function randomArray(rng: Rng, shape: number[]): Float32Array {
  return rng.normalArray(shape.reduce((a, b) => a * b, 1));
}

/** Runs `fn` on `backend` (tensors made from plain arrays inside), returns the values, restores wasm. */
export async function valuesOn(backend: 'cpu' | 'wasm', fn: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  try {
    const out = tf.tidy(() => {
      const r = fn();
      return Array.isArray(r) ? r : [r];
    });
    const vals = out.map((t) => t.dataSync() as Float32Array);
    const shapes = out.map((t) => t.shape.join('x'));
    tf.dispose(out);
    return vals.map((v, i) => Object.assign(v, { shapeKey: shapes[i] }));
  } finally {
    await tf.setBackend('wasm');
  }
}

/** max |a - b| / max(max |b|, 1e-6). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.abs(a[i] - b[i]);
    if (!(x <= d)) d = x; // NaN propagates as failure
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-6);
}

/** Compares wasm vs cpu for the same computation; returns the worst relative error over outputs. */
export async function compareWithCpu(fn: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const w = await valuesOn('wasm', fn);
  const c = await valuesOn('cpu', fn);
  if (w.length !== c.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    const wk = (w[i] as Float32Array & { shapeKey?: string }).shapeKey;
    const ck = (c[i] as Float32Array & { shapeKey?: string }).shapeKey;
    if (wk !== ck) return Infinity;
    worst = Math.max(worst, relErr(w[i], c[i]));
  }
  return worst;
}

/** Tensor count and wasm buffer count, for leak assertions. */
export function memorySnapshot(): { tensors: number; dataIds: number } {
  return { tensors: tf.memory().numTensors, dataIds: tf.engine().backend.numDataIds() };
}

/**
 * Finite-difference check of the gradient of the scalar loss L(x) = sum(r * f(x)) w.r.t. each input,
 * along random directions v: (L(x + h v) - L(x - h v)) / 2h vs <grad, v>, computed in float64 from
 * float32 outputs. f is linear in each argument here (convolutions, matmuls), so the central
 * difference is exact up to rounding and h can be large. Returns the worst relative error.
 */
export function finiteDiffCheck(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  rng: Rng,
  directions = 3,
  h = 0.5,
): number {
  return tf.tidy(() => {
    const y0 = f(...inputs);
    const r = tf.tensor(rng.normalArray(y0.size), y0.shape);
    const loss = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r));
    const grads = tf.grads(loss)(inputs);
    let worst = 0;
    for (let i = 0; i < inputs.length; i++) {
      const g = grads[i].dataSync();
      for (let k = 0; k < directions; k++) {
        const v = rng.normalArray(inputs[i].size);
        const vt = tf.tensor(v, inputs[i].shape);
        const plus = inputs.map((x, j) => (j === i ? tf.add(x, tf.mul(vt, h)) : x));
        const minus = inputs.map((x, j) => (j === i ? tf.sub(x, tf.mul(vt, h)) : x));
        const lp = loss(...plus).dataSync()[0];
        const lm = loss(...minus).dataSync()[0];
        const fd = (lp - lm) / (2 * h);
        let an = 0;
        let scale = 0;
        for (let e = 0; e < g.length; e++) {
          an += g[e] * v[e];
          scale += Math.abs(g[e] * v[e]);
        }
        worst = Math.max(worst, Math.abs(fd - an) / Math.max(scale, 1e-6));
      }
    }
    return worst;
  });
}
