import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ParamStore, Scope } from '../lib/nn/params';
import { GroupNorm } from '../lib/nn/layers';
import { Rng } from '../lib/nn/rng';
import { UNetConfig } from '../lib/config/schema';
import {
  REFERENCE_UNET,
  TemporalAttention,
  SpatialAttention,
  UNet3D,
  adaptiveGroupNorm,
  attentionCore,
  referenceUNetConfig,
  unetFlops,
  upsampleNearest2x,
} from '../lib/models/unet3d';
import { adaptiveGroupNormReference } from '../lib/models/unet3d/norm';

const ready = initBackend({ quiet: true });

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function maxAbs(a: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
}

/** Replaces the zero-initialised output projections with random values so every path is live. */
function randomizeZeroInit(store: ParamStore, seed: number, std = 0.2): void {
  const rng = new Rng(seed);
  for (const [name, v] of store.entries()) {
    if (/proj_out|out_layers\.3|^out\.2/.test(name)) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size, 0, std), v.shape)));
  }
}

function tinyConfig(over: Partial<UNetConfig> = {}): UNetConfig {
  return UNetConfig.parse({
    in_channels: 2,
    out_channels: 2,
    model_channels: 8,
    channel_mult: [1, 2],
    num_res_blocks: 1,
    attention_resolutions: [2],
    head_channels: 4,
    temporal_length: 4,
    norm_groups: 4,
    ...over,
  });
}

test('reference UNet: 3,280,708 parameters, LVDM parameter names, zero output at initialisation', async () => {
  await ready;
  const store = new ParamStore(new Rng(0));
  const net = new UNet3D(store, referenceUNetConfig());
  assert.equal(net.numParams(), REFERENCE_UNET.params);
  assert.deepEqual(store.get('input_blocks.3.1.relative_position_k.embeddings_table').shape, [17, 32]);
  assert.deepEqual(store.get('input_blocks.0.0.weight').shape, [3, 3, 5, 64]);
  assert.deepEqual(store.get('input_blocks.2.0.op.weight').shape, [3, 3, 64, 64]);
  assert.deepEqual(store.get('output_blocks.1.2.conv.weight').shape, [3, 3, 128, 128]);
  assert.deepEqual(store.get('output_blocks.0.0.skip_connection.weight').shape, [1, 1, 256, 128]);
  assert.deepEqual(store.get('middle_block.1.qkv_t.weight').shape, [128, 384]);
  assert.deepEqual(store.get('time_embed.2.weight').shape, [256, 256]);
  const f = unetFlops(referenceUNetConfig(), REFERENCE_UNET);
  assert.ok(f.reference > 17e9 && f.reference < 19e9, `GFLOP ${f.reference / 1e9}`);
  // Zero-initialised output conv (LVDM zero_module): the untrained network predicts 0.
  const x = tf.randomNormal([1, 2, 16, 16, 4]) as tf.Tensor5D;
  const mask = tf.zeros([1, 2]);
  const before = tf.memory().numTensors;
  const y = net.apply(x, new Int32Array([10]), { mask });
  assert.deepEqual(y.shape, [1, 2, 16, 16, 4]);
  assert.equal(maxAbs(y), 0);
  tf.dispose(y);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, mask]);
  store.dispose();
});

