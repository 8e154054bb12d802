import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { decodeNpz, encodeNpz } from '../lib/io/npy';
import { decodeSafetensors, encodeSafetensors, saveSafetensors } from '../lib/io/safetensors';
import { I3DExtractor } from '../metrics/extract';
import { I3D } from '../metrics/i3d/model';
import { i3dEndpointShapes, i3dUnits, samePad } from '../metrics/i3d/spec';
import { I3DWeights, RawTensor, UnitWeights, contentDigest, i3dTensors, i3dWeightsFromTensors, loadI3DWeights } from '../metrics/i3d/weights';
import { preprocessClip } from '../metrics/preprocess';
import { FIXTURES, lcg } from './metrics-helpers';

/** fvd-kvd.md section 6: (T, H, W, C) after each endpoint for a 16 x 224 x 224 input. */
const TABLE: [string, number[]][] = [
  ['Conv3d_1a_7x7', [8, 112, 112, 64]],
  ['MaxPool3d_2a_3x3', [8, 56, 56, 64]],
  ['Conv3d_2b_1x1', [8, 56, 56, 64]],
  ['Conv3d_2c_3x3', [8, 56, 56, 192]],
  ['MaxPool3d_3a_3x3', [8, 28, 28, 192]],
  ['Mixed_3b', [8, 28, 28, 256]],
  ['Mixed_3c', [8, 28, 28, 480]],
  ['MaxPool3d_4a_3x3', [4, 14, 14, 480]],
  ['Mixed_4b', [4, 14, 14, 512]],
  ['Mixed_4c', [4, 14, 14, 512]],
  ['Mixed_4d', [4, 14, 14, 512]],
  ['Mixed_4e', [4, 14, 14, 528]],
  ['Mixed_4f', [4, 14, 14, 832]],
  ['MaxPool3d_5a_2x2', [2, 7, 7, 832]],
  ['Mixed_5b', [2, 7, 7, 832]],
  ['Mixed_5c', [2, 7, 7, 1024]],
  ['Logits', [1, 1, 1, 400]],
];

interface I3DRef {
  weights_seed: number;
  input_seed: number;
  frames: number;
  eps: number;
  endpoints: { name: string; shape: number[]; sum: number }[];
  logits: number[];
}

/** The weights of make_i3d_fixture.py: one generator stream consumed in canonical unit order. */
function streamWeights(seed: number): I3DWeights {
  const units = i3dUnits(400);
  let total = 0;
  for (const u of units) total += u.kernel[0] * u.kernel[1] * u.kernel[2] * u.cin * u.cout + (u.bn ? 3 * u.cout : u.cout);
  const v = lcg(seed, total);
  let pos = 0;
  const take = (n: number, f: (x: number) => number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = f(v[pos + i]);
    pos += n;
    return out;
  };
  const map = new Map<string, UnitWeights>();
  for (const u of units) {
    const fanIn = u.cin * u.kernel[0] * u.kernel[1] * u.kernel[2];
    const scale = Math.sqrt(24 / fanIn);
    const w = take(fanIn * u.cout, (x) => x * scale);
    if (u.bn) map.set(u.name, { w, beta: take(u.cout, (x) => x * 0.2), mean: take(u.cout, (x) => x * 0.2), variance: take(u.cout, (x) => x + 1) });
    else map.set(u.name, { w, bias: take(u.cout, (x) => x * 0.2) });
  }
  assert.equal(pos, total);
  return { units: map, numClasses: 400, layout: 'tfhub', source: `<stream ${seed}>`, contentSha256: contentDigest(map, 400) };
}

let cached: I3DWeights | null = null;
function weights(): I3DWeights {
  if (!cached) cached = streamWeights(12345);
  return cached;
}

test('TF SAME padding and the analytic endpoint shapes reproduce the layer table (16 x 224 x 224)', () => {
  assert.deepEqual(samePad(16, 7, 2), [2, 3]);
  assert.deepEqual(samePad(112, 3, 2), [0, 1]);
  assert.deepEqual(samePad(7, 3, 2), [1, 1]);
  assert.deepEqual(samePad(8, 2, 2), [0, 0]);
  const got = i3dEndpointShapes(16, 224, 224).map((e) => [e.name, e.shape]);
  assert.deepEqual(got, TABLE);
  assert.throws(() => i3dEndpointShapes(16, 64, 64), /too small/);
});

test('I3D forward at 16 x 224 x 224: every endpoint has the table shape; output [B, 400]; no leaked tensors', async () => {
  await initBackend({ quiet: true });
  const model = new I3D(weights());
  const before = tf.memory().numTensors;
  const x = tf.randomUniform([1, 16, 224, 224, 3], -1, 1, 'float32', 3) as tf.Tensor5D;
  const seen: [string, number[]][] = [];
  const y = model.forward(x, (name, shape) => seen.push([name, shape.slice(1)]));
  assert.deepEqual(seen, TABLE);
  assert.deepEqual(y.shape, [1, 400]);
  assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before);
  const nParams = model.numClasses;
  model.dispose();
  assert.equal(nParams, 400);
});

