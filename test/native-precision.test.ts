// Mixed precision on the libtorch backend (lib/backend/precision.ts): with bf16 on, convolutions
// round their operands to bfloat16 and return float32. Checked against an independent reference
// (the cpu backend's float32 convolution of operands rounded to bfloat16 in JS), against plain
// float32 (close, and not equal: bf16 really ran), for determinism, for what stays float32, and
// for the errors and the training loop's use of `train.precision`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, bf16Units, getPrecision, setPrecision, withPrecision } from '../lib/backend';
import { TrainConfig } from '../lib/config/schema';
import { runTraining, trainLoopOptions, type Trainer } from '../lib/train/loop';
import { Rng } from '../lib/nn/rng';
import { outputsOn, setupNative, worstDiff, nativeSnapshot, type Outputs } from './native-helpers';

before(setupNative);

/** x rounded to the nearest bfloat16 (ties to even), as float32: the cast oneDNN's bf16 path makes. */
function toBf16(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  const u = new Uint32Array(out.buffer);
  out.set(x);
  for (let i = 0; i < u.length; i++) {
    const b = u[i];
    u[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
  }
  return out;
}

type F = (...xs: tf.Tensor[]) => tf.Tensor;

interface Case {
  name: string;
  shapes: number[][];
  f: F;
}

const CASES: Case[] = [
  { name: 'conv2d 3x3 same', shapes: [[2, 9, 7, 24], [3, 3, 24, 16]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same') },
  { name: 'conv2d stride 2 same (asymmetric padding)', shapes: [[2, 8, 8, 16], [3, 3, 16, 8]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same') },
  {
    name: 'fused conv2d with bias',
    shapes: [[2, 6, 6, 32], [3, 3, 32, 24], [24]],
    f: (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, bias: b, strides: 1, pad: 'same' }),
  },
  { name: 'conv3d 3x3x3 same', shapes: [[1, 4, 6, 6, 16], [3, 3, 3, 16, 8]], f: (x, w) => tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, 1, 'same') },
];

function data(c: Case, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return c.shapes.map((s) => rng.normalArray(s.reduce((a, b) => a * b, 1)));
}

/** The case's output and the gradients of sum(r * f) w.r.t. every input. */
function withGrads(c: Case, d: Float32Array[]): tf.Tensor[] {
  const xs = c.shapes.map((s, i) => tf.tensor(d[i], s));
  const y = c.f(...xs);
  const r = tf.tensor(new Rng(99).normalArray(y.size), y.shape);
  return [y, ...tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(c.f(...a), r)) as tf.Scalar)(xs)];
}

async function onNative(p: 'fp32' | 'bf16', fn: () => tf.Tensor | tf.Tensor[]): Promise<Outputs> {
  const prev = setPrecision(p);
  try {
    return await outputsOn(NATIVE_BACKEND, fn);
  } finally {
    setPrecision(prev);
  }
}

/** bf16 runs only on CPUs with bf16 instructions (elsewhere setPrecision refuses it, naming them). */
const NO_BF16 = bf16Units().length === 0 ? 'this CPU has no amx_bf16 / avx512_bf16' : false;

test('bf16 convolutions equal float32 convolutions of bf16-rounded operands, up to the bf16 output', { skip: NO_BF16 }, async () => {
  for (const [k, c] of CASES.entries()) {
    const d = data(c, 500 + k);
    const before = nativeSnapshot();
    const mine = await onNative('bf16', () => c.f(...c.shapes.map((s, i) => tf.tensor(d[i], s))));
    assert.deepEqual(nativeSnapshot(), before, `${c.name}: leaked`);
    assert.equal(mine.dtypes[0], 'float32', c.name);
    const rounded = await outputsOn('cpu', () => c.f(...c.shapes.map((s, i) => tf.tensor(toBf16(d[i]), s))));
    const plain = await outputsOn('cpu', () => c.f(...c.shapes.map((s, i) => tf.tensor(d[i], s))));
    // The result is rounded to bf16 once (half an ulp: 2^-9 of |y|); summation order adds a little.
    const vsRounded = worstDiff(mine.values[0], rounded.values[0]);
    const vsPlain = worstDiff(mine.values[0], plain.values[0]);
    assert.ok(vsRounded < 4e-3, `${c.name}: ${vsRounded} from the float32 convolution of rounded operands`);
    assert.ok(vsPlain > 1e-4 && vsPlain < 2e-2, `${c.name}: ${vsPlain} from float32 (expected bf16 rounding, not exact and not far)`);
    // Output rounding is the only other error: every element within 2^-8 of |y_rounded| + a small floor.
    const m = Math.max(...rounded.values[0].map(Math.abs));
    for (let i = 0; i < mine.values[0].length; i++) {
      const e = Math.abs(mine.values[0][i] - rounded.values[0][i]);
      assert.ok(e <= Math.abs(rounded.values[0][i]) / 256 + 1e-3 * m, `${c.name}: element ${i}: ${mine.values[0][i]} vs ${rounded.values[0][i]}`);
    }
  }
});

test('bf16 convolution gradients stay within bf16 rounding of float32, and repeat exactly', { skip: NO_BF16 }, async () => {
  for (const [k, c] of CASES.entries()) {
    const d = data(c, 600 + k);
    const a = await onNative('bf16', () => withGrads(c, d));
    const b = await onNative('bf16', () => withGrads(c, d));
    const ref = await outputsOn('cpu', () => withGrads(c, d));
    const f32 = await onNative('fp32', () => withGrads(c, d));
    for (let i = 0; i < ref.values.length; i++) {
      assert.deepEqual(a.values[i], b.values[i], `${c.name}: output ${i} differs between two bf16 runs`);
      assert.equal(a.dtypes[i], 'float32');
      const e = worstDiff(a.values[i], ref.values[i]);
      assert.ok(e < 2e-2, `${c.name}: output ${i}: ${e} from cpu float32`);
      assert.ok(worstDiff(f32.values[i], ref.values[i]) < 1e-5, `${c.name}: fp32 output ${i} after bf16 runs`);
    }
    assert.ok(worstDiff(a.values[1], ref.values[1]) > 1e-5, `${c.name}: the input gradient is exactly float32's: bf16 did not run`);
  }
});

test('with bf16 on, matrix products and everything else stay float32 (bit-identical)', { skip: NO_BF16 }, async () => {
  const rng = new Rng(7);
  const a = rng.normalArray(64 * 48);
  const b = rng.normalArray(48 * 40);
  const f = () => tf.tanh(tf.add(tf.matMul(tf.tensor2d(a, [64, 48]), tf.tensor2d(b, [48, 40])), 0.5));
  const hi = await onNative('fp32', f);
  const lo = await onNative('bf16', f);
  assert.deepEqual(lo.values, hi.values);
});

test('precision: errors name the origin and what is expected; withPrecision restores, also on errors', async () => {
  assert.equal(getPrecision(), 'fp32');
  assert.throws(() => setPrecision('fp16' as 'bf16', 'train.precision'), /train\.precision: expected one of fp32\|bf16, got 'fp16'/);
  await tf.setBackend('cpu');
  try {
    assert.throws(() => setPrecision('bf16', 'lvdm: train.precision'), /lvdm: train\.precision: precision 'bf16' needs the libtorch backend \(active: cpu\); use precision 'fp32'/);
    assert.equal(getPrecision(), 'fp32');
  } finally {
    await tf.setBackend(NATIVE_BACKEND);
  }
  await assert.rejects(
    withPrecision('bf16', async () => {
      assert.equal(getPrecision(), 'bf16');
      throw new Error('inside');
    }),
    /inside/,
  );
  assert.equal(getPrecision(), 'fp32');
});

test('train.precision: validated by the schema, applied to every training step, restored after the loop', { skip: NO_BF16 }, async () => {
  const bad = TrainConfig.safeParse({ steps: 2, batch_size: 1, precision: 'fp16' });
  assert.equal(bad.success, false);
  assert.match(JSON.stringify(bad.error?.issues), /"path":\["precision"\]/);
  const train = TrainConfig.parse({ steps: 3, batch_size: 1, precision: 'bf16', ckpt_every: 10 });
  const seenPrecision: string[] = [];
  const trainer: Trainer = {
    kind: 'precision-probe',
    async trainStep() {
      seenPrecision.push(getPrecision());
      return { loss: 1 };
    },
    checkpointTensors: () => new Map(),
    checkpointState: () => ({}),
    restore: () => undefined,
  } as unknown as Trainer;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-precision-'));
  try {
    await runTraining(trainer, trainLoopOptions(train, { outDir: path.join(dir, 'run'), config: {}, progress: false }, 'probe'));
    assert.deepEqual(seenPrecision, ['bf16', 'bf16', 'bf16']);
    assert.equal(getPrecision(), 'fp32');
    await tf.setBackend('cpu');
    try {
      await assert.rejects(
        runTraining(trainer, trainLoopOptions(train, { outDir: path.join(dir, 'run-cpu'), config: {}, progress: false }, 'lvdm')),
        /lvdm: train\.precision: precision 'bf16' needs the libtorch backend \(active: cpu\)/,
      );
    } finally {
      await tf.setBackend(NATIVE_BACKEND);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