test('fused adaptive GroupNorm: values and gradients match plain autodiff', async () => {
  await ready;
  const store = new ParamStore(new Rng(1));
  const gn = new GroupNorm(new Scope(store, 'gn'), 4, 12, 1e-5);
  const rng = new Rng(2);
  tf.tidy(() => {
    gn.gamma.assign(tf.tensor(rng.normalArray(12, 1, 0.3)));
    gn.beta.assign(tf.tensor(rng.normalArray(12, 0, 0.3)));
  });
  const x = tf.tensor(rng.normalArray(3 * 5 * 4 * 12, 0.4, 1.7), [3, 5, 4, 12]) as tf.Tensor4D;
  const sc = tf.tensor(rng.normalArray(36, 0, 0.5), [3, 12]) as tf.Tensor2D;
  const sh = tf.tensor(rng.normalArray(36, 0, 0.5), [3, 12]) as tf.Tensor2D;
  const w = tf.tensor(rng.normalArray(x.size), x.shape);
  const before = tf.memory().numTensors;
  for (const withAda of [true, false]) {
    const run = (f: typeof adaptiveGroupNorm): tf.Tensor[] =>
      tf.tidy(() => {
        const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Scalar =>
          tf.sum(tf.mul(f(a, gn, withAda ? (b as tf.Tensor2D) : undefined, withAda ? (c as tf.Tensor2D) : undefined), w));
        const g = withAda ? tf.grads(loss)([x, sc, sh]) : [tf.grad((a: tf.Tensor) => loss(a, sc, sh))(x)];
        const vg = tf.variableGrads(() => loss(x, sc, sh), [gn.gamma, gn.beta]);
        return [f(x, gn, withAda ? sc : undefined, withAda ? sh : undefined), ...g, vg.grads[gn.gamma.name], vg.grads[gn.beta.name], vg.value];
      });
    const ours = run(adaptiveGroupNorm);
    const ref = run(adaptiveGroupNormReference);
    ours.forEach((t, i) => assert.ok(maxAbsDiff(t, ref[i]) < 2e-4 * Math.max(1, maxAbs(ref[i])), `output ${i} (ada ${withAda}): ${maxAbsDiff(t, ref[i])}`));
    tf.dispose([...ours, ...ref]);
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, sc, sh, w]);
  store.dispose();
});

/**
 * Naive float64 temporal attention block (GN over (T, group channels) per position, q/k/v,
 * Shaw relative terms, output projection, residual), written from the formulas.
 * `transposedKeys` adds q_j . w[clip(i - j)] at (i, j) instead (the public code's defect).
 */
function naiveTemporal(att: TemporalAttention, h: Float32Array, shape: number[], frames: number, transposedKeys = false): Float64Array {
  const [n, hh, ww, c] = shape;
  const b = n / frames;
  const heads = att.heads;
  const d = c / heads;
  const L = att.opts.temporalLength;
  const G = att.norm.groups;
  const cg = c / G;
  const gamma = att.norm.gamma.dataSync();
  const beta = att.norm.beta.dataSync();
  const W = att.qkv.weight.dataSync();
  const Wb = att.qkv.bias!.dataSync();
  const P = att.proj.weight.dataSync();
  const Pb = att.proj.bias!.dataSync();
  const K = att.relK!.dataSync();
  const V = att.relV!.dataSync();
  const out = Float64Array.from(h);
  const at = (bb: number, t: number, p: number, ch: number): number => ((bb * frames + t) * hh * ww + p) * c + ch;
  const clip = (v: number): number => Math.max(-L, Math.min(L, v)) + L;
  for (let bb = 0; bb < b; bb++) {
    for (let p = 0; p < hh * ww; p++) {
      const xn: number[][] = Array.from({ length: frames }, () => new Array<number>(c).fill(0));
      for (let g = 0; g < G; g++) {
        let m = 0;
        let q2 = 0;
        for (let t = 0; t < frames; t++) for (let k = g * cg; k < (g + 1) * cg; k++) m += h[at(bb, t, p, k)];
        m /= frames * cg;
        for (let t = 0; t < frames; t++) for (let k = g * cg; k < (g + 1) * cg; k++) q2 += (h[at(bb, t, p, k)] - m) ** 2;
        const r = 1 / Math.sqrt(q2 / (frames * cg) + att.norm.eps);
        for (let t = 0; t < frames; t++) for (let k = g * cg; k < (g + 1) * cg; k++) xn[t][k] = (h[at(bb, t, p, k)] - m) * r * gamma[k] + beta[k];
      }
      const proj = (t: number, o: number): number => {
        let s = Wb[o];
        for (let k = 0; k < c; k++) s += xn[t][k] * W[k * 3 * c + o];
        return s;
      };
      const attnOut: number[][] = Array.from({ length: frames }, () => new Array<number>(c).fill(0));
      for (let hd = 0; hd < heads; hd++) {
        const q = Array.from({ length: frames }, (_, t) => Array.from({ length: d }, (_, e) => proj(t, hd * d + e) / Math.sqrt(d)));
        const kk = Array.from({ length: frames }, (_, t) => Array.from({ length: d }, (_, e) => proj(t, c + hd * d + e)));
        const vv = Array.from({ length: frames }, (_, t) => Array.from({ length: d }, (_, e) => proj(t, 2 * c + hd * d + e)));
        for (let i = 0; i < frames; i++) {
          const logits = Array.from({ length: frames }, (_, j) => {
            let s = 0;
            for (let e = 0; e < d; e++) s += q[i][e] * kk[j][e];
            if (transposedKeys) for (let e = 0; e < d; e++) s += q[j][e] * K[clip(i - j) * d + e];
            else for (let e = 0; e < d; e++) s += q[i][e] * K[clip(j - i) * d + e];
            return s;
          });
          const mx = Math.max(...logits);
          const ex = logits.map((l) => Math.exp(l - mx));
          const z = ex.reduce((a, v) => a + v, 0);
          for (let j = 0; j < frames; j++) {
            const a = ex[j] / z;
            for (let e = 0; e < d; e++) attnOut[i][hd * d + e] += a * (vv[j][e] + V[clip(j - i) * d + e]);
          }
        }
      }
      for (let t = 0; t < frames; t++) {
        for (let o = 0; o < c; o++) {
          let s = Pb[o];
          for (let k = 0; k < c; k++) s += attnOut[t][k] * P[k * c + o];
          out[at(bb, t, p, o)] += s;
        }
      }
    }
  }
  return out;
}