test('I3D logits match an independent numpy float64 forward (explicit BN, -inf max-pool padding), 10 frames', async () => {
  await initBackend({ quiet: true });
  const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'i3d_reference.json'), 'utf8')) as I3DRef;
  const model = new I3D(weights(), { eps: ref.eps });
  const n = ref.frames * 224 * 224 * 3;
  const xin = Float32Array.from(lcg(ref.input_seed, n), (v) => v * 2);
  const x = tf.tensor5d(xin, [1, ref.frames, 224, 224, 3]);
  const shapes: [string, number[]][] = [];
  const y = model.forward(x, (name, shape) => shapes.push([name, shape.slice(1)]));
  const got = y.dataSync();
  tf.dispose([x, y]);
  model.dispose();
  assert.deepEqual(
    shapes,
    ref.endpoints.map((e) => [e.name, e.shape]),
  );
  const scale = Math.max(...ref.logits.map(Math.abs));
  let maxDiff = 0;
  for (let i = 0; i < 400; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref.logits[i]));
  assert.ok(maxDiff < 2e-5 * scale, `max |logit diff| ${maxDiff} (scale ${scale})`);
  if (process.env.LVDM_DEBUG) console.log(`i3d vs numpy: max diff ${maxDiff}, scale ${scale}`);
  // A wrong BN epsilon is visible at this precision.
  const m5 = new I3D(weights(), { eps: 1e-5 });
  const x2 = tf.tensor5d(xin, [1, ref.frames, 224, 224, 3]);
  const y5 = m5.forward(x2);
  let diff5 = 0;
  const g5 = y5.dataSync();
  for (let i = 0; i < 400; i++) diff5 = Math.max(diff5, Math.abs(g5[i] - ref.logits[i]));
  tf.dispose([x2, y5]);
  m5.dispose();
  assert.ok(diff5 > 10 * maxDiff, `eps 1e-5 differs (${diff5}) more than float32 noise (${maxDiff})`);
});

function sameTensors(a: I3DWeights, b: I3DWeights): void {
  for (const u of i3dUnits(400)) {
    const x = a.units.get(u.name)!;
    const y = b.units.get(u.name)!;
    for (const f of ['w', 'beta', 'mean', 'variance', 'bias'] as const) {
      assert.equal(x[f] === undefined, y[f] === undefined, `${u.name}.${f} presence`);
      if (x[f]) assert.ok(Buffer.from(x[f]!.buffer, x[f]!.byteOffset, x[f]!.byteLength).equals(Buffer.from(y[f]!.buffer, y[f]!.byteOffset, y[f]!.byteLength)), `${u.name}.${f}`);
    }
  }
}

