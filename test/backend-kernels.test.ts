// wasm replacement kernels (lib/backend/kernels) vs the cpu backend and finite differences:
// Conv2DBackpropFilter / Conv2DBackpropInput, BatchMatMul, Transpose.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../lib/nn/rng';
import { compareWithCpu, finiteDiffCheck, memorySnapshot, randomArray, relErr, setupWasm } from './backend-helpers';

before(setupWasm);

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  co: number;
  s: [number, number];
  pad: Pad;
}

const CONV_CASES: ConvCase[] = [
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, s: [1, 1], pad: 'same' },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, s: [2, 2], pad: 'same' },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, s: [1, 1], pad: 'valid' },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, s: [2, 2], pad: 'valid' },
  { x: [3, 8, 8, 5], k: [4, 4], co: 2, s: [2, 2], pad: 'same' },
  { x: [1, 9, 7, 2], k: [4, 4], co: 3, s: [2, 2], pad: 'valid' },
  { x: [2, 7, 9, 3], k: [1, 1], co: 6, s: [1, 1], pad: 'same' },
  { x: [2, 7, 9, 3], k: [1, 1], co: 6, s: [2, 2], pad: 'valid' },
  { x: [2, 6, 10, 4], k: [3, 2], co: 3, s: [2, 1], pad: 'same' },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, s: [2, 2], pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, s: [1, 1], pad: [[0, 0], [2, 0], [3, 1], [0, 0]] },
  { x: [4, 16, 16, 16], k: [3, 3], co: 16, s: [1, 1], pad: 'same' },
];

const label = (c: ConvCase) => `x=${c.x} k=${c.k} co=${c.co} s=${c.s} pad=${JSON.stringify(c.pad)}`;

test('Conv2DBackpropFilter / Conv2DBackpropInput match the cpu backend', async () => {
  const rng = new Rng(1);
  for (const c of CONV_CASES) {
    const xv = randomArray(rng, c.x);
    const wShape: [number, number, number, number] = [c.k[0], c.k[1], c.x[3], c.co];
    const wv = randomArray(rng, wShape);
    const outShape = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(wShape) as tf.Tensor4D, c.s, c.pad).shape);
    const dyv = randomArray(rng, outShape);
    const err = await compareWithCpu(() => {
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, wShape);
      const dy = tf.tensor4d(dyv, outShape as [number, number, number, number]);
      const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: c.s, pad: c.pad, dataFormat: 'NHWC', filterShape: wShape }) as tf.Tensor;
      const dx = tf.conv2dTranspose(dy, w, c.x, c.s, c.pad);
      return [dw, dx];
    });
    assert.ok(err < 2e-5, `${label(c)}: rel err ${err}`);
  }
});

test('conv2d gradients (via the new kernels) agree with finite differences', () => {
  const rng = new Rng(2);
  for (const c of CONV_CASES.slice(0, 10)) {
    const x = tf.tensor4d(randomArray(rng, c.x), c.x);
    const w = tf.tensor4d(randomArray(rng, [c.k[0], c.k[1], c.x[3], c.co]), [c.k[0], c.k[1], c.x[3], c.co]);
    const err = finiteDiffCheck((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), [x, w], rng);
    tf.dispose([x, w]);
    assert.ok(err < 1e-4, `${label(c)}: finite-difference rel err ${err}`);
  }
});

test('conv2d kernels leak neither tensors nor wasm buffers', () => {
  const rng = new Rng(3);
  const x = tf.tensor4d(randomArray(rng, [2, 7, 9, 3]), [2, 7, 9, 3]);
  const w = tf.tensor4d(randomArray(rng, [3, 3, 3, 4]), [3, 3, 3, 4]);
  const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'));
  tf.dispose(tf.grads(f)([x, w])); // warm-up
  const m0 = memorySnapshot();
  for (let i = 0; i < 5; i++) tf.dispose(tf.grads(f)([x, w]));
  tf.dispose(tf.tidy(() => tf.conv2dTranspose(tf.ones([2, 4, 5, 4]) as tf.Tensor4D, w, [2, 7, 9, 3], 2, 'same')));
  assert.deepEqual(memorySnapshot(), m0);
  tf.dispose([x, w]);
});