function makeTemporal(seed: number, relative = true): { att: TemporalAttention; store: ParamStore } {
  const store = new ParamStore(new Rng(seed));
  const att = new TemporalAttention(new Scope(store, 'blk'), 8, { heads: 2, normGroups: 4, relativePosition: relative, temporalLength: 2 });
  randomizeZeroInit(store, seed + 100, 0.5);
  tf.tidy(() => {
    // Non-trivial GN affine and larger relative tables so the position terms matter.
    const r = new Rng(seed + 200);
    att.norm.gamma.assign(tf.tensor(r.normalArray(8, 1, 0.3)));
    att.norm.beta.assign(tf.tensor(r.normalArray(8, 0, 0.3)));
    if (att.relK && att.relV) {
      att.relK.assign(tf.tensor(r.normalArray(att.relK.size, 0, 1), att.relK.shape));
      att.relV.assign(tf.tensor(r.normalArray(att.relV.size, 0, 1), att.relV.shape));
    }
  });
  return { att, store };
}

test('temporal attention matches Shaw relative attention; the transposed-key variant does not', async () => {
  await ready;
  const { att, store } = makeTemporal(3);
  const frames = 5; // > L + 1 = 3: distances are clipped
  const shape: [number, number, number, number] = [2 * frames, 2, 3, 8];
  const hv = new Rng(4).normalArray(shape.reduce((a, b) => a * b, 1));
  const h = tf.tensor(hv, shape) as tf.Tensor4D;
  const correct = naiveTemporal(att, hv, shape, frames);
  const transposed = naiveTemporal(att, hv, shape, frames, true);
  const check = (y: tf.Tensor, ref: Float64Array): number => {
    const v = y.dataSync();
    let m = 0;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] - ref[i]));
    return m;
  };
  const before = tf.memory().numTensors;
  const y = att.apply(h, frames);
  assert.ok(check(y, correct) < 1e-4, `Shaw: ${check(y, correct)}`);
  att.keyOrientation = 'transposed';
  const yT = att.apply(h, frames);
  // The orientation check fails for the public code's transposed key term...
  assert.ok(check(yT, correct) > 1e-2, `transposed variant passed the Shaw check: ${check(yT, correct)}`);
  // ...which is exactly the transposed formula.
  assert.ok(check(yT, transposed) < 1e-4);
  att.keyOrientation = 'shaw';
  tf.dispose([y, yT]);
  assert.equal(tf.memory().numTensors, before);
  h.dispose();
  store.dispose();
});

