/**
 * Text-to-video model parts: cross-attention (shapes, a naive reference, padding masks), the UNet's
 * text blocks, the CLIP text transformer (causality, HF safetensors loading, missing keys), the one
 * guidance formula, the empty-prompt rate, the frame-wise autoencoder; tensor-count leak checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ParamStore, Scope } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { CrossAttention } from '../lib/models/unet3d/attention';
import { UNet3D } from '../lib/models/unet3d/unet';
import { AutoencoderModelConfig, ExperimentConfig, UNetConfig } from '../lib/config/schema';
import { ClipTextModel, hfClipTextValues } from '../lib/text/clip';
import { TEXT_PREFIX, TextConditioner } from '../lib/text/conditioner';
import { saveSafetensors } from '../lib/io/safetensors';
import { EpsModel, LVDM_SCHEDULE, NoiseSchedule, cfgGuidance, combineGuidance, guidedEps, sample } from '../lib/diffusion';
import { dropCaptions, textBatch } from '../lib/lvdm/trainer';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { LatentCache, latentCacheKey } from '../lib/lvdm/latents';
import type { ClipDataset } from '../data/types';
import { tempDir } from './helpers';

/** Fills every parameter of a store with N(0, std) values (zero-initialised projections included). */
function randomise(store: ParamStore, seed: number, std = 0.3): void {
  const rng = new Rng(seed);
  for (const [, v] of store.entries()) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size, 0, std), v.shape)));
}

function arr(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('cross-attention: shapes and values equal a naive per-position reference with padding masks', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const [B, T, H, W, C, L, D, heads] = [2, 3, 2, 2, 8, 5, 6, 2];
  const store = new ParamStore(new Rng(1));
  const ca = new CrossAttention(new Scope(store, 'blk'), C, D, heads);
  randomise(store, 2);
  const rng = new Rng(3);
  const hv = rng.normalArray(B * T * H * W * C);
  const cv = rng.normalArray(B * L * D);
  const mask = [1, 1, 1, 0, 0, 1, 1, 1, 1, 0];
  const h = tf.tensor4d(hv, [B * T, H, W, C]);
  const ctx = tf.tensor3d(cv, [B, L, D]);
  const m = tf.tensor2d(mask, [B, L]);
  const out = ca.apply(h, T, { context: ctx, mask: m });
  assert.deepEqual(out.shape, [B * T, H, W, C]);
  const got = arr(out);
  // Naive reference on the host.
  const P = (name: string): Float32Array => arr(store.get(`blk.${name}`));
  const [g, bta, wq, wk, wv, wo, bo] = ['norm_c.weight', 'norm_c.bias', 'attn_c.to_q.weight', 'attn_c.to_k.weight', 'attn_c.to_v.weight', 'attn_c.to_out.weight', 'attn_c.to_out.bias'].map(P);
  const mv = (x: ArrayLike<number>, w: Float32Array, cin: number, cout: number): number[] => {
    const y = new Array<number>(cout).fill(0);
    for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) y[o] += x[i] * w[i * cout + o];
    return y;
  };
  const d = C / heads;
  let worst = 0;
  for (let n = 0; n < B * T; n++) {
    const b = Math.floor(n / T);
    const keys = Array.from({ length: L }, (_, j) => j).filter((j) => mask[b * L + j] === 1);
    const kk = keys.map((j) => mv(cv.subarray((b * L + j) * D, (b * L + j + 1) * D), wk, D, C));
    const vv = keys.map((j) => mv(cv.subarray((b * L + j) * D, (b * L + j + 1) * D), wv, D, C));
    for (let p = 0; p < H * W; p++) {
      const off = (n * H * W + p) * C;
      const x = hv.subarray(off, off + C);
      const mu = x.reduce((a, v) => a + v, 0) / C;
      const vr = x.reduce((a, v) => a + (v - mu) ** 2, 0) / C;
      const xn = Array.from(x, (v, i) => ((v - mu) / Math.sqrt(vr + 1e-5)) * g[i] + bta[i]);
      const q = mv(xn, wq, C, C);
      const o = new Array<number>(C).fill(0);
      for (let hd = 0; hd < heads; hd++) {
        const logits = kk.map((k) => {
          let s = 0;
          for (let i = hd * d; i < (hd + 1) * d; i++) s += q[i] * k[i];
          return s / Math.sqrt(d);
        });
        const mx = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - mx));
        const z = e.reduce((a, v) => a + v, 0);
        for (let j = 0; j < keys.length; j++) for (let i = hd * d; i < (hd + 1) * d; i++) o[i] += (e[j] / z) * vv[j][i];
      }
      const y = mv(o, wo, C, C);
      for (let i = 0; i < C; i++) worst = Math.max(worst, Math.abs(got[off + i] - (x[i] + y[i] + bo[i])));
    }
  }
  assert.ok(worst < 1e-4, `max deviation from the reference ${worst}`);
  // Masked tokens do not change the output; an unmasked one does.
  const cv2 = cv.slice();
  for (const j of [3, 4, 9]) for (let i = 0; i < D; i++) cv2[j * D + i] += 5;
  const ctx2 = tf.tensor3d(cv2, [B, L, D]);
  const out2 = ca.apply(h, T, { context: ctx2, mask: m });
  assert.equal(maxAbsDiff(arr(out2), got), 0);
  const cv3 = cv.slice();
  cv3[0] += 1;
  const ctx3 = tf.tensor3d(cv3, [B, L, D]);
  const out3 = ca.apply(h, T, { context: ctx3, mask: m });
  assert.ok(maxAbsDiff(arr(out3).subarray(0, T * H * W * C), got.subarray(0, T * H * W * C)) > 1e-4);
  assert.equal(maxAbsDiff(arr(out3).subarray(T * H * W * C), got.subarray(T * H * W * C)), 0, 'the other video is unaffected');
  const wrong = tf.zeros([B, L, D + 1]) as tf.Tensor3D;
  assert.throws(() => ca.apply(h, T, { context: wrong }), /context has 7 channels, expected 6/);
  tf.dispose([h, ctx, m, out, ctx2, out2, ctx3, out3, wrong]);
  store.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

