// Quick numeric self-check of the active backend's training kernels (used by `lvdm doctor`):
// values of the replaced wasm kernels against the reference `cpu` backend, and gradients of conv2d /
// conv3d / matmul losses against central finite differences. Small sizes: well under 3 s.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../nn/rng';

export interface SelfCheckResult {
  ok: boolean;
  checks: { name: string; maxRelErr: number; ok: boolean }[];
}

type Build = () => tf.Tensor[];

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.abs(a[i] - b[i]);
    if (!(x <= d)) d = x;
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-6);
}

async function valuesOn(backend: string, build: Build): Promise<{ v: Float32Array[]; shapes: string[] }> {
  await tf.setBackend(backend);
  const out = tf.tidy(build);
  const v = out.map((t) => t.dataSync() as Float32Array);
  const shapes = out.map((t) => t.shape.join('x'));
  tf.dispose(out);
  return { v, shapes };
}

/** Worst relative error of `build` on the active backend vs the cpu backend. */
async function vsCpu(build: Build): Promise<number> {
  const active = tf.getBackend();
  try {
    const a = await valuesOn(active, build);
    const c = active === 'cpu' ? a : await valuesOn('cpu', build);
    let worst = 0;
    for (let i = 0; i < a.v.length; i++) {
      if (a.shapes[i] !== c.shapes[i]) return Infinity;
      worst = Math.max(worst, relErr(a.v[i], c.v[i]));
    }
    return worst;
  } finally {
    await tf.setBackend(active);
  }
}

/**
 * Gradient of L = sum(r * f(x...)) vs central differences along random directions. The ops checked
 * are linear in each input, so the difference quotient is exact up to float32 rounding.
 */
function finiteDiff(f: (...xs: tf.Tensor[]) => tf.Tensor, shapes: number[][], rng: Rng): number {
  return tf.tidy(() => {
    const xs = shapes.map((s) => tf.tensor(rng.normalArray(s.reduce((a, b) => a * b, 1)), s));
    const y = f(...xs);
    const r = tf.tensor(rng.normalArray(y.size), y.shape);
    const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), r));
    const grads = tf.grads(loss)(xs);
    let worst = 0;
    const h = 0.5;
    xs.forEach((x, i) => {
      const g = grads[i].dataSync();
      const v = rng.normalArray(x.size);
      const vt = tf.tensor(v, x.shape);
      const lp = loss(...xs.map((z, j) => (j === i ? tf.add(z, tf.mul(vt, h)) : z))).dataSync()[0];
      const lm = loss(...xs.map((z, j) => (j === i ? tf.sub(z, tf.mul(vt, h)) : z))).dataSync()[0];
      let an = 0;
      let scale = 0;
      for (let e = 0; e < g.length; e++) {
        an += g[e] * v[e];
        scale += Math.abs(g[e] * v[e]);
      }
      worst = Math.max(worst, Math.abs((lp - lm) / (2 * h) - an) / Math.max(scale, 1e-6));
    });
    return worst;
  });
}

/** Numeric check of the backend's custom kernels and their gradients (< 3 s). */
export async function gradientSelfCheck(): Promise<SelfCheckResult> {
  // IS_TEST: the engine then also checks every kernel for leaked buffers, and the cpu backend
  // skips its "install tfjs-node" banner.
  const wasTest = tf.env().getBool('IS_TEST');
  tf.env().set('IS_TEST', true);
  try {
    return await runChecks();
  } finally {
    tf.env().set('IS_TEST', wasTest);
  }
}