test('relative attention is shift-equivariant; absolute positions are not; permutations change it', async () => {
  await ready;
  const rng = new Rng(5);
  const d = 4;
  const T = 5;
  const L = 3;
  const pad = 3;
  const key = tf.tensor2d(rng.normalArray((2 * L + 1) * d), [2 * L + 1, d]);
  const value = tf.tensor2d(rng.normalArray((2 * L + 1) * d), [2 * L + 1, d]);
  const rel = { key, value, maxDistance: L };
  const q = tf.tensor3d(rng.normalArray(2 * T * d), [2, T, d]);
  const k = tf.tensor3d(rng.normalArray(2 * T * d), [2, T, d]);
  const v = tf.tensor3d(rng.normalArray(2 * T * d), [2, T, d]);
  const kT = (x: tf.Tensor3D): tf.Tensor3D => tf.transpose(x, [0, 2, 1]);
  // Place the same frames at offset `pad` inside a longer sequence whose other frames are masked out as keys.
  const S = T + 2 * pad;
  const embed = (x: tf.Tensor3D): tf.Tensor3D => tf.pad(x, [[0, 0], [pad, pad], [0, 0]]) as tf.Tensor3D;
  const biasArr = new Float32Array(S * S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) if (j < pad || j >= pad + T) biasArr[i * S + j] = -1e9;
  const bias = tf.tensor2d(biasArr, [S, S]);
  const unshifted = attentionCore(q, kT(k), v, rel);
  const shifted = tf.slice(attentionCore(embed(q), kT(embed(k)), embed(v), rel, bias), [0, pad, 0], [2, T, d]);
  assert.ok(maxAbsDiff(unshifted, shifted) < 1e-5, `relative: ${maxAbsDiff(unshifted, shifted)}`);
  // With absolute position embeddings added to q and k the same shift changes the output.
  const absPos = (len: number, off: number): tf.Tensor3D => tf.tensor3d(Array.from({ length: len * d }, (_, i) => Math.sin(Math.floor(i / d) + off + (i % d))), [1, len, d]);
  const absU = attentionCore(tf.add(q, absPos(T, 0)), kT(tf.add(k, absPos(T, 0))), v, rel);
  const absS = tf.slice(attentionCore(tf.add(embed(q), absPos(S, 0)), kT(tf.add(embed(k), absPos(S, 0))), embed(v), rel, bias), [0, pad, 0], [2, T, d]);
  assert.ok(maxAbsDiff(absU, absS) > 1e-2);
  // Permuting the frames: equivariant without positions, not with relative positions.
  const perm = [3, 0, 4, 1, 2];
  const P = (x: tf.Tensor3D): tf.Tensor3D => tf.gather(x, perm, 1) as tf.Tensor3D;
  const noPos = maxAbsDiff(P(attentionCore(q, kT(k), v)), attentionCore(P(q), kT(P(k)), P(v)));
  const withPos = maxAbsDiff(P(attentionCore(q, kT(k), v, rel)), attentionCore(P(q), kT(P(k)), P(v), rel));
  assert.ok(noPos < 1e-5, `no positions: ${noPos}`);
  assert.ok(withPos > 1e-2, `relative positions: ${withPos}`);
});

test('temporal attention block: permutation-equivariant only without relative positions', async () => {
  await ready;
  const frames = 4;
  const shape: [number, number, number, number] = [frames, 2, 2, 8];
  const h = tf.tensor(new Rng(6).normalArray(4 * 2 * 2 * 8), shape) as tf.Tensor4D;
  const perm = [2, 0, 3, 1];
  const P = (x: tf.Tensor4D): tf.Tensor4D => tf.gather(x, perm, 0) as tf.Tensor4D;
  for (const relative of [false, true]) {
    const { att, store } = makeTemporal(7, relative);
    const diff = maxAbsDiff(P(att.apply(h, frames)), att.apply(P(h), frames));
    if (relative) assert.ok(diff > 1e-2, `relative: ${diff}`);
    else assert.ok(diff < 1e-5, `no positions: ${diff}`);
    store.dispose();
  }
  // Spatial attention has no positional information: equivariant to permuting positions.
  const store = new ParamStore(new Rng(8));
  const sp = new SpatialAttention(new Scope(store, 's'), 8, { heads: 2, normGroups: 4 });
  randomizeZeroInit(store, 9, 0.5);
  const x = tf.tensor(new Rng(10).normalArray(2 * 3 * 3 * 8), [2, 3, 3, 8]) as tf.Tensor4D;
  const order = [4, 0, 8, 2, 6, 1, 3, 7, 5];
  const Q = (y: tf.Tensor4D): tf.Tensor4D => tf.reshape(tf.gather(tf.reshape(y, [2, 9, 8]), order, 1), [2, 3, 3, 8]) as tf.Tensor4D;
  assert.ok(maxAbsDiff(Q(sp.apply(x)), sp.apply(Q(x))) < 1e-5);
  assert.ok(maxAbsDiff(sp.apply(x), x) > 1e-2);
  store.dispose();
});