function asRaw(m: Map<string, { shape: number[]; data: Float32Array }>): Map<string, RawTensor> {
  return new Map([...m].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
}

test('weight layouts: PyTorch (TATS) and TF-Hub state dicts round-trip every tensor through safetensors and npz', () => {
  const w = weights();
  const pt = i3dTensors(w, 'pytorch', { includeGamma: true });
  assert.ok(pt.has('Conv3d_1a_7x7.conv3d.weight') && pt.has('Mixed_3b.b1a.bn.running_var') && pt.has('logits.conv3d.bias') && pt.has('Mixed_5c.b0.bn.weight'));
  assert.deepEqual(pt.get('Conv3d_1a_7x7.conv3d.weight')!.shape, [64, 3, 7, 7, 7]);
  const tfh = i3dTensors(w, 'tfhub');
  assert.ok(tfh.has('RGB/inception_i3d/Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w'), 'the Mixed_5b typo');
  assert.ok(tfh.has('RGB/inception_i3d/Mixed_5c/Branch_2/Conv3d_0b_3x3/batch_norm/moving_mean'));
  assert.ok(tfh.has('RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b'));
  assert.deepEqual(tfh.get('RGB/inception_i3d/Conv3d_1a_7x7/batch_norm/beta')!.shape, [1, 1, 1, 1, 64]);
  // PyTorch layout via safetensors (bn.weight = 1 as in TATS, plus num_batches_tracked counters).
  const st = new Map<string, { shape: number[]; data: Float32Array | Int32Array }>(pt);
  st.set('Conv3d_1a_7x7.bn.num_batches_tracked', { shape: [], data: Int32Array.from([0]) });
  const fromSt = i3dWeightsFromTensors(decodeSafetensors(encodeSafetensors(st)).tensors, 'pt.safetensors');
  assert.equal(fromSt.layout, 'pytorch');
  sameTensors(w, fromSt);
  // TF-Hub layout via npz, with ':0' suffixes and a 'module/' prefix (hub.Module variable names).
  const tfNames = new Map([...tfh].map(([k, v]) => [`module/${k}:0`, v]));
  const fromNpz = i3dWeightsFromTensors(decodeNpz(encodeNpz(tfNames)), 'tf.npz');
  assert.equal(fromNpz.layout, 'tfhub');
  sameTensors(w, fromNpz);
  // Prefixed PyTorch keys (DataParallel 'module.'), BN vectors as [C] in a TF file.
  const prefixed = new Map([...pt].map(([k, v]) => [`module.${k}`, v]));
  sameTensors(w, i3dWeightsFromTensors(asRaw(prefixed), 'prefixed'));
  const flatBn = new Map([...tfh].map(([k, v]) => [k, k.includes('batch_norm') ? { shape: [v.shape[4]], data: v.data } : v]));
  sameTensors(w, i3dWeightsFromTensors(asRaw(flatBn), 'flat-bn'));
  // Export again from what was read: identical maps, and one content digest for every layout.
  const again = i3dTensors(fromSt, 'pytorch', { includeGamma: true });
  for (const [k, v] of pt) assert.ok(Buffer.from(again.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), k);
  assert.equal(fromSt.contentSha256, w.contentSha256);
  assert.equal(fromNpz.contentSha256, w.contentSha256);
});

test('weight files: missing, wrong-shaped, unexpected and mislabelled tensors are errors naming the tensor', () => {
  const w = weights();
  const pt = asRaw(i3dTensors(w, 'pytorch'));
  const drop = new Map(pt);
  drop.delete('Mixed_4c.b1b.bn.running_var');
  assert.throws(() => i3dWeightsFromTensors(drop, 'a.safetensors'), /a\.safetensors: missing tensor 'Mixed_4c\.b1b\.bn\.running_var'/);
  const bad = new Map(pt);
  bad.set('Mixed_3b.b0.conv3d.weight', { shape: [64, 192, 1, 1], data: new Float32Array(64 * 192) });
  assert.throws(() => i3dWeightsFromTensors(bad, 'b.npz'), /b\.npz: tensor 'Mixed_3b\.b0\.conv3d\.weight' has shape \[64, 192, 1, 1\], expected \[64, 192, 1, 1, 1\]/);
  const extra = new Map(pt);
  extra.set('Mixed_3b.b3a.conv3d.weight', { shape: [1], data: new Float32Array(1) });
  assert.throws(() => i3dWeightsFromTensors(extra, 'c.npz'), /c\.npz: unexpected tensors .*'Mixed_3b\.b3a\.conv3d\.weight'/);
  // The TF-Hub typo is required: a file with the "corrected" name is not the TF-Hub checkpoint.
  const tfh = asRaw(i3dTensors(w, 'tfhub'));
  const fixed = new Map([...tfh].map(([k, v]) => [k.replace('Mixed_5b/Branch_2/Conv3d_0a_3x3', 'Mixed_5b/Branch_2/Conv3d_0b_3x3'), v]));
  assert.throws(() => i3dWeightsFromTensors(fixed, 'd.npz'), /d\.npz: missing tensor 'Mixed_5b\/Branch_2\/Conv3d_0a_3x3\/conv_3d\/w'/);
  const nan = new Map(pt);
  const v = Float32Array.from(pt.get('logits.conv3d.bias')!.data as Float32Array);
  v[3] = NaN;
  nan.set('logits.conv3d.bias', { shape: [400], data: v });
  assert.throws(() => i3dWeightsFromTensors(nan, 'e.npz'), /e\.npz: tensor 'logits\.conv3d\.bias' has a non-finite value at index 3/);
  assert.throws(() => i3dWeightsFromTensors(new Map([['foo', { shape: [1], data: new Float32Array(1) }]]), 'f.npz'), /unrecognised key layout/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-i3d-'));
  assert.throws(() => loadI3DWeights(path.join(dir, 'none.safetensors')), /I3D weight file not found/);
  fs.writeFileSync(path.join(dir, 'w.pt'), 'x');
  assert.throws(() => loadI3DWeights(path.join(dir, 'w.pt')), /export the state dict to \.safetensors or \.npz/);
  fs.rmSync(dir, { recursive: true });
});

test('loadI3DWeights reads a safetensors file and records its SHA-256; I3DExtractor = forward of the preprocessed clip', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-i3d-'));
  const file = path.join(dir, 'i3d.safetensors');
  saveSafetensors(file, i3dTensors(weights(), 'pytorch', { includeGamma: true }));
  const w = loadI3DWeights(file);
  assert.match(w.fileSha256!, /^[0-9a-f]{64}$/);
  assert.equal(w.contentSha256, weights().contentSha256);
  fs.rmSync(dir, { recursive: true });
  const model = new I3D(w);
  const ex = new I3DExtractor(model, { convention: 'half-pixel' }, 1);
  const t = 9;
  const clip = Uint8Array.from({ length: t * 40 * 48 * 3 }, (_, i) => (i * 7919) % 256);
  const before = tf.memory().numTensors;
  const f = await ex.extract(clip, 1, t, 40, 48);
  assert.equal(tf.memory().numTensors, before);
  const x = tf.tensor5d(preprocessClip(clip, t, 40, 48, { convention: 'half-pixel' }), [1, t, 224, 224, 3]);
  const y = model.forward(x);
  const direct = y.dataSync();
  tf.dispose([x, y]);
  assert.equal(f.length, 400);
  for (let i = 0; i < 400; i++) assert.ok(Math.abs(f[i] - direct[i]) < 1e-5 * Math.max(1, Math.abs(direct[i])));
  assert.equal(ex.describe().weights_sha256, w.fileSha256);
  ex.dispose();
});