async function runChecks(): Promise<SelfCheckResult> {
  const rng = new Rng(20221123);
  const arr = (s: number[]) => rng.normalArray(s.reduce((a, b) => a * b, 1));
  const checks: SelfCheckResult['checks'] = [];
  const add = (name: string, err: number, tol: number) => checks.push({ name, maxRelErr: err, ok: err <= tol });

  // Values vs cpu.
  const x4 = arr([2, 7, 9, 3]);
  const w4 = arr([3, 3, 3, 4]);
  const dy4 = arr([2, 4, 5, 4]);
  add(
    'Conv2DBackpropFilter vs cpu (stride 2, same, 7x9)',
    await vsCpu(() => [
      tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(x4, [2, 7, 9, 3]), dy: tf.tensor4d(dy4, [2, 4, 5, 4]) }, {
        strides: [2, 2],
        pad: 'same',
        dataFormat: 'NHWC',
        filterShape: [3, 3, 3, 4],
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    ]),
    1e-4,
  );
  add(
    'Conv2DBackpropInput vs cpu (stride 2, same, 7x9)',
    await vsCpu(() => [tf.conv2dTranspose(tf.tensor4d(dy4, [2, 4, 5, 4]), tf.tensor4d(w4, [3, 3, 3, 4]), [2, 7, 9, 3], 2, 'same')]),
    1e-4,
  );
  const qa = arr([3, 5, 6]);
  const qb = arr([3, 7, 6]);
  add(
    'BatchMatMul vs cpu (batch 3, transposeA/B)',
    await vsCpu(() => {
      const a = tf.tensor3d(qa, [3, 5, 6]);
      const b = tf.tensor3d(qb, [3, 7, 6]);
      return [tf.matMul(a, b, false, true), tf.matMul(tf.transpose(a, [0, 2, 1]), b, true, true)];
    }),
    1e-4,
  );
  const t6 = arr([2, 3, 2, 4, 3, 2]);
  add('Transpose rank 6 vs cpu', await vsCpu(() => [tf.transpose(tf.tensor(t6, [2, 3, 2, 4, 3, 2]), [5, 2, 0, 4, 1, 3])]), 0);
  const x5 = arr([1, 6, 8, 7, 2]);
  const w5 = arr([4, 4, 4, 2, 3]);
  const dy5 = arr([1, 3, 4, 4, 3]);
  add(
    'Conv3D + gradients vs cpu (4x4x4 stride 2, same)',
    await vsCpu(() => {
      const x = tf.tensor5d(x5, [1, 6, 8, 7, 2]);
      const w = tf.tensor5d(w5, [4, 4, 4, 2, 3]);
      const dy = tf.tensor5d(dy5, [1, 3, 4, 4, 3]);
      return [
        tf.conv3d(x, w, 2, 'same'),
        tf.conv3dTranspose(dy, w, [1, 6, 8, 7, 2], 2, 'same'),
        tf.engine().runKernel('Conv3DBackpropFilterV2', { x, dy }, { strides: 2, pad: 'same', filterShape: [4, 4, 4, 2, 3] } as unknown as tf.NamedAttrMap) as tf.Tensor,
      ];
    }),
    1e-4,
  );
  add(
    'MaxPool3D / AvgPool3D vs cpu',
    await vsCpu(() => {
      const x = tf.tensor5d(x5, [1, 6, 8, 7, 2]);
      return [tf.maxPool3d(x, [3, 3, 3], [1, 2, 2], 'same'), tf.avgPool3d(x, [2, 3, 3], 1, 'valid')];
    }),
    1e-5,
  );

  // Gradients vs finite differences.
  add('conv2d gradient (finite differences)', finiteDiff((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), [[2, 7, 9, 3], [3, 3, 3, 4]], rng), 1e-3);
  add('conv3d gradient (finite differences)', finiteDiff((a, b) => tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, [1, 2, 2], 'same'), [[1, 5, 6, 7, 2], [3, 3, 3, 2, 2]], rng), 1e-3);
  add('conv3dTranspose gradient (finite differences)', finiteDiff((a, b) => tf.conv3dTranspose(a as tf.Tensor5D, b as tf.Tensor5D, [1, 6, 8, 7, 2], 2, 'same'), [[1, 3, 4, 4, 3], [4, 4, 4, 2, 3]], rng), 1e-3);
  add('batched matMul gradient (finite differences)', finiteDiff((a, b) => tf.matMul(a, b, true, true), [[3, 6, 5], [3, 7, 6]], rng), 1e-3);

  return { ok: checks.every((c) => c.ok), checks };
}