test('nearest upsampling repeats each pixel 2x2', async () => {
  await ready;
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
  const y = upsampleNearest2x(x);
  const ref = tf.image.resizeNearestNeighbor(x, [4, 4]);
  assert.deepEqual(y.shape, [1, 4, 4, 2]);
  assert.deepEqual(await y.data(), await ref.data());
});

test('mask and s change the output only where they should', async () => {
  await ready;
  // Without temporal attention every frame is processed independently.
  const frames = 4;
  const x = tf.tensor(new Rng(11).normalArray(2 * frames * 8 * 8 * 2), [2, frames, 8, 8, 2]) as tf.Tensor5D;
  const t = new Int32Array([30, 700]);
  const perFrameDiff = (a: tf.Tensor5D, b: tf.Tensor5D): number[] =>
    tf.tidy(() => Array.from(tf.max(tf.abs(tf.sub(a, b)), [0, 2, 3, 4]).dataSync()));

  const store = new ParamStore(new Rng(12));
  const net = new UNet3D(store, tinyConfig({ temporal_attention: false, mask_channel: true, s_embed: 'table', s_levels: 8, s_mode: 'per_frame' }));
  randomizeZeroInit(store, 13);
  const s = tf.tensor1d([3, 3], 'int32');
  const m0 = tf.tensor2d([[0, 0, 0, 0], [0, 0, 0, 0]]);
  const m1 = tf.tensor2d([[0, 0, 1, 0], [0, 0, 1, 0]]);
  const base = net.apply(x, t, { mask: m0, s });
  // The mask of frame 2 reaches frame 2 only.
  let d = perFrameDiff(base, net.apply(x, t, { mask: m1, s }));
  assert.ok(d[2] > 1e-3 && d[0] === 0 && d[1] === 0 && d[3] === 0, `mask: ${d}`);
  // s reaches only condition frames (per_frame mode) ...
  const withS = net.apply(x, t, { mask: m1, s });
  d = perFrameDiff(withS, net.apply(x, t, { mask: m1, s: tf.tensor1d([5, 5], 'int32') }));
  assert.ok(d[2] > 1e-3 && d[0] === 0 && d[1] === 0 && d[3] === 0, `s per frame: ${d}`);
  // ... and nothing when no frame is a condition.
  d = perFrameDiff(base, net.apply(x, t, { mask: m0, s: tf.tensor1d([5, 5], 'int32') }));
  assert.ok(d.every((v) => v === 0), `s with empty mask: ${d}`);
  // A missing mask is the unconditional (all-zero) mask.
  assert.equal(maxAbsDiff(base, net.apply(x, t, { s })), 0);
  assert.throws(() => net.apply(x, t, { mask: m0 }), /cond.s .* is required/);
  assert.throws(() => net.apply(x, t, { mask: m0, s: tf.tensor1d([8, 0], 'int32') }), /outside the table/);
  assert.throws(() => net.apply(x, t, { mask: m0, s, extra: m0 }), /unknown conditioning 'extra'/);

  // 'add' mode: s shifts the embedding of every frame; with temporal attention, the mask of one frame reaches the others.
  const store2 = new ParamStore(new Rng(14));
  const net2 = new UNet3D(store2, tinyConfig({ mask_channel: true, s_embed: 'sinusoid', s_mode: 'add' }));
  randomizeZeroInit(store2, 15);
  const b2 = net2.apply(x, t, { mask: m0, s });
  d = perFrameDiff(b2, net2.apply(x, t, { mask: m0, s: tf.tensor1d([200, 200], 'int32') }));
  assert.ok(d.every((v) => v > 1e-4), `s add: ${d}`);
  d = perFrameDiff(b2, net2.apply(x, t, { mask: m1, s }));
  assert.ok(d.every((v) => v > 1e-5), `mask through temporal attention: ${d}`);

  // The plain model refuses conditioning it does not have.
  const store3 = new ParamStore(new Rng(16));
  const plain = new UNet3D(store3, tinyConfig());
  assert.throws(() => plain.apply(x, t, { mask: m0 }), /no mask channel/);
  assert.throws(() => plain.apply(x, t, { s }), /no s embedding/);
  assert.throws(() => new UNet3D(new ParamStore(new Rng(0)), tinyConfig({ s_embed: 'table', s_mode: 'per_frame' })), /needs mask_channel/);
  store.dispose();
  store2.dispose();
  store3.dispose();
});

