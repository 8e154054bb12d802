import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Lpips, LpipsNet, LPIPS_TRUNKS, lpipsTapSizes, lpipsTensorSpecs, minInputSize } from '../lib/autoencoder/lpips';
import { saveSafetensors } from '../lib/io/safetensors';
import { writeNpz } from '../lib/io/npy';
import { hashUniformF32 } from '../metrics/fixtures/hash';

/** Produced by lib/autoencoder/fixtures/make_lpips_fixture.py (numpy float64 reference). */
interface Fixture {
  shape: [number, number, number, number];
  seeds: { x: number; y: number; noise: number };
  noise_range: number;
  nets: Record<LpipsNet, { d_xy: number[]; d_xy_layers: number[][]; d_x_near: number[] }>;
  grad: {
    shape: [number, number, number, number];
    seeds: { x: number; y: number };
    h: number;
    nets: Record<LpipsNet, { kind: 'hash' | 'pixel'; key: number; derivative: number }[]>;
  };
}
const fixture = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'lib', 'autoencoder', 'fixtures', 'lpips_fixture.json'), 'utf8'),
) as Fixture;

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

/** The fixture script's weights: conv j weight seed 2j+1 U(±sqrt(6/fan_in)), bias 2j+2 U(±0.05), head k seed 100+k U(0, 0.2). */
function syntheticWeights(net: LpipsNet, aliasNames = false): Weights {
  const w: Weights = new Map();
  let j = 0;
  let slice = 1;
  for (const op of LPIPS_TRUNKS[net]) {
    if (op.kind === 'tap') slice++;
    if (op.kind !== 'conv') continue;
    const b = Math.sqrt(6 / (op.cin * op.kernel * op.kernel));
    const prefix = aliasNames ? `net.slice${slice}.${op.index}` : `net.features.${op.index}`;
    w.set(`${prefix}.weight`, { shape: [op.cout, op.cin, op.kernel, op.kernel], data: hashUniformF32(op.cout * op.cin * op.kernel * op.kernel, 2 * j + 1, -b, b) });
    w.set(`${prefix}.bias`, { shape: [op.cout], data: hashUniformF32(op.cout, 2 * j + 2, -0.05, 0.05) });
    j++;
  }
  for (const spec of lpipsTensorSpecs(net)) {
    if (!spec.name.startsWith('lin')) continue;
    const k = Number(spec.name.slice(3, spec.name.indexOf('.')));
    const c = spec.torchShape[1];
    w.set(spec.name, { shape: [1, c, 1, 1], data: hashUniformF32(c, 100 + k, 0, 0.2) });
  }
  return w;
}

let dir = '';
const files: Partial<Record<LpipsNet, string>> = {};
const models: Partial<Record<LpipsNet, Lpips>> = {};
const weights: Partial<Record<LpipsNet, Weights>> = {};