/** Plain JS reference for matMul with numpy-style broadcasting of the batch dims. */
function refMatMul(av: Float32Array, as: number[], bv: Float32Array, bs: number[], ta: boolean, tb: boolean): { v: Float64Array; shape: number[] } {
  const m = ta ? as[as.length - 1] : as[as.length - 2];
  const k = ta ? as[as.length - 2] : as[as.length - 1];
  const n = tb ? bs[bs.length - 2] : bs[bs.length - 1];
  const ao = as.slice(0, -2);
  const bo = bs.slice(0, -2);
  const r = Math.max(ao.length, bo.length);
  const ap = [...new Array<number>(r - ao.length).fill(1), ...ao];
  const bp = [...new Array<number>(r - bo.length).fill(1), ...bo];
  const oo = ap.map((d, i) => Math.max(d, bp[i]));
  const total = oo.reduce((x, y) => x * y, 1);
  const v = new Float64Array(total * m * n);
  for (let o = 0; o < total; o++) {
    let rem = o;
    let ia = 0;
    let ib = 0;
    let sa = 1;
    let sb = 1;
    for (let i = r - 1; i >= 0; i--) {
      const c = rem % oo[i];
      rem = Math.floor(rem / oo[i]);
      ia += (ap[i] === 1 ? 0 : c) * sa;
      ib += (bp[i] === 1 ? 0 : c) * sb;
      sa *= ap[i];
      sb *= bp[i];
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let q = 0; q < k; q++) {
          const x = ta ? av[ia * m * k + q * m + i] : av[ia * m * k + i * k + q];
          const y = tb ? bv[ib * k * n + j * k + q] : bv[ib * k * n + q * n + j];
          acc += x * y;
        }
        v[(o * m + i) * n + j] = acc;
      }
    }
  }
  return { v, shape: [...oo, m, n] };
}

test('BatchMatMul: every transpose combination, batches and broadcasting match a JS reference', () => {
  const rng = new Rng(4);
  const cases: { a: number[]; b: number[] }[] = [
    { a: [5, 7], b: [7, 3] },
    { a: [4, 5, 7], b: [4, 7, 3] },
    { a: [4, 5, 7], b: [7, 3] },
    { a: [5, 7], b: [4, 7, 3] },
    { a: [2, 3, 5, 7], b: [3, 7, 6] },
    { a: [2, 1, 5, 7], b: [1, 3, 7, 6] },
    { a: [1, 5, 7], b: [3, 7, 6] },
    { a: [6, 33, 17], b: [6, 17, 40] },
  ];
  const m0 = memorySnapshot();
  for (const c of cases) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const as = c.a.slice();
        const bs = c.b.slice();
        if (ta) [as[as.length - 2], as[as.length - 1]] = [as[as.length - 1], as[as.length - 2]];
        if (tb) [bs[bs.length - 2], bs[bs.length - 1]] = [bs[bs.length - 1], bs[bs.length - 2]];
        const av = randomArray(rng, as);
        const bv = randomArray(rng, bs);
        const ref = refMatMul(av, as, bv, bs, ta, tb);
        const out = tf.tidy(() => tf.matMul(tf.tensor(av, as), tf.tensor(bv, bs), ta, tb));
        assert.deepEqual(out.shape, ref.shape, `a=${as} b=${bs} ta=${ta} tb=${tb}: shape`);
        const err = relErr(out.dataSync(), ref.v);
        out.dispose();
        assert.ok(err < 1e-5, `a=${as} b=${bs} ta=${ta} tb=${tb}: rel err ${err}`);
      }
    }
  }
  assert.deepEqual(memorySnapshot(), m0);
});

