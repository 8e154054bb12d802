// Every kernel of the libtorch backend against tfjs's reference `cpu` backend: values, gradients
// (tfjs's own gradient functions running over the native kernels), broadcasting and edge shapes.
// A coverage check asserts that every registered native kernel ran in these comparisons.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, NATIVE_KERNEL_NAMES } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { adaptiveGroupNorm } from '../lib/models/unet3d/norm';
import { selfAttention } from '../lib/models/unet3d/attention';
import { frameConv } from '../lib/models/unet3d/resblock';
import type { Conv2d } from '../lib/nn/layers';
import { Adam, Ema, clipGradNorm } from '../lib/train/optim';
import { compareOutputs, kernelsRun, nativeSnapshot, outputsOn, setupNative } from './native-helpers';
import { nativeAddon } from '../lib/backend/native/addon';

before(setupNative);

type F = (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

interface Case {
  name: string;
  /** Input shapes (float32 normal values unless `make` is given). */
  shapes: number[][];
  f: F;
  /** Values from a seeded normal array, mapped (e.g. to a function's domain). */
  map?: (v: number) => number;
  /** Compare gradients of sum(r * f(x)) w.r.t. every input too. */
  grad?: boolean;
  tol?: number;
}

const seen = new Set<string>();

function inputs(c: Case, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return c.shapes.map((s) => {
    const v = rng.normalArray(s.reduce((a, b) => a * b, 1));
    return c.map ? v.map(c.map) : v;
  });
}

/** The case's outputs and (optionally) input gradients on the active backend. */
function evaluate(c: Case, data: Float32Array[]): tf.Tensor[] {
  const xs = c.shapes.map((s, i) => tf.tensor(data[i], s));
  const out = c.f(...xs);
  const outs = Array.isArray(out) ? out : [out];
  if (!c.grad) return outs;
  const rng = new Rng(99);
  const rs = outs.map((o) => tf.tensor(rng.normalArray(o.size), o.shape));
  const loss = (...a: tf.Tensor[]): tf.Scalar => {
    const o = c.f(...a);
    const os = Array.isArray(o) ? o : [o];
    return tf.addN(os.map((t, i) => tf.sum(tf.mul(t, rs[i])))) as tf.Scalar;
  };
  return [...outs, ...tf.grads(loss)(xs)];
}

async function check(cases: Case[]): Promise<void> {
  const failures: string[] = [];
  await kernelsRun(async () => {
    for (const [k, c] of cases.entries()) {
      const data = inputs(c, 1000 + k);
      const before = nativeSnapshot();
      let mine;
      try {
        mine = await outputsOn(NATIVE_BACKEND, () => evaluate(c, data));
      } catch (e) {
        failures.push(`${c.name}: ${(e as Error).message.split('\n')[0]}`);
        continue;
      }
      const after = nativeSnapshot();
      if (after.tensors !== before.tensors || after.bytes !== before.bytes || after.handles !== before.handles) {
        failures.push(`${c.name}: leaked (${JSON.stringify(before)} -> ${JSON.stringify(after)})`);
      }
      const ref = await outputsOn('cpu', () => evaluate(c, data));
      const why = compareOutputs(mine, ref, c.tol ?? 1e-5);
      if (why !== '') failures.push(`${c.name}: ${why}`);
    }
  }, seen);
  assert.deepEqual(failures, []);
}

const pos = (v: number) => Math.abs(v) + 0.1;
const unit = (v: number) => Math.tanh(v) * 0.9;

test("the addon's own parallel loops (fused kernels) run on every thread", () => {
  // ATen's at::parallel_for is an OpenMP pragma compiled into the addon: without -fopenmp the
  // fused kernels silently ran on one core while libtorch's own ops used two.
  const addon = nativeAddon()!;
  const before = addon.info().threads;
  try {
    addon.setThreads(2);
    assert.equal(addon.info().parallelForThreads, 2);
    addon.setThreads(1);
    assert.equal(addon.info().parallelForThreads, 1);
  } finally {
    addon.setThreads(before);
  }
});

test('unary kernels and their gradients match cpu', async () => {
  const u = (name: string, f: (x: tf.Tensor) => tf.Tensor | tf.Tensor[], map?: (v: number) => number, grad = true): Case => ({ name, shapes: [[3, 5]], f: (x) => f(x), map, grad });
  await check([
    u('abs', tf.abs),
    u('acos', tf.acos, unit),
    u('acosh', tf.acosh, (v) => Math.abs(v) + 1.1),
    u('asin', tf.asin, unit),
    u('asinh', tf.asinh),
    u('atan', tf.atan),
    u('atanh', tf.atanh, unit),
    u('ceil', tf.ceil),
    u('cos', tf.cos),
    u('cosh', tf.cosh),
    u('elu', tf.elu),
    u('erf', tf.erf),
    u('exp', tf.exp),
    u('expm1', tf.expm1),
    u('floor', tf.floor),
    u('log', tf.log, pos),
    u('log1p', tf.log1p, pos),
    u('neg', tf.neg),
    u('reciprocal', tf.reciprocal, pos),
    u('relu', tf.relu),
    u('relu6', (x) => tf.relu6(tf.mul(x, 4))),
    u('round', (x) => tf.round(tf.mul(x, 2))),
    u('rsqrt', tf.rsqrt, pos),
    u('selu', tf.selu),
    u('sigmoid', tf.sigmoid),
    u('sign', tf.sign),
    u('sin', tf.sin),
    u('sinh', tf.sinh),
    u('softplus', tf.softplus),
    u('sqrt', tf.sqrt, pos),
    u('square', tf.square),
    u('tan', tf.tan, unit),
    u('tanh', tf.tanh),
    u('leakyRelu', (x) => tf.leakyRelu(x, 0.3)),
    u('step', (x) => tf.step(x, 0.25), undefined, false),
    u('clipByValue', (x) => tf.clipByValue(x, -0.5, 0.7)),
    u('zerosLike/onesLike', (x) => tf.add(tf.zerosLike(x), tf.onesLike(x))),
    u('isNaN/isInf/isFinite/logicalNot', (x) => {
      const y = tf.div(tf.log(x), tf.sub(x, x)); // NaN, +-Inf mixed
      return tf.stack([tf.cast(tf.isNaN(y), 'float32'), tf.cast(tf.isInf(y), 'float32'), tf.cast(tf.logicalNot(tf.isFinite(y)), 'float32')]);
    }, undefined, false),
    u('cast float->int32->bool', (x) => [tf.cast(tf.mul(x, 3), 'int32'), tf.cast(tf.cast(tf.mul(x, 3), 'int32'), 'bool'), tf.cast(tf.cast(x, 'bool'), 'float32')], undefined, false),
    u('identity (clone)', (x) => tf.clone(x)),
  ]);
});

test('binary kernels broadcast and differentiate as on cpu', async () => {
  const shapePairs: [number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [3, 1]],
    [[1], [2, 3]],
    [[4, 1, 5], [1, 3, 1]],
    [[], [2, 2]],
  ];
  // tfjs's own gradients of maximum/minimum/squaredDifference do not reduce broadcast axes (they
  // fail on every backend): those gradients are compared for equal shapes only.
  const reduces = new Set(['add', 'sub', 'mul', 'div', 'atan2']);
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, boolean][] = [
    ['add', tf.add, true],
    ['sub', tf.sub, true],
    ['mul', tf.mul, true],
    ['div', tf.div, true],
    ['maximum', tf.maximum, true],
    ['minimum', tf.minimum, true],
    ['squaredDifference', tf.squaredDifference, true],
    ['atan2', tf.atan2, true],
    ['floorDiv', (a, b) => tf.floorDiv(a, b), false],
    ['mod', tf.mod, false],
    ['comparisons', (a, b) => tf.stack([tf.equal(a, b), tf.notEqual(a, b), tf.less(a, b), tf.lessEqual(a, b), tf.greater(a, b), tf.greaterEqual(a, b)].map((t) => tf.cast(t, 'float32'))), false],
    ['logical', (a, b) => {
      const p = tf.greater(a, 0);
      const q = tf.greater(b, 0);
      return tf.cast(tf.stack([tf.logicalAnd(p, q), tf.logicalOr(p, q), tf.logicalXor(p, q)]), 'float32');
    }, false],
  ];
  const cases: Case[] = [];
  for (const [name, op, grad] of ops) for (const [sa, sb] of shapePairs) cases.push({ name: `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, shapes: [sa, sb], f: (a, b) => op(a, b), grad: grad && (reduces.has(name) || sa.join() === sb.join()) });
  cases.push({ name: 'pow (positive base)', shapes: [[2, 3], [3]], f: (a, b) => tf.pow(tf.add(tf.abs(a), 0.5), b), grad: true });
  cases.push({ name: 'prelu', shapes: [[2, 3, 4], [4]], f: (a, b) => tf.prelu(a, b), grad: true });
  cases.push({ name: 'addN', shapes: [[2, 3], [2, 3], [2, 3]], f: (a, b, c) => tf.addN([a, b, c]), grad: true });
  const cond = () => tf.greater(tf.tensor2d([[1, -1, 2, -2], [0.5, 3, -1, 1], [-3, 2, 1, -1]]), 0);
  cases.push({ name: 'where', shapes: [[3, 4], [3, 4]], f: (a, b) => tf.where(cond(), a, b), grad: true });
  cases.push({ name: 'where (broadcast condition)', shapes: [[3, 4], [3, 4], [4]], f: (a, b, c) => tf.where(tf.greater(c, 0), a, b) });
  cases.push({
    name: 'int32 arithmetic',
    shapes: [[2, 5], [5]],
    f: (a, b) => {
      const x = tf.cast(tf.mul(a, 10), 'int32');
      const y = tf.add(tf.cast(tf.abs(tf.mul(b, 5)), 'int32'), 1);
      return [tf.add(x, y), tf.sub(x, y), tf.mul(x, y), tf.floorDiv(x, y), tf.mod(x, y), tf.maximum(x, y), tf.sum(x, 1), tf.abs(x)];
    },
  });
  await check(cases);
});

test('reductions, softmax and cumsum match cpu', async () => {
  const r = (name: string, f: (x: tf.Tensor) => tf.Tensor | tf.Tensor[], grad = true, shape = [2, 3, 4]): Case => ({ name, shapes: [shape], f: (x) => f(x), grad });
  await check([
    r('sum all', (x) => tf.sum(x)),
    r('sum axes [0, 2] keepDims', (x) => tf.sum(x, [0, 2], true)),
    r('sum axis -1', (x) => tf.sum(x, -1)),
    r('mean', (x) => [tf.mean(x), tf.mean(x, 1), tf.mean(x, [-1, 0], true)]),
    r('max / min', (x) => [tf.max(x), tf.max(x, 1), tf.min(x, [0, 2], true)]),
    r('prod', (x) => [tf.prod(x, 1), tf.prod(x, [0, 2])], false),
    r('all / any', (x) => [tf.cast(tf.all(tf.greater(x, -1), 1), 'float32'), tf.cast(tf.any(tf.greater(x, 1), [0, 2]), 'float32'), tf.cast(tf.any(tf.greater(x, 0)), 'float32')], false),
    r('argMax / argMin', (x) => [tf.argMax(x, 1), tf.argMin(x, -1), tf.argMax(x)], false),
    r('softmax', (x) => tf.softmax(x)),
    r('logSoftmax', (x) => tf.logSoftmax(x)),
    // (tfjs's cumsum gradient is wrong for non-last axes on every backend: values only there.)
    r('cumsum', (x) => [tf.cumsum(x, 1), tf.cumsum(x, 0, false, true)], false),
    r('cumsum last axis', (x) => [tf.cumsum(x, 2), tf.cumsum(x, 2, true, false), tf.cumsum(x, 2, true, true)]),
    r('zero-size reduce', (x) => [tf.sum(tf.slice(x, [0, 0, 0], [2, 0, 4]), 1), tf.mean(x, [])], false),
    r('scalar input', (x) => [tf.sum(tf.reshape(tf.slice(x, [0, 0, 0], [1, 1, 1]), [])), tf.exp(tf.reshape(tf.slice(x, [1, 1, 1], [1, 1, 1]), []))], true),
  ]);
});

test('shape kernels (reshape, transpose, slices, concat, pads, gather, ...) match cpu', async () => {
  const s = (name: string, shape: number[], f: (x: tf.Tensor) => tf.Tensor | tf.Tensor[], grad = true): Case => ({ name, shapes: [shape], f: (x) => f(x), grad });
  await check([
    s('reshape', [2, 3, 4], (x) => tf.reshape(x, [4, -1])),
    s('transpose rank 6', [2, 3, 2, 1, 3, 2], (x) => tf.transpose(x, [5, 2, 0, 4, 1, 3])),
    s('slice', [4, 5, 6], (x) => [tf.slice(x, [1, 0, 2], [2, -1, 3]), tf.slice(x, [3, 4, 5], [1, 1, 1])]),
    s('stridedSlice', [5, 6, 4], (x) => [
      tf.stridedSlice(x, [1, 0, 0], [4, 6, 4], [2, 1, 1]),
      tf.stridedSlice(x, [4, 5, 3], [0, 0, 0], [-1, -2, -1]),
      tf.stridedSlice(x, [0, 1], [0, 3], [1, 1], 1, 0, 0, 0, 2),
      tf.stridedSlice(x, [0, 0, 0], [5, 6, 4], [1, 1, 1]),
    ], false),
    s('concat / stack / unstack / split', [3, 4], (x) => [
      tf.concat([x, tf.mul(x, 2), tf.slice(x, [0, 0], [3, 0])], 1),
      tf.concat([x, x], 0),
      tf.stack([x, tf.neg(x)], 1),
      ...tf.unstack(x, 1),
      ...tf.split(x, [1, 3], 1),
      ...tf.split(x, 3, 0),
    ]),
    s('tile / broadcastTo', [2, 1, 3], (x) => [tf.tile(x, [2, 3, 1]), tf.broadcastTo(x, [2, 4, 3])]),
    s('pad', [2, 3, 4], (x) => [tf.pad(x, [[0, 0], [1, 2], [3, 0]]), tf.pad(x, [[1, 1], [0, 0], [0, 1]], 1.5)]),
    s('mirrorPad', [3, 4], (x) => [tf.mirrorPad(x, [[1, 2], [2, 3]], 'reflect'), tf.mirrorPad(x, [[2, 1], [0, 4]], 'symmetric')]),
    s('reverse', [2, 3, 4], (x) => [tf.reverse(x, [0, 2]), tf.reverse(x, -1)]),
    s('gather (gradient: UnsortedSegmentSum)', [5, 3, 2], (x) => [tf.gather(x, tf.tensor1d([4, 0, 0, 2], 'int32')), tf.gather(x, tf.tensor2d([[2, 1], [0, 0]], [2, 2], 'int32'), 1), tf.gather(x, [1], -1)]),
    s('fill / range / oneHot / linspace', [2], () => [
      tf.fill([2, 3], 1.25),
      tf.fill([3], 7, 'int32'),
      tf.range(0, 10, 3),
      tf.range(5, -1, -2, 'int32'),
      tf.oneHot(tf.tensor1d([0, 2, 5, -1], 'int32'), 4),
      tf.oneHot(tf.tensor1d([1, 0], 'int32'), 3, 5, -1),
    ], false),
    s('empty concat / pad / transpose', [3, 0, 2], (x) => [tf.concat([x, x], 1), tf.transpose(x, [2, 0, 1]), tf.pad(x, [[0, 0], [1, 1], [0, 0]])], false),
  ]);
});

test('matMul (batched, transposed, broadcast) and fused matMul match cpu with gradients', async () => {
  await check([
    { name: 'matMul 2d', shapes: [[5, 6], [6, 7]], f: (a, b) => tf.matMul(a, b), grad: true },
    { name: 'matMul transposeA/B', shapes: [[3, 6, 5], [3, 7, 6]], f: (a, b) => tf.matMul(a, b, true, true), grad: true },
    // cpu's broadcast-batch matMul is wrong (it returns too few values) and tfjs's gradient does
    // not reduce broadcast axes: values only, against cpu on explicitly tiled operands.
    {
      name: 'matMul broadcast batch',
      shapes: [[2, 1, 4, 5], [3, 5, 2]],
      f: (a, b) => (tf.getBackend() === 'cpu' ? tf.matMul(tf.tile(a, [1, 3, 1, 1]), tf.tile(tf.expandDims(b, 0), [2, 1, 1, 1])) : tf.matMul(a, b)),
    },
    { name: 'matMul transposeB', shapes: [[4, 8, 6], [4, 5, 6]], f: (a, b) => tf.matMul(a, b, false, true), grad: true },
    // Many small products (>= 16 of them, m k n <= 32^3: native/src/small_bmm.h's batch loop),
    // with every register-blocked row length (8, 16, 32), an odd one (5), and m not a multiple of
    // the row block; the gradients run transposed products through the same loop.
    { name: 'many small matMuls n 8', shapes: [[20, 7, 32], [20, 32, 8]], f: (a, b) => tf.matMul(a, b), grad: true },
    { name: 'many small matMuls n 16 transposeA', shapes: [[17, 9, 6], [17, 9, 16]], f: (a, b) => tf.matMul(a, b, true, false), grad: true },
    { name: 'many small matMuls n 32 transposeB', shapes: [[16, 8, 8], [16, 32, 8]], f: (a, b) => tf.matMul(a, b, false, true), grad: true },
    { name: 'many small matMuls n 5 transposeA/B', shapes: [[24, 3, 6], [24, 5, 3]], f: (a, b) => tf.matMul(a, b, true, true), grad: true },
    { name: 'fused matMul bias relu', shapes: [[5, 6], [6, 7], [7]], f: (a, b, c) => tf.fused.matMul({ a, b, bias: c, activation: 'relu' }), grad: true },
    // rank 3 with a batch of one: the bias is added by addmm on the 2D product.
    { name: 'fused matMul rank 3 batch of one, bias', shapes: [[1, 5, 6], [1, 6, 7], [7]], f: (a, b, c) => tf.fused.matMul({ a, b, bias: c }), grad: true },
    { name: 'fused matMul linear transposeB', shapes: [[5, 6], [7, 6], [7]], f: (a, b, c) => tf.fused.matMul({ a, b, bias: c, transposeB: true }), grad: true },
    {
      name: 'fused matMul prelu / leakyrelu / sigmoid / relu6 / elu',
      shapes: [[2, 5, 6], [2, 6, 3], [3]],
      f: (a, b, c) => [
        tf.fused.matMul({ a, b, bias: c, activation: 'prelu', preluActivationWeights: tf.tensor1d([0.1, 0.2, 0.3]) }),
        tf.fused.matMul({ a, b, activation: 'leakyrelu', leakyreluAlpha: 0.3 }),
        tf.fused.matMul({ a, b, bias: c, activation: 'sigmoid' }),
        tf.fused.matMul({ a, b, bias: c, activation: 'relu6' }),
        tf.fused.matMul({ a, b, bias: c, activation: 'elu' }),
      ],
    },
    { name: 'batchNorm', shapes: [[2, 3, 4], [4], [4], [4], [4]], f: (x, m, v, o, s) => [tf.batchNorm(x, m, tf.abs(v), o, s, 1e-3), tf.batchNorm(x, m, tf.abs(v))] },
  ]);
});

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

test('conv2d family (strides, dilations, same/valid/explicit pads, fused, transpose) match cpu with gradients', async () => {
  const cases: Case[] = [];
  const conv: [number[], number[], [number, number], Pad, [number, number]][] = [
    [[2, 7, 9, 3], [3, 3, 3, 4], [1, 1], 'same', [1, 1]],
    [[2, 7, 9, 3], [3, 3, 3, 4], [2, 2], 'same', [1, 1]],
    [[2, 8, 8, 3], [4, 4, 3, 2], [2, 2], 'same', [1, 1]],
    [[1, 9, 7, 2], [4, 4, 2, 3], [2, 2], 'valid', [1, 1]],
    [[2, 6, 10, 4], [3, 2, 4, 3], [2, 1], 'same', [1, 1]],
    [[2, 7, 9, 3], [1, 1, 3, 6], [2, 2], 'valid', [1, 1]],
    [[2, 7, 9, 3], [3, 3, 3, 4], [2, 2], [[0, 0], [1, 2], [0, 1], [0, 0]], [1, 1]],
    [[1, 9, 9, 2], [3, 3, 2, 2], [1, 1], 'same', [2, 2]],
  ];
  for (const [xs, ws, st, pad, dil] of conv) {
    // (tfjs has no conv2d gradient for dilations > 1.)
    const grad = dil[0] === 1 && dil[1] === 1;
    cases.push({ name: `conv2d x=${xs} w=${ws} s=${st} pad=${JSON.stringify(pad)} d=${dil}`, shapes: [xs, ws], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, st, pad, 'NHWC', dil), grad, tol: 2e-5 });
  }
  cases.push({
    name: 'fused conv2d bias + relu / leakyrelu / prelu',
    shapes: [[2, 6, 6, 3], [3, 3, 3, 4], [4]],
    f: (x, w, b) => [
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 1, pad: 'same', bias: b, activation: 'relu' }),
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'valid', bias: b, activation: 'leakyrelu', leakyreluAlpha: 0.1 }),
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 1, pad: 'same', activation: 'prelu', preluActivationWeights: tf.fill([4], 0.2) }),
    ],
    grad: true,
    tol: 2e-5,
  });
  cases.push({
    name: 'conv2d / maxPool with empty output (input smaller than the kernel) and empty batch',
    shapes: [[1, 3, 3, 2], [4, 4, 2, 3]],
    f: (x, w) => [tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid'), tf.maxPool(x as tf.Tensor4D, 4, 1, 'valid'), tf.conv2d(tf.slice(x, [0, 0, 0, 0], [0, 3, 3, 2]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'same')],
    grad: true,
  });
  cases.push({
    name: 'conv2dTranspose stride 2 same',
    shapes: [[2, 4, 5, 4], [3, 3, 3, 4]],
    f: (dy, w) => tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, [2, 7, 9, 3], 2, 'same'),
    grad: true,
    tol: 2e-5,
  });
  await check(cases);
});

test('conv3d family and its gradients match cpu', async () => {
  const cases: Case[] = [];
  const conv: [number[], number[], [number, number, number], 'same' | 'valid'][] = [
    [[1, 5, 6, 7, 2], [3, 3, 3, 2, 3], [1, 1, 1], 'same'],
    [[2, 6, 8, 7, 2], [4, 4, 4, 2, 3], [2, 2, 2], 'same'],
    [[1, 5, 6, 7, 2], [3, 3, 3, 2, 2], [1, 2, 2], 'valid'],
    [[2, 4, 5, 5, 3], [1, 3, 3, 3, 2], [1, 1, 1], 'same'],
    [[1, 3, 4, 4, 2], [1, 1, 1, 2, 4], [1, 1, 1], 'valid'],
  ];
  for (const [xs, ws, st, pad] of conv) {
    cases.push({ name: `conv3d x=${xs} w=${ws} s=${st} ${pad}`, shapes: [xs, ws], f: (x, w) => tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, st, pad), grad: true, tol: 2e-5 });
  }
  cases.push({
    name: 'conv3dTranspose stride 2 same (and its gradient)',
    shapes: [[1, 3, 4, 4, 3], [4, 4, 4, 2, 3]],
    f: (dy, w) => tf.conv3dTranspose(dy as tf.Tensor5D, w as tf.Tensor5D, [1, 6, 8, 7, 2], 2, 'same'),
    grad: true,
    tol: 2e-5,
  });
  await check(cases);
});

test('pooling 2d/3d (same/valid, strides) match cpu with gradients', async () => {
  await check([
    { name: 'maxPool same s2', shapes: [[2, 7, 9, 3]], f: (x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same'), grad: true },
    { name: 'maxPool valid', shapes: [[2, 8, 8, 3]], f: (x) => tf.maxPool(x as tf.Tensor4D, [2, 3], [2, 1], 'valid'), grad: true },
    // cpu's AvgPoolGrad divides by the full window even where its forward excluded the padding:
    // 'same' average-pool gradients are checked by finite differences in native-models.test.ts.
    { name: 'avgPool same s2', shapes: [[2, 7, 9, 3]], f: (x) => tf.avgPool(x as tf.Tensor4D, 3, 2, 'same') },
    { name: 'avgPool valid [s,1]', shapes: [[2, 8, 6, 3]], f: (x) => tf.avgPool(x as tf.Tensor4D, [4, 1], 1, 'valid'), grad: true },
    { name: 'maxPool3d same', shapes: [[1, 5, 6, 7, 2]], f: (x) => tf.maxPool3d(x as tf.Tensor5D, [3, 3, 3], [1, 2, 2], 'same'), grad: true },
    { name: 'maxPool3d valid', shapes: [[2, 4, 6, 6, 2]], f: (x) => tf.maxPool3d(x as tf.Tensor5D, [2, 2, 2], 2, 'valid'), grad: true },
    { name: 'avgPool3d valid', shapes: [[1, 6, 8, 7, 2]], f: (x) => tf.avgPool3d(x as tf.Tensor5D, [2, 3, 3], 1, 'valid'), grad: true },
    { name: 'avgPool3d same', shapes: [[1, 6, 8, 7, 2]], f: (x) => tf.avgPool3d(x as tf.Tensor5D, 3, 2, 'same') },
  ]);
});

test('resize bilinear / nearest (all corner conventions) match cpu', async () => {
  const cases: Case[] = [];
  for (const [ac, hp] of [
    [false, false],
    [true, false],
    [false, true],
  ] as const) {
    for (const size of [
      [7, 5],
      [3, 2],
    ] as [number, number][]) {
      // cpu's gradients ignore halfPixelCenters (and its nearest gradient mixes batches): gradients
      // are compared where cpu is right and checked by finite differences in native-models.test.ts.
      cases.push({ name: `resizeBilinear ac=${ac} hp=${hp} ${size}`, shapes: [[2, 4, 4, 3]], f: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, size, ac, hp), grad: !hp });
      cases.push({ name: `resizeNearest ac=${ac} hp=${hp} ${size}`, shapes: [[1, 4, 4, 3]], f: (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, size, ac, hp), grad: !hp });
    }
  }
  await check(cases);
});

test('fused AdaGN (+ SiLU) kernels and their gradients match the composite ops on cpu', async () => {
  const gn = (groups: number, act: boolean, mod: 'none' | 'scale-shift' | 'scale') => (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, sc?: tf.Tensor, sh?: tf.Tensor) =>
    adaptiveGroupNorm(x, { groups, eps: 1e-5, gamma, beta }, mod === 'none' ? undefined : (sc as tf.Tensor2D), mod === 'scale-shift' ? (sh as tf.Tensor2D) : undefined, { silu: act });
  await check([
    { name: 'adaGN 4d scale+shift silu', shapes: [[3, 5, 4, 6], [6], [6], [3, 6], [3, 6]], f: gn(3, true, 'scale-shift'), grad: true, tol: 1e-4 },
    { name: 'adaGN 4d plain', shapes: [[2, 3, 3, 8], [8], [8]], f: gn(2, false, 'none'), grad: true, tol: 1e-4 },
    { name: 'adaGN 3d (temporal rows) scale only silu', shapes: [[7, 4, 4], [4], [4], [7, 4]], f: gn(4, true, 'scale'), grad: true, tol: 1e-4 },
    { name: 'adaGN one group, large mean', shapes: [[2, 16, 5], [5], [5]], f: (x, g, b) => gn(1, true, 'none')(tf.add(x, 3), g, b), grad: true, tol: 1e-4 },
  ]);
});

test('fused self-attention kernels and their gradients match the composite ops on cpu', async () => {
  // y [G*S, 3C] as projectQkv makes it; relative tables [2L+1, d] in both key orientations.
  const attn = (g: number, s: number, heads: number, L?: number, orientation?: 'shaw' | 'transposed', keyScale?: number) => (y: tf.Tensor, k?: tf.Tensor, v?: tf.Tensor) =>
    selfAttention(y as tf.Tensor2D, g, s, heads, L === undefined ? undefined : { key: k as tf.Tensor2D, value: v as tf.Tensor2D, maxDistance: L, keyOrientation: orientation, keyScale });
  await check([
    { name: 'self-attention (spatial: no relative terms)', shapes: [[3 * 9, 3 * 8]], f: attn(3, 9, 2), grad: true, tol: 1e-4 },
    { name: 'self-attention relative (shaw), distances clipped', shapes: [[4 * 6, 3 * 8], [5, 4], [5, 4]], f: attn(4, 6, 2, 2, 'shaw'), grad: true, tol: 1e-4 },
    { name: 'self-attention relative (transposed, key scale)', shapes: [[2 * 5, 3 * 6], [9, 2], [9, 2]], f: attn(2, 5, 3, 4, 'transposed', 1.7), grad: true, tol: 1e-4 },
    // 21 positions: softmax rows of two 8-lane blocks and a tail of 5 (the vectorised reductions).
    { name: 'self-attention long rows (vector blocks and a tail)', shapes: [[2 * 21, 3 * 8]], f: attn(2, 21, 1), grad: true, tol: 1e-4 },
    // A table of 9 x 24 = 216 entries: its gradient is summed over the 48 sequences in column blocks
    // split between the threads.
    { name: 'self-attention relative, a table larger than one thread block', shapes: [[48 * 4, 3 * 24], [9, 24], [9, 24]], f: attn(48, 4, 1, 4, 'shaw'), grad: true, tol: 1e-4 },
    { name: 'self-attention one position', shapes: [[5, 3 * 4], [3, 4], [3, 4]], f: attn(5, 1, 1, 1), grad: true, tol: 1e-4 },
  ]);
  for (const k of ['LvdmSelfAttention', 'LvdmSelfAttentionGrad']) assert.ok(seen.has(k), `${k} did not run`);
  await assert.rejects(
    outputsOn(NATIVE_BACKEND, () => attn(2, 3, 2, 1)(tf.ones([6, 12]), tf.ones([4, 2]), tf.ones([3, 2]))),
    /LvdmSelfAttention \(libtorch backend\): SelfAttention: relative key table must be \[3, 2\], got \[4, 2\]/,
  );
});

test('the fused convolution gradient (dx, dfilter, dbias in one call) matches the composite ops on cpu', async () => {
  // frameConv as the UNet calls it, on stand-ins for Conv2d layers (weight [k, k, Cin, Cout]).
  const conv = (kernel: number, stride: number, padding: number) => (x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor) =>
    frameConv({ weight, bias: bias ?? null, kernel, stride, padding } as unknown as Conv2d, x as tf.Tensor4D);
  await check([
    { name: 'frameConv 3x3 same, bias', shapes: [[2, 6, 5, 3], [3, 3, 3, 4], [4]], f: conv(3, 1, 1), grad: true, tol: 1e-4 },
    { name: 'frameConv 3x3 stride 2 (explicit pad), no bias', shapes: [[3, 7, 6, 2], [3, 3, 2, 5]], f: conv(3, 2, 1), grad: true, tol: 1e-4 },
    { name: 'frameConv 1x1 (skip connection), bias', shapes: [[2, 4, 4, 6], [1, 1, 6, 3], [3]], f: conv(1, 1, 0), grad: true, tol: 1e-4 },
  ]);
  assert.ok(seen.has('LvdmConv2DGrad'), 'LvdmConv2DGrad did not run');
});

test('fused optimiser kernels (AdamStep, EmaUpdate, SumSquares) match the composite updates on cpu', async () => {
  const rng = new Rng(5);
  const shapes = [[4, 3], [5], [2, 2, 3]];
  const init = shapes.map((s) => rng.normalArray(s.reduce((a, b) => a * b, 1)));
  const gradSteps = [0, 1, 2].map(() => shapes.map((s) => rng.normalArray(s.reduce((a, b) => a * b, 1))));
  const train = (kind: 'adam' | 'adamw') => (): tf.Tensor[] => {
    const vars = shapes.map((s, i) => tf.variable(tf.tensor(init[i], s)));
    const named = vars.map((v, i): [string, tf.Variable] => [`p${i}`, v]);
    const adam = new Adam(named, { lr: 0.01, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1, kind });
    const ema = new Ema(named, 0.9);
    const norms: number[] = [];
    for (const g of gradSteps) {
      const grads = new Map(g.map((v, i): [string, tf.Tensor] => [`p${i}`, tf.tensor(v, shapes[i])]));
      norms.push(clipGradNorm(grads, 2));
      adam.apply(grads, 0.01);
      ema.update();
      tf.dispose([...grads.values()]);
    }
    const state = [...adam.stateTensors('').values()].map((a) => tf.tensor(a.data, a.shape));
    const out = [...vars.map((v) => v.clone()), ...[...ema.shadow.values()].map((v) => v.clone()), ...state, tf.tensor(norms)];
    adam.dispose();
    ema.dispose();
    tf.dispose(vars);
    return out;
  };
  for (const kind of ['adam', 'adamw'] as const) {
    const before = nativeSnapshot();
    const mine = await kernelsRun(() => outputsOn(NATIVE_BACKEND, train(kind)), seen);
    const after = nativeSnapshot();
    assert.deepEqual(after, before, `${kind}: leaked`);
    const ref = await outputsOn('cpu', train(kind));
    assert.equal(compareOutputs(mine, ref, 2e-6), '', kind);
  }
  for (const k of ['LvdmAdamStep', 'LvdmEmaUpdate', 'LvdmSumSquares']) assert.ok(seen.has(k), `${k} did not run`);
});

test('the fused AdaGN kernel names a bad group count', async () => {
  await assert.rejects(
    outputsOn(NATIVE_BACKEND, () => adaptiveGroupNorm(tf.ones([1, 2, 6]), { groups: 4, eps: 1e-5, gamma: tf.ones([6]), beta: tf.zeros([6]) })),
    /LvdmAdaGroupNorm \(libtorch backend\): AdaGroupNorm: 6 channels not divisible by 4 groups/,
  );
});

test('every registered native kernel was compared with cpu above', () => {
  const untested = NATIVE_KERNEL_NAMES.filter((k) => !seen.has(k));
  assert.deepEqual(untested, [], `kernels never run in the comparisons: ${untested.join(', ')}`);
});

test('a kernel the backend lacks is an error that names it', async () => {
  await assert.rejects(async () => {
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    try {
      tf.topk(x, 1).values.dispose();
    } finally {
      x.dispose();
    }
  }, /Kernel 'TopK' not registered for backend 'libtorch'/);
});