before(async () => {
  await initBackend({ quiet: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpips-test-'));
  for (const net of ['vgg', 'alex'] as LpipsNet[]) {
    weights[net] = syntheticWeights(net);
    files[net] = path.join(dir, `lpips_${net}.safetensors`);
    saveSafetensors(files[net]!, weights[net]!);
    models[net] = Lpips.load(files[net]!, net);
  }
});

after(() => {
  for (const m of Object.values(models)) m?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function fixtureInputs(): { x: tf.Tensor4D; y: tf.Tensor4D; near: tf.Tensor4D } {
  const shape = fixture.shape;
  const size = shape.reduce((a, b) => a * b, 1);
  const xd = hashUniformF32(size, fixture.seeds.x, -1, 1);
  const nd = hashUniformF32(size, fixture.seeds.noise, -fixture.noise_range, fixture.noise_range);
  const near = Float32Array.from(xd, (v, i) => v + nd[i]); // float64 sum, float32 cast: as the script
  return { x: tf.tensor4d(xd, shape), y: tf.tensor4d(hashUniformF32(size, fixture.seeds.y, -1, 1), shape), near: tf.tensor4d(near, shape) };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= rtol * Math.abs(expected[i]) + 1e-9, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (rel err ${err / Math.abs(expected[i])})`);
  }
}

test('every tensor is loaded with the tfjs layout, frozen, in its own store', () => {
  for (const net of ['vgg', 'alex'] as LpipsNet[]) {
    const m = models[net]!;
    const specs = lpipsTensorSpecs(net);
    assert.equal(specs.length, net === 'vgg' ? 13 * 2 + 5 : 5 * 2 + 5);
    assert.deepEqual(m.store.names().sort(), specs.map((s) => s.name).sort());
    assert.equal(m.store.trainable().length, 0, 'LPIPS weights must not be trainable');
    for (const spec of specs) {
      const v = m.store.get(spec.name);
      const t = spec.torchShape;
      const want = t.length === 4 && spec.name.startsWith('net.') ? [t[2], t[3], t[1], t[0]] : t.length === 4 ? [t[1]] : t;
      assert.deepEqual(v.shape, want, `${net} ${spec.name}`);
    }
    // Transpose check: tfjs [kh, kw, Ci, Co][y, x, i, o] == torch [Co, Ci, kh, kw][o, i, y, x].
    const first = LPIPS_TRUNKS[net][0];
    assert.ok(first.kind === 'conv');
    const name = `net.features.${first.index}.weight`;
    const src = weights[net]!.get(name)!;
    const got = m.store.get(name).dataSync();
    const [co, ci, kh, kw] = src.shape;
    for (const [o, i, y, x] of [[0, 0, 0, 0], [co - 1, 1, 2, 1], [5, 2, kh - 1, kw - 1], [co - 2, 0, 1, kw - 2]])
      assert.equal(got[((y * kw + x) * ci + i) * co + o], src.data[((o * ci + i) * kh + y) * kw + x], `${net} ${name}[${o},${i},${y},${x}]`);
  }
});

test('distances match the numpy reference (fixture) for VGG16 and AlexNet', () => {
  const { x, y, near } = fixtureInputs();
  const before = tf.memory().numTensors;
  for (const net of ['vgg', 'alex'] as LpipsNet[]) {
    const ref = fixture.nets[net];
    const d = models[net]!.distance(x, y);
    assert.deepEqual(d.shape, [fixture.shape[0]]);
    assertClose(d.dataSync(), ref.d_xy, 1e-4, `${net} d(x, y)`);
    d.dispose();
    const layers = models[net]!.layerDistances(x, y);
    assert.equal(layers.length, 5);
    layers.forEach((l, k) => assertClose(l.dataSync(), ref.d_xy_layers[k], 1e-4, `${net} layer ${k}`));
    tf.dispose(layers);
    const dn = models[net]!.distance(x, near);
    assertClose(dn.dataSync(), ref.d_x_near, 1e-3, `${net} d(x, x + noise)`);
    dn.dispose();
  }
  // videos: [B, T, H, W, 3] -> [B, T], frames folded into the batch
  const xv = tf.reshape(x, [1, 2, 32, 32, 3]) as tf.Tensor5D;
  const yv = tf.reshape(y, [1, 2, 32, 32, 3]) as tf.Tensor5D;
  const v = models.alex!.videoDistance(xv, yv);
  assert.deepEqual(v.shape, [1, 2]);
  assertClose(v.dataSync(), fixture.nets.alex.d_xy, 1e-4, 'alex videoDistance');
  tf.dispose([v, xv, yv]);
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  tf.dispose([x, y, near]);
});

test("lpips' own state_dict names (net.slice<k>.<i>.*) load to the same model", () => {
  const file = path.join(dir, 'alias_alex.safetensors');
  saveSafetensors(file, syntheticWeights('alex', true));
  const before = tf.memory().numTensors;
  const m = Lpips.load(file, 'alex');
  const { x, y, near } = fixtureInputs();
  const d = m.distance(x, y);
  assertClose(d.dataSync(), fixture.nets.alex.d_xy, 1e-4, 'alias alex d(x, y)');
  tf.dispose([d, x, y, near]);
  m.dispose();
  assert.equal(tf.memory().numTensors, before, 'load + dispose frees every weight');
});

test('.npz weights (float32 or float64 arrays, as np.savez writes them) load to the same model', () => {
  const { x, y, near } = fixtureInputs();
  for (const wide of [false, true]) {
    const file = path.join(dir, `alex_${wide ? 'f64' : 'f32'}.npz`);
    const arrays = new Map([...syntheticWeights('alex')].map(([k, v]) => [k, { shape: v.shape, data: wide ? Float64Array.from(v.data) : v.data }]));
    writeNpz(file, arrays);
    const m = Lpips.load(file, 'alex');
    const d = m.distance(x, y);
    assertClose(d.dataSync(), fixture.nets.alex.d_xy, 1e-4, `npz (${wide ? 'float64' : 'float32'}) alex d(x, y)`);
    d.dispose();
    m.dispose();
  }
  const bad = path.join(dir, 'int.npz');
  const arrays = new Map<string, { shape: number[]; data: Float32Array | Int32Array }>(syntheticWeights('alex'));
  arrays.set('net.features.0.bias', { shape: [64], data: new Int32Array(64) });
  writeNpz(bad, arrays);
  assert.throws(() => Lpips.load(bad, 'alex'), (e: Error) => e.message.includes(bad) && e.message.includes("'net.features.0.bias'") && e.message.includes('int32'));
  tf.dispose([x, y, near]);
});

test('d(x, x) = 0, symmetry, positivity', () => {
  const { x, y, near } = fixtureInputs();
  for (const net of ['vgg', 'alex'] as LpipsNet[]) {
    const m = models[net]!;
    const dxx = m.distance(x, x);
    for (const v of dxx.dataSync()) assert.ok(Math.abs(v) < 1e-7, `${net} d(x, x) = ${v}`);
    const dxyT = m.distance(x, y);
    const dyxT = m.distance(y, x);
    const dxy = dxyT.dataSync();
    const dyx = dyxT.dataSync();
    tf.dispose([dxyT, dyxT]);
    assertClose(dyx, dxy, 1e-5, `${net} d(y, x) vs d(x, y)`);
    for (const v of dxy) assert.ok(v > 0);
    tf.dispose(dxx);
  }
  tf.dispose([x, y, near]);
});

test('gradient w.r.t. x matches float64 finite differences of the numpy reference', () => {
  const g64 = fixture.grad;
  const shape = g64.shape;
  const n = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor4d(hashUniformF32(n, g64.seeds.x, -1, 1), shape);
  const y = tf.tensor4d(hashUniformF32(n, g64.seeds.y, -1, 1), shape);
  for (const net of ['vgg', 'alex'] as LpipsNet[]) {
    const m = models[net]!;
    const before = tf.memory().numTensors;
    const g = tf.grad((xx: tf.Tensor) => tf.sum(m.distance(xx as tf.Tensor4D, y)))(x);
    assert.equal(tf.memory().numTensors, before + 1, 'grad leaks nothing but its result');
    const gd = g.dataSync();
    g.dispose();
    assert.ok(gd.every(Number.isFinite), `${net}: finite gradient`);
    for (const row of g64.nets[net]) {
      let analytic = 0;
      if (row.kind === 'pixel') analytic = gd[row.key];
      else {
        const v = hashUniformF32(n, row.key, -1, 1);
        for (let i = 0; i < n; i++) analytic += gd[i] * v[i];
      }
      const err = Math.abs(analytic - row.derivative);
      assert.ok(err <= 2e-3 * Math.abs(row.derivative) + 1e-8, `${net} ${row.kind} ${row.key}: tfjs ${analytic} vs float64 FD ${row.derivative}`);
    }
  }
  tf.dispose([x, y]);
});

test('frames too small for the trunk are rejected with the minimum size', () => {
  assert.equal(minInputSize('vgg'), 16);
  assert.equal(minInputSize('alex'), 31);
  assert.deepEqual(lpipsTapSizes('alex', 32), [7, 3, 1, 1, 1]);
  assert.deepEqual(lpipsTapSizes('vgg', 32), [32, 16, 8, 4, 2]);
  const a = tf.zeros([1, 30, 30, 3]) as tf.Tensor4D;
  assert.throws(() => models.alex!.distance(a, a), /at least 31x31/);
  tf.dispose(a);
});

test('missing or wrong-shaped tensors are errors naming the file and tensor', () => {
  const w = syntheticWeights('alex');
  w.delete('net.features.3.bias');
  const missing = path.join(dir, 'missing.safetensors');
  saveSafetensors(missing, w);
  assert.throws(() => Lpips.load(missing, 'alex'), (e: Error) => e.message.includes(missing) && e.message.includes("'net.features.3.bias'"));

  const w2 = syntheticWeights('alex');
  w2.set('lin2.model.1.weight', { shape: [1, 383, 1, 1], data: new Float32Array(383) });
  const bad = path.join(dir, 'badshape.safetensors');
  saveSafetensors(bad, w2);
  assert.throws(
    () => Lpips.load(bad, 'alex'),
    (e: Error) => e.message.includes(bad) && e.message.includes("'lin2.model.1.weight'") && e.message.includes('[1,383,1,1]') && e.message.includes('[1,384,1,1]'),
  );

  // Alex weights are not VGG weights.
  assert.throws(() => Lpips.load(files.alex!, 'vgg'), (e: Error) => e.message.includes(files.alex!) && /net\.features\.\d+\.weight/.test(e.message));
  assert.throws(() => Lpips.load(path.join(dir, 'nope.safetensors'), 'vgg'), /not found/);
  assert.throws(() => Lpips.load(path.join(dir, 'weights.pth'), 'vgg'), /weights\.pth.*unsupported/);
  const before = tf.memory().numTensors;
  assert.throws(() => Lpips.load(bad, 'alex'));
  assert.equal(tf.memory().numTensors, before, 'a failed load frees what it created');
});

test('mismatched inputs are rejected', () => {
  const a = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
  const b = tf.zeros([1, 32, 31, 3]) as tf.Tensor4D;
  assert.throws(() => models.alex!.distance(a, b), /equal shape/);
  tf.dispose([a, b]);
});