test('self-conditioning: x_0 estimate as extra input channels, zeros when absent, frame by frame; errors name the key', async () => {
  await ready;
  const frames = 3;
  const x = tf.tensor(new Rng(21).normalArray(2 * frames * 8 * 8 * 2), [2, frames, 8, 8, 2]) as tf.Tensor5D;
  const t = new Int32Array([40, 600]);
  const store = new ParamStore(new Rng(22));
  const net = new UNet3D(store, tinyConfig({ temporal_attention: false, self_condition: true, mask_channel: true }));
  randomizeZeroInit(store, 23);
  // Input conv: x (2) + estimate (2) + mask (1) channels.
  assert.deepEqual(store.get('input_blocks.0.0.weight')!.shape.slice(-2), [5, 8]);
  assert.equal(net.inputChannels, 5);
  assert.equal(net.asEpsModel().selfCondition, true);
  const zeros = tf.zerosLike(x);
  const base = net.apply(x, t);
  assert.equal(maxAbsDiff(base, net.apply(x, t, { self_cond: zeros })), 0, 'a missing estimate is the zero estimate');
  // An estimate that differs in frame 1 only changes frame 1 (no temporal attention).
  const est = tf.tidy(() => tf.mul(zeros.add(1), tf.tensor([0, 1, 0], [1, frames, 1, 1, 1]))) as tf.Tensor5D;
  const d = tf.tidy(() => Array.from(tf.max(tf.abs(tf.sub(base, net.apply(x, t, { self_cond: est }))), [0, 2, 3, 4]).dataSync()));
  assert.ok(d[1] > 1e-3 && d[0] === 0 && d[2] === 0, `self_cond per frame: ${d}`);
  assert.throws(() => net.apply(x, t, { self_cond: tf.zeros([2, frames, 8, 8, 3]) }), /cond.self_cond has shape \[2,3,8,8,3\], expected \[2,3,8,8,2\]/);
  const plainStore = new ParamStore(new Rng(24));
  const plain = new UNet3D(plainStore, tinyConfig());
  assert.equal(plain.asEpsModel().selfCondition, undefined);
  assert.throws(() => plain.apply(x, t, { self_cond: zeros }), /self_cond given but the model does not read one \(unet.self_condition is off\)/);
  tf.dispose([x, zeros, base, est]);
  store.dispose();
  plainStore.dispose();
});

