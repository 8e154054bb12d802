// wasm replacement kernels for 3D ops (lib/backend/kernels): Conv3D, its input and filter
// gradients, conv3dTranspose, MaxPool3D / AvgPool3D forward - vs the cpu backend and finite
// differences.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../lib/nn/rng';
import { compareWithCpu, finiteDiffCheck, memorySnapshot, randomArray, setupWasm } from './backend-helpers';

before(setupWasm);

type Shape5 = [number, number, number, number, number];
type Triple = [number, number, number];

interface Conv3dCase {
  x: Shape5;
  k: Triple;
  co: number;
  s: Triple;
  pad: 'same' | 'valid';
  dil?: Triple;
}

const CASES: Conv3dCase[] = [
  { x: [2, 5, 7, 6, 3], k: [3, 3, 3], co: 4, s: [1, 1, 1], pad: 'same' },
  { x: [2, 5, 7, 6, 3], k: [3, 3, 3], co: 4, s: [1, 1, 1], pad: 'valid' },
  { x: [1, 6, 8, 8, 2], k: [4, 4, 4], co: 3, s: [2, 2, 2], pad: 'valid' },
  { x: [1, 6, 8, 8, 2], k: [4, 4, 4], co: 3, s: [2, 2, 2], pad: 'same' },
  { x: [2, 4, 9, 7, 3], k: [4, 4, 4], co: 2, s: [1, 2, 2], pad: 'same' },
  { x: [1, 9, 9, 9, 3], k: [7, 7, 7], co: 4, s: [2, 2, 2], pad: 'same' },
  { x: [2, 5, 7, 6, 5], k: [1, 1, 1], co: 3, s: [1, 1, 1], pad: 'same' },
  { x: [1, 7, 7, 6, 4], k: [1, 3, 3], co: 3, s: [2, 1, 2], pad: 'same' },
  { x: [2, 5, 6, 7, 3], k: [2, 3, 1], co: 2, s: [2, 2, 1], pad: 'valid' },
];

const label = (c: Conv3dCase) => `x=${c.x} k=${c.k} co=${c.co} s=${c.s} pad=${c.pad}`;

test('Conv3D, Conv3DBackpropInputV2, Conv3DBackpropFilterV2 match the cpu backend', async () => {
  const rng = new Rng(11);
  for (const c of CASES) {
    const wShape: Shape5 = [...c.k, c.x[4], c.co];
    const xv = randomArray(rng, c.x);
    const wv = randomArray(rng, wShape);
    const outShape = tf.tidy(() => tf.conv3d(tf.zeros(c.x) as tf.Tensor5D, tf.zeros(wShape) as tf.Tensor5D, c.s, c.pad).shape) as Shape5;
    const dyv = randomArray(rng, outShape);
    const err = await compareWithCpu(() => {
      const x = tf.tensor5d(xv, c.x);
      const w = tf.tensor5d(wv, wShape);
      const dy = tf.tensor5d(dyv, outShape);
      const y = tf.conv3d(x, w, c.s, c.pad);
      const dx = tf.conv3dTranspose(dy, w, c.x, c.s, c.pad);
      const dw = tf.engine().runKernel('Conv3DBackpropFilterV2', { x, dy }, { strides: c.s, pad: c.pad, filterShape: wShape }) as tf.Tensor;
      return [y, dx, dw];
    });
    assert.ok(err < 2e-5, `${label(c)}: rel err ${err}`);
  }
});

test('Conv3D with dilation matches the cpu backend', async () => {
  const rng = new Rng(12);
  const xv = randomArray(rng, [1, 7, 8, 8, 2]);
  const wv = randomArray(rng, [2, 3, 3, 2, 3]);
  const err = await compareWithCpu(() =>
    tf.conv3d(tf.tensor5d(xv, [1, 7, 8, 8, 2]), tf.tensor5d(wv, [2, 3, 3, 2, 3]), 1, 'same', 'NDHWC', [2, 1, 2]),
  );
  assert.ok(err < 2e-5, `rel err ${err}`);
});

test('conv3d gradients agree with finite differences', () => {
  const rng = new Rng(13);
  for (const c of CASES.slice(0, 6)) {
    const wShape: Shape5 = [...c.k, c.x[4], c.co];
    const x = tf.tensor5d(randomArray(rng, c.x), c.x);
    const w = tf.tensor5d(randomArray(rng, wShape), wShape);
    const err = finiteDiffCheck((a, b) => tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, c.s, c.pad), [x, w], rng);
    tf.dispose([x, w]);
    assert.ok(err < 1e-4, `${label(c)}: finite-difference rel err ${err}`);
  }
});