const tinyUnet = (contextDim?: number): UNetConfig =>
  UNetConfig.parse({ in_channels: 2, out_channels: 2, model_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [2], head_channels: 8, temporal_length: 3, norm_groups: 4, context_dim: contextDim, ff_mult: contextDim ? 2 : 0 });

test('UNet3D text blocks: context required, padding mask respected, parameter names, shape errors', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const store = new ParamStore(new Rng(4));
  const net = new UNet3D(store, tinyUnet(6));
  randomise(store, 5, 0.2);
  for (const n of ['middle_block.1.attn_c.to_q.weight', 'middle_block.1.norm_c.weight', 'middle_block.1.ff.0.weight', 'middle_block.1.norm_ff.bias', 'input_blocks.3.1.attn_c.to_out.bias']) assert.ok(store.has(n), n);
  const rng = new Rng(6);
  const x = tf.tensor5d(rng.normalArray(2 * 3 * 4 * 4 * 2), [2, 3, 4, 4, 2]);
  const t = Int32Array.from([10, 500]);
  const cv = rng.normalArray(2 * 4 * 6);
  const context = tf.tensor3d(cv, [2, 4, 6]);
  const mask = tf.tensor2d([1, 1, 0, 0, 1, 1, 1, 1], [2, 4]);
  const y = net.apply(x, t, { context, context_mask: mask });
  assert.deepEqual(y.shape, [2, 3, 4, 4, 2]);
  const cv2 = cv.slice();
  for (let i = 12; i < 24; i++) cv2[i] = -cv2[i];
  const context2 = tf.tensor3d(cv2, [2, 4, 6]);
  const y2 = net.apply(x, t, { context: context2, context_mask: mask });
  assert.equal(maxAbsDiff(arr(y2), arr(y)), 0, 'padding tokens of video 0 do not change the output');
  assert.throws(() => net.apply(x, t), /text-conditioned model: cond\.context/);
  assert.throws(() => net.apply(x, t, { context: mask }), /cond\.context has shape \[2,4\], expected \[2, L, 6\]/);
  const plain = new UNet3D(new ParamStore(new Rng(1)), tinyUnet());
  assert.throws(() => plain.apply(x, t, { context }), /no cross-attention \(unet\.context_dim is not set\)/);
  plain.store.dispose();
  tf.dispose([x, context, mask, y, context2, y2]);
  store.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('CLIP text transformer: causal, loads an HF CLIPTextModel safetensors export, names a missing key', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const cfg = { vocabSize: 40, width: 8, layers: 2, heads: 2, contextLength: 6, mlpWidth: 32 };
  const src = new ParamStore(new Rng(7));
  const model = new ClipTextModel(new Scope(src, TEXT_PREFIX), cfg);
  const ids = tf.tensor2d([3, 5, 7, 9, 11, 13, 3, 5, 7, 1, 2, 0], [2, 6], 'int32');
  const out = model.apply(ids);
  assert.deepEqual(out.shape, [2, 6, 8]);
  // Causal: row 1 shares its first three tokens with row 0, so its first three outputs match.
  const o = arr(out);
  assert.ok(maxAbsDiff(o.subarray(0, 24), o.subarray(48, 72)) < 1e-5);
  assert.ok(maxAbsDiff(o.subarray(24, 48), o.subarray(72, 96)) > 1e-3);
  // An HF export: same names without our prefix, linear weights in PyTorch's [out, in] layout.
  const dir = tempDir();
  try {
    const hf = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of src.entries()) {
      const key = name.slice(TEXT_PREFIX.length + 1);
      const data = v.dataSync() as Float32Array;
      if (/(q_proj|k_proj|v_proj|out_proj|fc1|fc2)\.weight$/.test(key)) {
        const [i, oo] = v.shape;
        const tr = new Float32Array(i * oo);
        for (let r = 0; r < i; r++) for (let c = 0; c < oo; c++) tr[c * i + r] = data[r * oo + c];
        hf.set(key, { shape: [oo, i], data: tr });
      } else hf.set(key, { shape: v.shape.slice(), data: new Float32Array(data) });
    }
    for (const k of ['text_model.embeddings.token_embedding.weight', 'text_model.encoder.layers.1.self_attn.out_proj.weight', 'text_model.encoder.layers.0.mlp.fc1.bias', 'text_model.final_layer_norm.weight'])
      assert.ok(hf.has(k), k);
    hf.set('text_model.embeddings.position_ids', { shape: [1, 6], data: new Float32Array([0, 1, 2, 3, 4, 5]) });
    const file = path.join(dir, 'clip-text.safetensors');
    saveSafetensors(file, hf);
    const text = { width: 8, layers: 2, heads: 2, context_length: 6, mlp_ratio: 4, words: ['red'], weights: file };
    const cfgT = ExperimentConfig.parse({ name: 'x', data: { source: 'synthetic-captioned', frames: 2, size: 8 }, text }).text!;
    // The word vocabulary has 516 entries; the test file's 40-row embedding is a shape error naming the key.
    const dst = new ParamStore(new Rng(8));
    const cond = new TextConditioner(dst, cfgT);
    assert.throws(() => cond.loadPretrained(dst), /text_model\.embeddings\.token_embedding\.weight.*shape \[40,8\] does not match the model's \[\d+,8\]/);
    dst.dispose();
    // Loaded at the right size it reproduces the source model, and is frozen (weights given, train unset).
    const dst2 = new ParamStore(new Rng(9));
    const m2 = new ClipTextModel(new Scope(dst2, TEXT_PREFIX), cfg);
    dst2.load(hfClipTextValues(file, m2, dst2.names()), { source: file });
    const out2 = m2.apply(ids);
    assert.ok(maxAbsDiff(arr(out2), o) < 1e-6);
    hf.delete('text_model.encoder.layers.1.mlp.fc2.bias');
    saveSafetensors(file, hf);
    assert.throws(() => hfClipTextValues(file, m2, dst2.names()), /clip-text\.safetensors: missing key 'text_model\.encoder\.layers\.1\.mlp\.fc2\.bias'/);
    tf.dispose(out2);
    dst2.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  tf.dispose([ids, out]);
  src.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('guidance: eps_u + s (eps_c - eps_u) is the LVDM form with s = 1 + w; s = 1 samples equal the conditional sample', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  // A toy conditional model: eps = 0.5 x + c (c broadcast per sample).
  const model: EpsModel = (x, _t, cond) => tf.tidy(() => tf.add(tf.mul(x, 0.5), tf.reshape(cond!.c, [-1, 1, 1, 1, 1])) as tf.Tensor5D);
  const rng = new Rng(10);
  const x = tf.tensor5d(rng.normalArray(2 * 2 * 2 * 2 * 1), [2, 2, 2, 2, 1]);
  const cond = { c: tf.tensor1d([1, -2]) };
  const uncond = { c: tf.tensor1d([0.25, 0.5]) };
  const t = Int32Array.from([5, 5]);
  const xs = arr(x);
  for (const s of [0, 1, 3, 7.5, 15]) {
    for (const batched of [true, false]) {
      const e = guidedEps(model, x, t, cond, cfgGuidance(s, uncond, batched));
      const ev = arr(e);
      for (let i = 0; i < ev.length; i++) {
        const b = Math.floor(i / 8);
        const ec = 0.5 * xs[i] + [1, -2][b];
        const eu = 0.5 * xs[i] + [0.25, 0.5][b];
        assert.ok(Math.abs(ev[i] - (eu + s * (ec - eu))) < 1e-5, `s=${s} batched=${batched}`);
      }
      e.dispose();
    }
  }
  // LVDM's (1 + w) eps_c - w eps_u through the same code path.
  const w = 0.1;
  const e = guidedEps(model, x, t, cond, { scale: w, uncond });
  const ev = arr(e);
  for (let i = 0; i < ev.length; i++) {
    const b = Math.floor(i / 8);
    assert.ok(Math.abs(ev[i] - ((1 + w) * (0.5 * xs[i] + [1, -2][b]) - w * (0.5 * xs[i] + [0.25, 0.5][b]))) < 1e-5);
  }
  const zero = tf.zerosLike(x);
  const c1 = combineGuidance(x, zero, 1);
  assert.ok(maxAbsDiff(arr(c1), xs) < 1e-7);
  // s = 1: the guided sampler gives exactly the conditional sample (DDIM and DDPM).
  const sched = NoiseSchedule.fromConfig({ ...LVDM_SCHEDULE, timesteps: 50 });
  for (const kind of ['ddim', 'ddpm'] as const) {
    const spec = (g?: ReturnType<typeof cfgGuidance>) => (kind === 'ddim' ? { kind, steps: 5, rng: new Rng(11), cond, guidance: g } : { kind, rng: new Rng(11), cond, guidance: g });
    const a = await sample(model, sched, [2, 2, 2, 2, 1], spec());
    const b = await sample(model, sched, [2, 2, 2, 2, 1], spec(cfgGuidance(1, uncond)));
    const c = await sample(model, sched, [2, 2, 2, 2, 1], spec(cfgGuidance(3, uncond)));
    assert.equal(maxAbsDiff(arr(a), arr(b)), 0, kind);
    assert.ok(maxAbsDiff(arr(a), arr(c)) > 1e-3, kind);
    tf.dispose([a, b, c]);
  }
  assert.throws(() => cfgGuidance(-1, uncond), /scale s must be a finite number >= 0/);
  tf.dispose([x, cond.c, uncond.c, e, c1, zero]);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('empty-prompt rate: captions are dropped with probability p_uncond, and dropped rows are the empty prompt', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const caps = new Array<string>(20000).fill('a red circle moves left');
  for (const p of [0, 0.1, 0.5, 1]) {
    const dropped = dropCaptions(caps, p, new Rng(12)).filter((c) => c === '').length / caps.length;
    const sd = Math.sqrt((p * (1 - p)) / caps.length);
    assert.ok(Math.abs(dropped - p) <= 4 * sd + 1e-12, `p=${p}: ${dropped}`);
  }
  const store = new ParamStore(new Rng(13));
  const cfg = ExperimentConfig.parse({ name: 'x', data: { source: 'synthetic-captioned', frames: 2, size: 8 }, text: { words: ['red', 'circle'], width: 8, layers: 1, heads: 2, context_length: 6 } }).text!;
  const text = new TextConditioner(store, cfg);
  const prep = textBatch(text, 0.5);
  const z0 = tf.zeros([16, 2, 2, 2, 2]) as tf.Tensor5D;
  const captions = new Array<string>(16).fill('red circle');
  const sched = NoiseSchedule.fromConfig({ ...LVDM_SCHEDULE, timesteps: 10 });
  const batch = prep(z0, { schedule: sched, rng: new Rng(14), step: 0, captions });
  const ids = Array.from(batch.cond!.tokens.dataSync());
  const empty = Array.from(text.tokenizer.tokenize([''], { contextLength: 6 }).ids);
  const full = Array.from(text.tokenizer.tokenize(['red circle'], { contextLength: 6 }).ids);
  let nEmpty = 0;
  for (let b = 0; b < 16; b++) {
    const row = ids.slice(b * 6, b * 6 + 6);
    assert.ok(JSON.stringify(row) === JSON.stringify(empty) || JSON.stringify(row) === JSON.stringify(full));
    if (JSON.stringify(row) === JSON.stringify(empty)) nEmpty += 1;
  }
  assert.ok(nEmpty > 0 && nEmpty < 16, `${nEmpty} of 16 dropped at p = 0.5`);
  assert.throws(() => prep(z0, { schedule: sched, rng: new Rng(1), step: 0 }), /needs captions/);
  tf.dispose([z0, batch.x, batch.target, batch.x0, ...Object.values(batch.cond!)]);
  store.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('frame-wise 2D autoencoder: frames are encoded and decoded independently; needs temporal_factor 1', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const cfg = AutoencoderModelConfig.parse({ channels: [4], temporal_factor: 1, spatial_factor: 2, latent_channels: 2, norm_groups: 2, frame_wise: true });
  const store = new ParamStore(new Rng(15));
  const ae = new VideoAutoencoder(store, cfg);
  assert.deepEqual(store.get('encoder.conv_in.weight').shape.slice(0, 3), [1, 3, 3]);
  const rng = new Rng(16);
  const v = rng.uniformArray(1 * 3 * 4 * 4 * 3, -1, 1);
  const x = tf.tensor5d(v, [1, 3, 4, 4, 3]);
  const v2 = v.slice();
  for (let i = 2 * 48; i < 3 * 48; i++) v2[i] = -v2[i]; // change the last frame only
  const x2 = tf.tensor5d(v2, [1, 3, 4, 4, 3]);
  const a = ae.encode(x);
  const b = ae.encode(x2);
  const per = 2 * 2 * 2;
  assert.equal(maxAbsDiff(arr(a.mean).subarray(0, 2 * per), arr(b.mean).subarray(0, 2 * per)), 0);
  assert.ok(maxAbsDiff(arr(a.mean).subarray(2 * per), arr(b.mean).subarray(2 * per)) > 1e-4);
  const da = ae.decode(a.mean);
  const db = ae.decode(b.mean);
  assert.equal(maxAbsDiff(arr(da).subarray(0, 2 * 48), arr(db).subarray(0, 2 * 48)), 0);
  assert.throws(() => new VideoAutoencoder(new ParamStore(new Rng(1)), { ...cfg, temporal_factor: 2 }), /frame_wise needs temporal_factor 1/);
  tf.dispose([x, x2, a.mean, a.logvar, b.mean, b.logvar, da, db]);
  store.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('latent cache: captions of the clips (e.g. WebVid CSV captions) are kept, saved and loaded; uncaptioned sources have none', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const store = new ParamStore(new Rng(17));
  const ae = new VideoAutoencoder(store, AutoencoderModelConfig.parse({ channels: [4], temporal_factor: 1, spatial_factor: 2, latent_channels: 2, norm_groups: 2, frame_wise: true }));
  const dataset = (captioned: boolean): ClipDataset => ({
    name: 'fake-webvid',
    size: 3,
    frames: 2,
    height: 4,
    width: 4,
    get: async (i: number) => ({ video: new Uint8Array(2 * 4 * 4 * 3).fill(40 * i), frames: 2, height: 4, width: 4, key: `v${i}`, caption: captioned ? `caption ${i}` : undefined }),
  });
  const cache = await LatentCache.build({ codec: ae, dataset: dataset(true), windowsPerVideo: 2, batchSize: 4, seed: 1 });
  assert.deepEqual(cache.captions, ['caption 0', 'caption 1', 'caption 2', 'caption 0', 'caption 1', 'caption 2']);
  const dir = tempDir();
  try {
    const file = path.join(dir, 'cache.safetensors');
    const key = latentCacheKey(__filename, { source: 'x' }, 1, 2);
    cache.save(file, key);
    assert.deepEqual(LatentCache.load(file, key)!.captions, cache.captions);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const plain = await LatentCache.build({ codec: ae, dataset: dataset(false), windowsPerVideo: 1, batchSize: 4, seed: 1 });
  assert.equal(plain.captions, undefined);
  store.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});