test('class embedding: num_classes + 1 rows join the time embedding of every frame; only the row of the label matters; gradients reach the used rows; errors name the key', async () => {
  await ready;
  const before = tf.memory().numTensors;
  const frames = 3;
  const x = tf.tensor(new Rng(31).normalArray(2 * frames * 8 * 8 * 2), [2, frames, 8, 8, 2]) as tf.Tensor5D;
  const t = new Int32Array([40, 600]);
  const store = new ParamStore(new Rng(32));
  const net = new UNet3D(store, tinyConfig({ temporal_attention: false, num_classes: 3 }));
  randomizeZeroInit(store, 33);
  const table = store.get('class_emb.weight')!;
  assert.deepEqual(table.shape, [4, 32], 'num_classes + 1 rows (the last is the null label) of 4 x model_channels');
  const label = (a: number, b: number): tf.Tensor1D => tf.tensor1d([a, b], 'int32');
  const perFrame = (a: tf.Tensor5D, b: tf.Tensor5D): number[] => tf.tidy(() => Array.from(tf.max(tf.abs(tf.sub(a, b)), [0, 2, 3, 4]).dataSync()));
  const l0 = label(0, 0);
  const l1 = label(1, 1);
  const l2 = label(2, 2);
  const lNull = label(3, 3);
  const out0 = net.apply(x, t, { class_label: l0 });
  const out1 = net.apply(x, t, { class_label: l1 });
  const d = perFrame(out0, out1);
  assert.ok(d.every((v) => v > 1e-4), `a label reaches every frame: ${d}`);
  // Only the label's row matters: with row 2 set to row 1, labels 1 and 2 give the same output.
  const row2 = tf.tidy(() => table.slice([2, 0], [1, -1]));
  tf.tidy(() => table.assign(tf.concat([table.slice([0, 0], [2, -1]), table.slice([1, 0], [1, -1]), table.slice([3, 0], [1, -1])], 0)));
  const out2 = net.apply(x, t, { class_label: l2 });
  assert.equal(maxAbsDiff(out1, out2), 0);
  tf.tidy(() => table.assign(tf.concat([table.slice([0, 0], [2, -1]), row2, table.slice([3, 0], [1, -1])], 0)));
  // Gradients of sum(r * out) reach the rows of the labels in the batch (0 and the null label), not the others.
  const r = tf.tensor(new Rng(34).normalArray(out0.size), out0.shape);
  const mixed = label(0, 3);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(r, net.apply(x, t, { class_label: mixed }))) as tf.Scalar, [table]);
  const g = grads[table.name].arraySync() as number[][];
  const rowNorm = g.map((row) => Math.max(...row.map(Math.abs)));
  assert.ok(rowNorm[0] > 1e-6 && rowNorm[3] > 1e-6 && rowNorm[1] === 0 && rowNorm[2] === 0, `row gradients ${rowNorm}`);
  // Errors name the key and the allowed range.
  assert.throws(() => net.apply(x, t), /class-conditional: cond.class_label \(\[B\] labels, 3 = none\) is required/);
  const four = label(4, 0);
  assert.throws(() => net.apply(x, t, { class_label: four }), /cond.class_label value 4 outside the table \[0, 3\]/);
  const one = tf.tensor1d([1], 'int32');
  assert.throws(() => net.apply(x, t, { class_label: one }), /cond.class_label has 1 entries for a batch of 2/);
  const plainStore = new ParamStore(new Rng(35));
  const plain = new UNet3D(plainStore, tinyConfig());
  assert.throws(() => plainStore.get('class_emb.weight'), /no parameter 'class_emb.weight'/);
  assert.throws(() => plain.apply(x, t, { class_label: l0 }), /class_label given but the model has no class embedding \(unet.num_classes is not set\)/);
  tf.dispose([x, l0, l1, l2, lNull, out0, out1, out2, row2, r, mixed, value, one, four, ...Object.values(grads)]);
  store.dispose();
  plainStore.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('UNet gradients agree with finite differences (directional derivative)', async () => {
  await ready;
  const store = new ParamStore(new Rng(20));
  const net = new UNet3D(store, tinyConfig({ mask_channel: true }));
  randomizeZeroInit(store, 21);
  const x = tf.tensor(new Rng(22).normalArray(1 * 3 * 4 * 4 * 2), [1, 3, 4, 4, 2]) as tf.Tensor5D;
  const target = tf.tensor(new Rng(23).normalArray(x.size), x.shape);
  const t = new Int32Array([123]);
  const mask = tf.tensor2d([[1, 0, 0]]);
  const vars = store.trainable().map(([, v]) => v);
  const lossFn = (): tf.Scalar => tf.mean(tf.square(tf.sub(net.apply(x, t, { mask }), target))) as tf.Scalar;
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(lossFn, vars);
  value.dispose();
  // Random direction u over all parameters; compare <grad, u> with (L(p + e u) - L(p - e u)) / 2e.
  const rng = new Rng(24);
  const dirs = vars.map((v) => tf.tensor(rng.normalArray(v.size, 0, 0.01), v.shape)); // small steps: the check is local
  const analytic = tf.tidy(() => tf.addN(vars.map((v, i) => tf.sum(tf.mul(grads[v.name], dirs[i])))).dataSync()[0]);
  const originals = vars.map((v) => v.clone());
  const evalAt = (e: number): number => {
    vars.forEach((v, i) => tf.tidy(() => v.assign(tf.add(originals[i], tf.mul(dirs[i], e)))));
    return tf.tidy(() => lossFn().dataSync()[0]);
  };
  const e = 1e-2;
  const numeric = (evalAt(e) - evalAt(-e)) / (2 * e);
  vars.forEach((v, i) => v.assign(originals[i]));
  assert.ok(Math.abs(analytic - numeric) < 5e-3 * Math.abs(numeric) + 1e-5, `analytic ${analytic} vs numeric ${numeric}`);
  tf.dispose([...Object.values(grads), ...dirs, ...originals]);
  assert.equal(tf.memory().numTensors, before);
  store.dispose();
});