test('conv3dTranspose gradients agree with finite differences', () => {
  const rng = new Rng(14);
  const xShape: Shape5 = [1, 5, 6, 7, 3];
  const dy = tf.tensor5d(randomArray(rng, [1, 3, 3, 4, 2]), [1, 3, 3, 4, 2]);
  const w = tf.tensor5d(randomArray(rng, [4, 4, 4, 3, 2]), [4, 4, 4, 3, 2]);
  const err = finiteDiffCheck((a, b) => tf.conv3dTranspose(a as tf.Tensor5D, b as tf.Tensor5D, xShape, 2, 'same'), [dy, w], rng);
  tf.dispose([dy, w]);
  assert.ok(err < 1e-4, `finite-difference rel err ${err}`);
});

test('conv3d kernels leak neither tensors nor wasm buffers', () => {
  const rng = new Rng(15);
  const x = tf.tensor5d(randomArray(rng, [1, 6, 8, 8, 2]), [1, 6, 8, 8, 2]);
  const w = tf.tensor5d(randomArray(rng, [4, 4, 4, 2, 3]), [4, 4, 4, 2, 3]);
  const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, [2, 2, 2], 'same'));
  tf.dispose(tf.grads(f)([x, w]));
  const m0 = memorySnapshot();
  for (let i = 0; i < 4; i++) tf.dispose(tf.grads(f)([x, w]));
  tf.dispose(tf.tidy(() => tf.conv3dTranspose(tf.ones([1, 3, 4, 4, 3]) as tf.Tensor5D, w, [1, 6, 8, 8, 2], 2, 'same')));
  assert.deepEqual(memorySnapshot(), m0);
  tf.dispose([x, w]);
});

test('MaxPool3D / AvgPool3D forward match the cpu backend (I3D settings and more)', async () => {
  const rng = new Rng(16);
  const cases: { x: Shape5; k: Triple; s: Triple; pad: 'same' | 'valid' }[] = [
    { x: [1, 5, 9, 9, 3], k: [1, 3, 3], s: [1, 2, 2], pad: 'same' },
    { x: [2, 5, 9, 8, 3], k: [3, 3, 3], s: [2, 2, 2], pad: 'same' },
    { x: [1, 6, 7, 7, 4], k: [2, 7, 7], s: [1, 1, 1], pad: 'valid' },
    { x: [1, 6, 8, 8, 2], k: [3, 3, 3], s: [1, 1, 1], pad: 'same' },
    { x: [2, 7, 6, 5, 2], k: [2, 2, 2], s: [2, 2, 2], pad: 'valid' },
  ];
  const m0 = memorySnapshot();
  for (const c of cases) {
    const xv = randomArray(rng, c.x);
    const err = await compareWithCpu(() => {
      const x = tf.tensor5d(xv, c.x);
      return [tf.maxPool3d(x, c.k, c.s, c.pad), tf.avgPool3d(x, c.k, c.s, c.pad)];
    });
    assert.ok(err < 1e-6, `pool x=${c.x} k=${c.k} s=${c.s} ${c.pad}: rel err ${err}`);
  }
  assert.deepEqual(memorySnapshot(), m0);
});

test('repeated kernel calls do not grow the wasm heap', () => {
  const rng = new Rng(17);
  const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
  const x = tf.tensor5d(randomArray(rng, [2, 4, 8, 8, 4]), [2, 4, 8, 8, 4]);
  const w = tf.tensor5d(randomArray(rng, [3, 3, 3, 4, 4]), [3, 3, 3, 4, 4]);
  const q = tf.tensor3d(randomArray(rng, [8, 32, 16]), [8, 32, 16]);
  const step = () => {
    tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, [1, 2, 2], 'same')))([x, w]));
    tf.dispose(tf.tidy(() => [tf.matMul(q, q, false, true), tf.transpose(x, [4, 2, 0, 3, 1]), tf.maxPool3d(x, 3, 1, 'same')]));
  };
  for (let i = 0; i < 20; i++) step();
  const h0 = heapBytes();
  const m0 = memorySnapshot();
  for (let i = 0; i < 200; i++) step();
  assert.equal(heapBytes(), h0);
  assert.deepEqual(memorySnapshot(), m0);
  tf.dispose([x, w, q]);
});