test('BatchMatMul matches the cpu backend on an attention-sized batch', async () => {
  const rng = new Rng(7);
  const qv = randomArray(rng, [8, 64, 16]);
  const kv = randomArray(rng, [8, 64, 16]);
  const err = await compareWithCpu(() => {
    const q = tf.tensor3d(qv, [8, 64, 16]);
    const k = tf.tensor3d(kv, [8, 64, 16]);
    const s = tf.matMul(q, k, false, true); // [8, 64, 64]
    return [s, tf.matMul(s, k), tf.matMul(q, s, true, false)];
  });
  assert.ok(err < 1e-5, `rel err ${err}`);
});

test('BatchMatMul gradients agree with finite differences and do not leak', () => {
  const rng = new Rng(5);
  const a = tf.tensor(randomArray(rng, [3, 4, 6]), [3, 4, 6]);
  const b = tf.tensor(randomArray(rng, [3, 5, 6]), [3, 5, 6]);
  const err = finiteDiffCheck((x, y) => tf.matMul(x, y, false, true), [a, b], rng);
  assert.ok(err < 1e-4, `rel err ${err}`);
  // Shared right-hand matrix (the folded fast path); tfjs's own BatchMatMul gradient does not
  // reduce broadcast batch dims, so the batch is folded into rows here as model code must do.
  const c = tf.tensor(randomArray(rng, [6, 5]), [6, 5]);
  const err2 = finiteDiffCheck((x, y) => tf.matMul(x, y, true, false), [tf.reshape(tf.transpose(a, [2, 0, 1]), [6, 12]), c], rng);
  assert.ok(err2 < 1e-4, `folded rel err ${err2}`);
  const at = tf.transpose(a, [0, 2, 1]);
  const m0 = memorySnapshot();
  for (let i = 0; i < 3; i++) tf.dispose(tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, true, true)))([at, b]));
  assert.deepEqual(memorySnapshot(), m0);
  tf.dispose([a, b, c, at]);
});

test('BatchMatMul rejects mismatched inner dimensions', () => {
  assert.throws(() => tf.matMul(tf.zeros([2, 3, 4]), tf.zeros([2, 5, 6])), /inner/);
});

test('Transpose rank 5 and 6 (all kinds of perms) matches cpu, including int32', async () => {
  const rng = new Rng(6);
  const shapes = [
    [2, 3, 4, 5, 6],
    [3, 1, 4, 2, 5],
    [2, 3, 2, 3, 2, 4],
    [1, 2, 3, 4, 5, 2],
  ];
  for (const s of shapes) {
    const r = s.length;
    const v = randomArray(rng, s);
    for (let k = 0; k < 12; k++) {
      const perm = rng.permutation(r);
      const err = await compareWithCpu(() => tf.transpose(tf.tensor(v, s), perm));
      assert.equal(err, 0, `shape ${s} perm ${perm}`);
    }
    const rev = Array.from({ length: r }, (_, i) => r - 1 - i);
    assert.equal(await compareWithCpu(() => tf.transpose(tf.tensor(v, s), rev)), 0, `shape ${s} reversed`);
  }
  const iv = Int32Array.from({ length: 720 }, (_, i) => i);
  const ti = tf.transpose(tf.tensor(iv, [2, 3, 4, 5, 6], 'int32'), [4, 2, 0, 3, 1]);
  const tc = await (async () => {
    await tf.setBackend('cpu');
    const t = tf.transpose(tf.tensor(iv, [2, 3, 4, 5, 6], 'int32'), [4, 2, 0, 3, 1]);
    const d = Array.from(t.dataSync());
    t.dispose();
    await tf.setBackend('wasm');
    return d;
  })();
  assert.equal(ti.dtype, 'int32');
  assert.deepEqual(Array.from(ti.dataSync()), tc);
  ti.dispose();
});

test('Transpose does not leak wasm buffers', () => {
  const x = tf.ones([2, 3, 4, 5, 6, 2]);
  tf.transpose(x, [5, 3, 1, 0, 4, 2]).dispose();
  const m0 = memorySnapshot();
  for (let i = 0; i < 5; i++) tf.transpose(x, [5, 3, 1, 0, 4, 2]).dispose();
  assert.deepEqual(memorySnapshot(), m0);
  x.dispose();
});
