import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { ExperimentConfig, LongVideoConfig } from '../lib/config/schema';
import { drawConditional } from '../lib/hierarchical/batch';
import { epsModelFor, sample } from '../lib/diffusion';
import { readNpz } from '../lib/io/npy';
import { SyntheticDataset } from '../data/synthetic';
import { upsampleNearest2x } from '../lib/models/unet3d';
import { LatentCache, LatentCodec, LvdmTrainer, generateVideos, checkAutoguide, checkLowNoiseExpert, plainBatch, classBatch, dropConditions, sampleLatents, loadLvdm, prepareLatents, saveLvdmWeights, writeSampleOutputs } from '../lib/lvdm';
import type { BatchPreparer } from '../lib/lvdm';
import type { EpsModel } from '../lib/diffusion/types';

import { latentCacheFile } from '../lib/lvdm/pipeline';

const ready = initBackend({ quiet: true });

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lvdm-${tag}-`));
}

/** A stand-in autoencoder: 2x average pooling in time and space; decoding repeats values. */
class PoolCodec implements LatentCodec {
  readonly factors = [2, 2, 2] as const;
  encode(x: tf.Tensor5D): { mean: tf.Tensor5D; logvar: tf.Tensor5D } {
    const mean = tf.avgPool3d(x, 2, 2, 'valid');
    return { mean, logvar: tf.fill(mean.shape, -4) as tf.Tensor5D };
  }
  decode(z: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      const [b, t, h, w, c] = z.shape;
      const r = tf.reshape(z, [b * t, 1, h * w * c]);
      const twice = tf.reshape(tf.concat([r, r], 1), [b * 2 * t, h, w, c]) as tf.Tensor4D; // repeat each frame
      return tf.reshape(upsampleNearest2x(twice), [b, 2 * t, 2 * h, 2 * w, c]) as tf.Tensor5D;
    });
  }
  latentShape(frames: number, height: number, width: number): [number, number, number, number] {
    return [frames / 2, height / 2, width / 2, 3];
  }
}

function config(over: Record<string, unknown> = {}): ExperimentConfig {
  return ExperimentConfig.parse({
    name: 'lvdm-test',
    seed: 1,
    data: { source: 'synthetic-shapes', frames: 4, size: 8, num_videos: 6 },
    unet: { in_channels: 3, out_channels: 3, model_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [2], head_channels: 8, temporal_length: 2, norm_groups: 4 },
    diffusion: { loss: 'l1', optim: { kind: 'adamw', lr: 1e-3, weight_decay: 0.01 }, train: { steps: 4, batch_size: 2, ema_decay: 0.9 } },
    ...over,
  });
}

test('latent cache: encodes every window once, normalises samples, round-trips through disk', async () => {
  await ready;
  const dataset = new SyntheticDataset({ family: 'shapes', size: 3, frames: 4, height: 8, width: 8, seed: 2 });
  const codec = new PoolCodec();
  const cache = await LatentCache.build({ codec, dataset, windowsPerVideo: 2, batchSize: 4, seed: 1 });
  assert.equal(cache.count, 6);
  assert.deepEqual(cache.shape, [2, 4, 4, 3]);
  // Derived normalisation: shift = -mean, scale = 1 / std of posterior samples.
  const before = tf.memory().numTensors;
  const z = cache.sample([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5], new Rng(3));
  const { mean, variance } = tf.moments(z);
  assert.ok(Math.abs(mean.dataSync()[0]) < 0.15, `normalised mean ${mean.dataSync()[0]}`);
  assert.ok(Math.abs(variance.dataSync()[0] - 1) < 0.25, `normalised variance ${variance.dataSync()[0]}`);
  tf.dispose([z, mean, variance]);
  assert.equal(tf.memory().numTensors, before);
  // The first cached mean equals the encoder's output for clip 0 / window 0.
  const x0 = await dataset.get(0, new Rng(1).fork('latent-cache').fork('window-0'));
  const enc = codec.encode(tf.tensor5d(Float32Array.from(x0.video, (v) => v / 127.5 - 1), [1, 4, 8, 8, 3]));
  assert.ok(Math.abs(enc.mean.dataSync()[0] - cache.mean[0]) < 1e-6);
  const dir = tmpDir('cache');
  const file = path.join(dir, 'latents.safetensors');
  const key = { autoencoder: 'a', autoencoderBytes: 1, autoencoderMtimeMs: 2, data: { x: 1 }, seed: 1, windowsPerVideo: 2, maxClips: null };
  cache.save(file, key);
  const back = LatentCache.load(file, key);
  assert.ok(back);
  assert.deepEqual(back.mean, cache.mean);
  assert.deepEqual(back.norm, cache.norm);
  assert.equal(LatentCache.load(file, { ...key, seed: 2 }), null);
  assert.throws(() => cache.sample([6], new Rng(1)), /clip 6 outside/);
  const capped = await LatentCache.build({ codec, dataset, windowsPerVideo: 2, batchSize: 4, seed: 1, maxClips: 4 });
  assert.equal(capped.count, 4);
  assert.deepEqual(capped.mean, cache.mean.slice(0, 4 * cache.per));
});

test('latents.input_scale multiplies the normalised latents; the cache file keeps the autoencoder normalisation', async () => {
  await ready;
  const dir = tmpDir('input-scale');
  const ae = path.join(dir, 'autoencoder.safetensors');
  fs.writeFileSync(ae, 'stand-in: the cache below is found, so the autoencoder is never read');
  const base = config();
  const diffusion = base.diffusion;
  assert.ok(diffusion);
  const scaled = config({ diffusion: { ...diffusion, latents: { ...diffusion.latents, input_scale: 0.5 } } });
  const n = 4;
  const per = 2 * 4 * 4 * 3;
  const made = new LatentCache(new Rng(8).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0.3, scale: 1.6 });
  const { file, key } = latentCacheFile(base, ae, dir);
  assert.equal(latentCacheFile(scaled, ae, dir).file, file, 'the input scale must not change the cache file');
  made.save(file, key);
  const logs: string[] = [];
  const plain = (await prepareLatents(base, ae, dir, (m) => logs.push(m))).cache;
  const half = (await prepareLatents(scaled, ae, dir, (m) => logs.push(m))).cache;
  assert.deepEqual(plain.norm, { shift: 0.3, scale: 1.6 });
  assert.deepEqual(half.norm, { shift: 0.3, scale: 0.8 });
  assert.ok(logs.some((m) => /input scale 0\.5/.test(m)), logs.join('\n'));
  const a = plain.sample([0, 3], new Rng(2));
  const b = half.sample([0, 3], new Rng(2));
  const za = a.dataSync();
  const zb = b.dataSync();
  for (let i = 0; i < za.length; i++) assert.ok(Math.abs(zb[i] - 0.5 * za[i]) < 1e-5, `value ${i}: ${zb[i]} vs ${za[i]} / 2`);
  tf.dispose([a, b]);
  assert.deepEqual(LatentCache.load(file, key)?.norm, { shift: 0.3, scale: 1.6 });
  assert.throws(() => config({ diffusion: { ...diffusion, latents: { input_scale: 0 } } }), /input_scale/);
  assert.throws(() => made.withInputScale(Number.NaN), /input scale must be a positive number, got NaN/);
});

test("timestep_weighting 'v' reweights the loss per sample (same batch, different loss) and leaks no tensors", async () => {
  await ready;
  const base = config();
  const diffusion = base.diffusion;
  assert.ok(diffusion);
  const weighted = config({ diffusion: { ...diffusion, timestep_weighting: 'v' } });
  const n = 4;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 });
  const plain = new LvdmTrainer({ config: base, latents: cache });
  const v = new LvdmTrainer({ config: weighted, latents: cache });
  const lp = (await plain.trainStep(0)).loss;
  const count = tf.memory().numTensors;
  const lv = (await v.trainStep(0)).loss;
  await v.trainStep(1);
  assert.equal(tf.memory().numTensors, count, 'the weighted steps leaked tensors');
  assert.ok(Number.isFinite(lp) && Number.isFinite(lv) && Math.abs(lv - lp) > 1e-4 * lp, `same batch: uniform ${lp}, v-weighted ${lv}`);
  assert.throws(() => config({ diffusion: { ...diffusion, timestep_weighting: 'snr' } }), /timestep_weighting/);
  plain.dispose();
  v.dispose();
});

test('diffusion.motion_weight weights the loss towards moving latents: 0 is the plain loss, > 0 another one on the same batch; no leaks', async () => {
  await ready;
  const base = config();
  const diffusion = base.diffusion!;
  const n = 4;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 });
  const losses: number[] = [];
  const settings: [number | undefined, number | undefined][] = [[undefined, undefined], [0, undefined], [5, undefined], [5, 100], [5, 0.5]];
  for (const [motion_weight, motion_threshold] of settings) {
    const t = new LvdmTrainer({ config: config({ diffusion: { ...diffusion, motion_weight, motion_threshold } }), latents: cache });
    losses.push((await t.trainStep(0)).loss);
    const count = tf.memory().numTensors;
    await t.trainStep(1);
    assert.equal(tf.memory().numTensors, count, `motion_weight ${motion_weight}, threshold ${motion_threshold}: the step leaked tensors`);
    t.dispose();
  }
  assert.equal(losses[1], losses[0], 'motion_weight 0 is the uniform loss');
  assert.ok(Number.isFinite(losses[2]) && Math.abs(losses[2] - losses[0]) > 1e-4 * losses[0], `same batch: uniform ${losses[0]}, motion-weighted ${losses[2]}`);
  // A threshold above every motion leaves weight 1 everywhere; one inside the range gives a third loss.
  assert.equal(losses[3], losses[0], 'motion_threshold above all motion is the uniform loss');
  assert.ok(Math.abs(losses[4] - losses[0]) > 1e-5 * losses[0] && Math.abs(losses[4] - losses[2]) > 1e-5 * losses[0], `thresholded ${losses[4]}`);
  assert.throws(() => config({ diffusion: { ...diffusion, motion_weight: -1 } }), /motion_weight/);
  assert.throws(() => config({ diffusion: { ...diffusion, motion_threshold: -1 } }), /motion_threshold/);
  // A threshold without a weight: the schema refuses it at its key path, and the trainer itself for configs built in code.
  assert.throws(() => config({ diffusion: { ...diffusion, motion_threshold: 0.2 } }), /"motion_threshold"[\s\S]*is 0\.2 but motion_weight is unset or 0/);
  const unchecked = config();
  unchecked.diffusion = { ...unchecked.diffusion!, motion_threshold: 0.2 };
  assert.throws(() => new LvdmTrainer({ config: unchecked, latents: cache }), /diffusion.motion_threshold is 0.2 but diffusion.motion_weight is unset or 0/);
});

test("prediction 'v': the trainer regresses on sqrt(abar) eps - sqrt(1 - abar) z0, and a loaded v model samples through eps = sqrt(abar) v + sqrt(1 - abar) x_t", async () => {
  await ready;
  const base = config();
  const diffusion = base.diffusion;
  assert.ok(diffusion);
  const cfg = config({ diffusion: { ...diffusion, prediction: 'v' } });
  const n = 4;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 });
  // The preparer sees the batch before the update: compute the expected L1 loss on v from host arrays.
  let expected = Number.NaN;
  let eps: Float32Array | null = null;
  const tr: LvdmTrainer = new LvdmTrainer({
    config: cfg,
    latents: cache,
    prepareBatch: (z0, ctx) => {
      const b = plainBatch(z0, ctx);
      const out = tr.unet.apply(b.x, b.t);
      const [o, e, z] = [out.dataSync(), b.target.dataSync(), b.x0.dataSync()];
      out.dispose();
      const m = o.length / b.t.length;
      let sum = 0;
      for (let k = 0; k < o.length; k++) {
        const ab = ctx.schedule.alphasCumprod[b.t[Math.floor(k / m)]];
        sum += Math.abs(o[k] - (Math.sqrt(ab) * e[k] - Math.sqrt(1 - ab) * z[k]));
      }
      expected = sum / o.length;
      eps = Float32Array.from(e);
      return b;
    },
  });
  const count = tf.memory().numTensors;
  const got = (await tr.trainStep(0)).loss;
  assert.equal(tf.memory().numTensors, count, 'the v step leaked tensors');
  assert.ok(eps && Math.abs(got - expected) < 1e-5 * Math.max(1, expected), `trainer loss ${got}, v loss from the batch ${expected}`);
  // Weights saved and loaded: model.eps converts the network's v.
  const dir = tmpDir('v-weights');
  const file = path.join(dir, 'lvdm.safetensors');
  saveLvdmWeights(file, tr.samplingWeights(), cfg, { autoencoder: '/nonexistent', latent: cache.norm, latent_shape: cache.shape, clip: { frames: 4, height: 8, width: 8 }, ema: true }, 1);
  const model = loadLvdm(file);
  const x = tf.tensor5d(new Rng(9).normalArray(2 * per), [2, 2, 4, 4, 3]);
  const t = Int32Array.from([10, 900]);
  const before = tf.memory().numTensors;
  const e = model.eps(x, t);
  const v = model.unet.apply(x, t);
  const [eh, vh, xh] = [e.dataSync(), v.dataSync(), x.dataSync()];
  for (let k = 0; k < eh.length; k++) {
    const ab = model.schedule.alphasCumprod[t[Math.floor(k / per)]];
    const ref = Math.sqrt(ab) * vh[k] + Math.sqrt(1 - ab) * xh[k];
    assert.ok(Math.abs(eh[k] - ref) < 1e-5, `eps[${k}] = ${eh[k]}, expected ${ref}`);
  }
  tf.dispose([e, v]);
  assert.equal(tf.memory().numTensors, before);
  // Both options at once double-count the v weighting: a clear error.
  assert.throws(() => new LvdmTrainer({ config: config({ diffusion: { ...diffusion, prediction: 'v', timestep_weighting: 'v' } }), latents: cache }), /timestep_weighting 'v'.*prediction 'v'.*not both/);
  assert.throws(() => config({ diffusion: { ...diffusion, prediction: 'x0' } }), /prediction/);
  tf.dispose([x]);
  model.dispose();
  tr.dispose();
});

test('diffusion.timestep_sampling reaches the batches of the short and the long-video trainers', async () => {
  await ready;
  const base = config();
  // std 0.001 around logit 0: every t is floor(T / 2) or the step below it; uniform t would spread over {0..T-1}.
  const sampling = { logit_normal: { mean: 0, std: 0.001 } };
  const cfg = config({ diffusion: { ...base.diffusion, timestep_sampling: sampling } });
  const n = 4;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 });
  const seen: number[] = [];
  let T = 0;
  const tr = new LvdmTrainer({
    config: cfg,
    latents: cache,
    prepareBatch: (z0, ctx) => {
      assert.deepEqual(ctx.timestepSampling, sampling);
      T = ctx.schedule.T;
      const b = plainBatch(z0, ctx);
      seen.push(...b.t);
      return b;
    },
  });
  await tr.trainStep(0);
  tr.dispose();
  assert.ok(seen.length > 0 && seen.every((t) => t === T / 2 || t === T / 2 - 1), `t ${seen} (T ${T})`);
  const long = drawConditional(new Rng(2), LongVideoConfig.parse({ role: 'prediction', window: 2, p_cond: 0.5, s_max: null }), 64, 2, 1, 1000, sampling);
  assert.ok(long.t.every((t) => t === 500 || t === 499), `long-video t ${long.t}`);
});

test('diffusion.input_perturbation (DDPM-IP): x_t is made from eps + gamma xi, the target stays eps, every other draw is unchanged; refused for conditional batches', async () => {
  await ready;
  const base = config();
  const n = 4;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 });
  const gamma = 0.1;
  // Two preparers from the same rng state, one with gamma: same t, target and x0; x differs by sqrt(1 - abar_t) gamma xi.
  const schedule = new LvdmTrainer({ config: base, latents: cache }).schedule;
  const z0 = tf.tensor5d(new Rng(8).normalArray(2 * per), [2, 2, 4, 4, 3]);
  const before = tf.memory().numTensors;
  const ra = new Rng(11);
  const rb = new Rng(11);
  const a = plainBatch(z0, { schedule, rng: ra, step: 0 });
  const b = plainBatch(z0, { schedule, rng: rb, step: 0, inputPerturbation: gamma });
  assert.deepEqual(rb.state(), ra.state(), 'input perturbation moved the training rng');
  assert.deepEqual(Array.from(b.t), Array.from(a.t));
  assert.deepEqual(b.target.dataSync(), a.target.dataSync());
  assert.deepEqual(b.x0.dataSync(), a.x0.dataSync());
  const xi = ra.fork('input-perturbation').normalArray(2 * per);
  const [xa, xb] = [a.x.dataSync(), b.x.dataSync()];
  let moved = 0;
  for (let k = 0; k < xa.length; k++) {
    const ref = xa[k] + Math.sqrt(1 - schedule.alphasCumprod[b.t[Math.floor(k / per)]]) * gamma * xi[k];
    assert.ok(Math.abs(xb[k] - ref) < 1e-5, `x[${k}] = ${xb[k]}, expected ${ref}`);
    moved = Math.max(moved, Math.abs(xb[k] - xa[k]));
  }
  assert.ok(moved > 1e-3, `the perturbation moved x by at most ${moved}`);
  tf.dispose([a.x, a.target, a.x0, b.x, b.target, b.x0]);
  assert.equal(tf.memory().numTensors, before, 'plainBatch with input perturbation leaked tensors');
  z0.dispose();
  // The trainer hands the config's gamma to its preparer; its step leaks nothing and its loss differs
  // from gamma 0's at the second step (the UNet's zero-initialised output reads no input at the first).
  const cfg = config({ diffusion: { ...base.diffusion, input_perturbation: gamma } });
  let seen: number | undefined;
  const tr = new LvdmTrainer({ config: cfg, latents: cache });
  const plain = new LvdmTrainer({ config: base, latents: cache });
  const spy = new LvdmTrainer({ config: base, latents: cache, prepareBatch: (z, ctx) => ((seen = ctx.inputPerturbation), plainBatch(z, ctx)) });
  await spy.trainStep(0);
  assert.equal(seen, undefined);
  await tr.trainStep(0);
  await plain.trainStep(0);
  const count = tf.memory().numTensors;
  const [lp, lq] = [(await tr.trainStep(1)).loss, (await plain.trainStep(1)).loss];
  assert.equal(tf.memory().numTensors, count, 'the input-perturbation step leaked tensors');
  assert.ok(Number.isFinite(lp) && lp !== lq, `losses with and without input perturbation: ${lp}, ${lq}`);
  [tr, plain, spy].forEach((t) => t.dispose());
  // The long-video models' conditional batches do not take it; a bad gamma names the key.
  assert.throws(() => new LvdmTrainer({ config: cfg, latents: cache, prepareBatch: plainBatch }), /input_perturbation is for short-video models/);
  assert.throws(() => config({ diffusion: { ...base.diffusion, input_perturbation: -0.1 } }), /input_perturbation/);
});

test('trainer: resume from a checkpoint reproduces an uninterrupted run; no tensors leak across steps', async () => {
  await ready;
  const cfg = config();
  const n = 5;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(4).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0.1, scale: 0.9 });
  const a = new LvdmTrainer({ config: cfg, latents: cache });
  const la: number[] = [];
  for (let i = 0; i < 2; i++) la.push((await a.trainStep(i)).loss);
  const tensors = a.checkpointTensors();
  const state = JSON.parse(JSON.stringify(a.checkpointState())) as Record<string, unknown>;
  const count = tf.memory().numTensors;
  for (let i = 2; i < 4; i++) la.push((await a.trainStep(i)).loss);
  assert.equal(tf.memory().numTensors, count, 'tensors leaked across training steps');
  const b = new LvdmTrainer({ config: cfg, latents: cache });
  b.restore(tensors, state, 2, 'test');
  const lb: number[] = [];
  for (let i = 2; i < 4; i++) lb.push((await b.trainStep(i)).loss);
  assert.deepEqual(lb, la.slice(2));
  const wa = a.samplingWeights();
  const wb = b.samplingWeights();
  for (const [k, v] of wa) assert.deepEqual(wb.get(k)?.data, v.data, k);
  // EMA weights differ from the live ones.
  const live = a.store.snapshot();
  assert.ok([...wa].some(([k, v]) => v.data.some((x, i) => x !== live.get(k)!.data[i])));
  assert.throws(() => new LvdmTrainer({ config: config({ unet: { ...cfg.unet, in_channels: 4, out_channels: 4 } }), latents: cache }), /in_channels is 4 but .* 3 channels/);
  a.dispose();
  b.dispose();
});

test('self-conditioning in training: half the batches first estimate x_0 without gradient and the trained forward reads it; resumable; no leaks', async () => {
  await ready;
  const base = config();
  const cfg = config({ unet: { ...base.unet, self_condition: true }, diffusion: { ...base.diffusion, prediction: 'v' } });
  const n = 6;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(12).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 });
  const tr = new LvdmTrainer({ config: cfg, latents: cache });
  type Call = { x: Float32Array; t: Int32Array; out: Float32Array; self: Float32Array | null };
  const calls: Call[][] = [];
  const apply = tr.unet.apply.bind(tr.unet);
  (tr.unet as { apply: typeof apply }).apply = (x, t, cond, opts) => {
    const out = apply(x, t, cond, opts);
    calls[calls.length - 1].push({ x: x.dataSync() as Float32Array, t: Int32Array.from(t as Int32Array), out: out.dataSync() as Float32Array, self: cond?.self_cond ? (cond.self_cond.dataSync() as Float32Array) : null });
    return out;
  };
  const losses: number[] = [];
  let count = 0;
  let state: Record<string, unknown> = {};
  let tensors = tr.checkpointTensors();
  for (let i = 0; i < 12; i++) {
    if (i === 4) {
      tensors = tr.checkpointTensors();
      state = JSON.parse(JSON.stringify(tr.checkpointState())) as Record<string, unknown>;
      count = tf.memory().numTensors;
    }
    calls.push([]);
    losses.push((await tr.trainStep(i)).loss);
  }
  assert.equal(tf.memory().numTensors, count, 'tensors leaked across self-conditioned steps');
  const twice = calls.filter((c) => c.length === 2);
  assert.ok(twice.length >= 2 && twice.length <= 10, `steps with an estimate: ${twice.length} of 12`);
  for (const c of calls) {
    if (c.length === 1) {
      assert.equal(c[0].self, null, 'a step without an estimate reads none (zeros)');
      continue;
    }
    const [first, second] = c;
    assert.equal(first.self, null);
    assert.deepEqual(second.x, first.x);
    // x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar), eps = sqrt(abar) v + sqrt(1 - abar) x_t (v-prediction).
    const m = first.x.length / first.t.length;
    for (let k = 0; k < first.x.length; k++) {
      const ab = tr.schedule.alphasCumprod[first.t[Math.floor(k / m)]];
      const eps = Math.sqrt(ab) * first.out[k] + Math.sqrt(1 - ab) * first.x[k];
      const x0 = (first.x[k] - Math.sqrt(1 - ab) * eps) / Math.sqrt(ab);
      assert.ok(Math.abs(second.self![k] - x0) < 1e-3 * Math.max(1, Math.abs(x0)), `estimate ${k}: ${second.self![k]} against ${x0}`);
    }
  }
  // Resumed from step 4, the same coin flips and losses.
  const b = new LvdmTrainer({ config: cfg, latents: cache });
  b.restore(tensors, state, 4, 'test');
  const lb: number[] = [];
  for (let i = 4; i < 12; i++) lb.push((await b.trainStep(i)).loss);
  assert.deepEqual(lb, losses.slice(4));
  tr.dispose();
  b.dispose();
});

for (const [prediction, selfCondition] of [['eps', false], ['v', false], ['v', true]] as const)
test(`a small UNet overfits one latent clip (${prediction}-prediction${selfCondition ? ', self-conditioned' : ''}): loss falls and samples reproduce the clip`, async () => {
  await ready;
  const cfg = config({
    unet: { in_channels: 2, out_channels: 2, model_channels: 16, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [2], head_channels: 8, temporal_length: 2, norm_groups: 8, ...(selfCondition ? { self_condition: true } : {}) },
    diffusion: { loss: 'mse', prediction, optim: { kind: 'adam', lr: 3e-3, warmup_steps: 10 }, train: { steps: 150, batch_size: 8, ema_decay: 0 } },
  });
  const per = 2 * 4 * 4 * 2;
  const clip = new Rng(5).normalArray(per);
  const cache = new LatentCache(clip, new Float32Array(per).fill(-30), 1, [2, 4, 4, 2], { shift: 0, scale: 1 });
  const tr = new LvdmTrainer({ config: cfg, latents: cache });
  const losses: number[] = [];
  for (let i = 0; i < 150; i++) losses.push((await tr.trainStep(i)).loss);
  const avg = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
  const first = avg(losses.slice(0, 10));
  const last = avg(losses.slice(-20));
  assert.ok(last < 0.15 * first, `loss ${first} -> ${last}`);
  const ref = tf.tensor5d(clip, [1, 2, 4, 4, 2]);
  const varRef = tf.moments(ref).variance.dataSync()[0];
  const x = await sample(epsModelFor(tr.unet.asEpsModel(), tr.schedule, prediction), tr.schedule, [4, 2, 4, 4, 2], { kind: 'ddim', steps: 50, eta: 1, rng: new Rng(19) });
  const mse = tf.tidy(() => tf.mean(tf.square(tf.sub(x, ref))).dataSync()[0]);
  assert.ok(mse < 0.15 * varRef, `sample MSE to the clip ${mse} (clip variance ${varRef})`);
  // An untrained network does not (the check can fail).
  const fresh = new LvdmTrainer({ config: cfg, latents: cache });
  const y = await sample(epsModelFor(fresh.unet.asEpsModel(), fresh.schedule, prediction), fresh.schedule, [4, 2, 4, 4, 2], { kind: 'ddim', steps: 50, eta: 1, rng: new Rng(19) });
  assert.ok(tf.tidy(() => tf.mean(tf.square(tf.sub(y, ref))).dataSync()[0]) > varRef);
  tf.dispose([ref, x, y]);
  tr.dispose();
  fresh.dispose();
});

test('weights export -> load -> generate -> MP4, GIF, grid PNG and npz', async () => {
  await ready;
  const cfg = config();
  const n = 3;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 2 });
  const tr = new LvdmTrainer({ config: cfg, latents: cache });
  await tr.trainStep(0);
  const dir = tmpDir('weights');
  const file = path.join(dir, 'lvdm.safetensors');
  saveLvdmWeights(file, tr.samplingWeights(), cfg, { autoencoder: '/nonexistent', latent: cache.norm, latent_shape: cache.shape, clip: { frames: 4, height: 8, width: 8 }, ema: true }, 1);
  const model = loadLvdm(file);
  const snap = model.store.snapshot();
  for (const [k, v] of tr.samplingWeights()) assert.deepEqual(snap.get(k)?.data, v.data, k);
  const before = tf.memory().numTensors;
  const gen = await generateVideos(model, new PoolCodec(), { n: 3, frames: 3, batchSize: 2, sampler: 'ddim', steps: 4, eta: 0, seed: 7 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(gen.videos.length, 3);
  assert.equal(gen.frames, 3); // 2 latent frames decode to 4, trimmed to the 3 requested
  assert.equal(gen.videos[0].length, 3 * 8 * 8 * 3);
  // DDIM eta = 0: sample 2 does not depend on the batch it was drawn in.
  const solo = await generateVideos(model, new PoolCodec(), { n: 3, frames: 3, batchSize: 3, sampler: 'ddim', steps: 4, eta: 0, seed: 7 });
  assert.deepEqual(solo.videos[2], gen.videos[2]);
  const out = path.join(dir, 'samples');
  const files = await writeSampleOutputs(out, gen, { fps: 4, npz: true });
  for (const f of ['sample_000.mp4', 'sample_002.gif', 'grid.png', 'samples.npz']) assert.ok(files.includes(path.join(out, f)) && fs.statSync(path.join(out, f)).size > 0, f);
  const npz = readNpz(path.join(out, 'samples.npz')).get('videos');
  assert.ok(npz);
  assert.deepEqual(npz.shape, [3, 3, 8, 8, 3]);
  assert.equal(npz.dtype, 'uint8');
  assert.deepEqual(Array.from(npz.data.slice(0, 50) as Uint8Array), Array.from(gen.videos[0].slice(0, 50)));
  assert.throws(() => loadLvdm(path.join(dir, 'missing.safetensors')), /not found/);

  // Autoguidance by an earlier state of the same model (the weights after step 0, here `model`)
  // of a model trained one step further: scale 1 is the good model alone, scale 2 changes the samples.
  await tr.trainStep(1);
  const goodFile = path.join(dir, 'good.safetensors');
  saveLvdmWeights(goodFile, tr.samplingWeights(), cfg, { autoencoder: '/nonexistent', latent: cache.norm, latent_shape: cache.shape, clip: { frames: 4, height: 8, width: 8 }, ema: true }, 2);
  const good = loadLvdm(goodFile);
  const opts = { n: 2, frames: 3, batchSize: 2, sampler: 'ddim' as const, steps: 4, eta: 0, seed: 7 };
  const plainGood = await generateVideos(good, new PoolCodec(), opts);
  const before2 = tf.memory().numTensors;
  const one = await generateVideos(good, new PoolCodec(), { ...opts, autoguide: { model, scale: 1 } });
  const two = await generateVideos(good, new PoolCodec(), { ...opts, autoguide: { model, scale: 2 } });
  assert.equal(tf.memory().numTensors, before2);
  assert.deepEqual(one.videos, plainGood.videos);
  assert.notDeepEqual(two.videos, plainGood.videos);
  // A guide of other latents is refused, naming both files.
  const otherFile = path.join(dir, 'other-latents.safetensors');
  saveLvdmWeights(otherFile, tr.samplingWeights(), cfg, { autoencoder: '/nonexistent', latent: { shift: 0, scale: 3 }, latent_shape: cache.shape, clip: { frames: 4, height: 8, width: 8 }, ema: true }, 2);
  const other = loadLvdm(otherFile);
  assert.throws(() => checkAutoguide(good, other), /autoguidance: .*other-latents\.safetensors cannot guide .*good\.safetensors: latent normalisations \(shift, scale\) differ/);
  await assert.rejects(generateVideos(good, new PoolCodec(), { ...opts, autoguide: { model: other, scale: 2 } }), /latent normalisations/);
  checkAutoguide(good, model);
  // Noise-level experts: the model with itself below the switch is the model alone; the step-0
  // weights below t = T are the step-0 model alone; a switch halfway uses both.
  const before3 = tf.memory().numTensors;
  const half = Math.floor(good.schedule.T / 2);
  const self = await generateVideos(good, new PoolCodec(), { ...opts, lowNoise: { model: good, below: half } });
  const allLow = await generateVideos(good, new PoolCodec(), { ...opts, lowNoise: { model, below: good.schedule.T } });
  const plainModel = await generateVideos(model, new PoolCodec(), opts);
  const split = await generateVideos(good, new PoolCodec(), { ...opts, lowNoise: { model, below: half } });
  assert.equal(tf.memory().numTensors, before3);
  assert.deepEqual(self.videos, plainGood.videos);
  assert.deepEqual(allLow.videos, plainModel.videos);
  assert.notDeepEqual(split.videos, plainGood.videos);
  assert.notDeepEqual(split.videos, plainModel.videos);
  assert.throws(() => checkLowNoiseExpert(good, other), /noise-level experts: .*other-latents\.safetensors cannot denoise below the switch for .*good\.safetensors: latent normalisations \(shift, scale\) differ/);
  await assert.rejects(generateVideos(good, new PoolCodec(), { ...opts, lowNoise: { model: other, below: half } }), /noise-level experts: .*latent normalisations/);
  // Epsilon scaling: lambda 1 is the model alone; lambda 1.05 changes the samples; no leaks.
  const before4 = tf.memory().numTensors;
  const unscaled = await generateVideos(good, new PoolCodec(), { ...opts, epsScale: { lambda: 1 } });
  const scaled = await generateVideos(good, new PoolCodec(), { ...opts, epsScale: { lambda: 1.05 } });
  assert.equal(tf.memory().numTensors, before4);
  assert.deepEqual(unscaled.videos, plainGood.videos);
  assert.notDeepEqual(scaled.videos, plainGood.videos);
  good.dispose();
  other.dispose();
  model.dispose();
  tr.dispose();
});

test('class-conditional training: labels ride along from the cache, dropped to the null label with class_p_uncond; a cache without labels is encoded again; errors name the key', async () => {
  await ready;
  // Condition dropout: the rate is p, and dropped values are the null value.
  const many = new Array<number>(20000).fill(2);
  for (const p of [0, 0.1, 0.5, 1]) {
    const dropped = dropConditions(many, p, 7, new Rng(12));
    assert.ok(dropped.every((v) => v === 2 || v === 7));
    const rate = dropped.filter((v) => v === 7).length / many.length;
    assert.ok(Math.abs(rate - p) <= 4 * Math.sqrt((p * (1 - p)) / many.length) + 1e-12, `p=${p}: ${rate}`);
  }
  const sched = { T: 10 } as Parameters<BatchPreparer>[1]['schedule'];
  const z0 = tf.zeros([4, 2, 4, 4, 3]) as tf.Tensor5D;
  const prep = classBatch(3, 0.5);
  assert.throws(() => prep(z0, { schedule: sched, rng: new Rng(1), step: 0 }), /class-conditional training \(unet.num_classes\) needs class labels, but the latent cache has none/);
  assert.throws(() => prep(z0, { schedule: sched, rng: new Rng(1), step: 0, labels: [0, 1, 5, 2] }), /class label 5 of the training data is outside unet.num_classes \(3 classes: 0..2\)/);
  z0.dispose();

  // The trainer reads each clip's label from the cache and feeds class_label to the network.
  const unet = { ...config().unet!, num_classes: 3 };
  const cfg = config({ unet, diffusion: { ...config().diffusion!, class_p_uncond: 0 } });
  const n = 4;
  const per = 2 * 4 * 4 * 3;
  const labels = [2, 0, 1, 2];
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 }, undefined, labels);
  const seen: number[][] = [];
  const inner = classBatch(3, 0);
  const tr = new LvdmTrainer({ config: cfg, latents: cache, prepareBatch: (z, ctx) => {
    const b = inner(z, ctx);
    seen.push(Array.from(b.cond!.class_label.dataSync()));
    return b;
  } });
  await tr.trainStep(0);
  const before = tf.memory().numTensors;
  await tr.trainStep(1);
  assert.equal(tf.memory().numTensors, before, 'no tensors leak across steps');
  // Two steps of batch 2 cover one epoch: every clip once, each with its own label.
  assert.deepEqual(seen.flat().sort(), [...labels].sort());
  tr.dispose();
  // The config's own preparer is the class batch (a step runs end to end); refusals name the keys.
  const own = new LvdmTrainer({ config: config({ unet, diffusion: { ...config().diffusion!, class_p_uncond: 0.1 } }), latents: cache });
  await own.trainStep(0);
  own.dispose();
  assert.throws(() => new LvdmTrainer({ config: config({ diffusion: { ...config().diffusion!, class_p_uncond: 0.1 } }), latents: cache }), /diffusion.class_p_uncond is set but the model is not class-conditional/);
  const unlabelled = new LatentCache(cache.mean, cache.logvar, n, cache.shape, cache.norm);
  const plainCache = new LvdmTrainer({ config: cfg, latents: unlabelled });
  await assert.rejects(plainCache.trainStep(0), /needs class labels, but the latent cache has none/);
  plainCache.dispose();

  // Labels are saved with the cache; a class-conditional config does not reuse a cache written without them.
  const dir = tmpDir('class-cache');
  const ae = path.join(dir, 'autoencoder.safetensors');
  fs.writeFileSync(ae, 'stand-in: read only when the cache must be encoded again');
  const { file, key } = latentCacheFile(cfg, ae, dir);
  cache.save(file, key);
  assert.deepEqual(LatentCache.load(file, key)?.labels, labels);
  assert.deepEqual((await prepareLatents(cfg, ae, dir, () => {})).cache.labels, labels);
  unlabelled.save(file, key);
  assert.equal((await prepareLatents(config(), ae, dir, () => {})).cache.labels, undefined, 'an unconditional model reuses it');
  const logs: string[] = [];
  await assert.rejects(prepareLatents(cfg, ae, dir, (m) => logs.push(m)));
  assert.ok(logs.some((m) => /has no class labels; encoding again/.test(m)), logs.join('\n'));
  // A labelled data source fills the labels when the cache is built.
  const dataset = new SyntheticDataset({ family: 'shapes-large', size: 3, frames: 4, height: 8, width: 8, seed: 2 });
  const built = await LatentCache.build({ codec: new PoolCodec(), dataset, windowsPerVideo: 2, batchSize: 4, seed: 1 });
  const expected = await Promise.all([0, 1, 2, 0, 1, 2].map(async (i) => (await dataset.get(i, new Rng(1))).label));
  assert.deepEqual(built.labels, expected);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('class-conditional sampling: one label per video; s = 1 is the conditional model alone, s = 0 the null label, other s guided; refused where they do not fit', async () => {
  await ready;
  const unet = { ...config().unet!, num_classes: 3 };
  const cfg = config({ unet });
  const n = 3;
  const per = 2 * 4 * 4 * 3;
  const cache = new LatentCache(new Rng(6).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [2, 4, 4, 3], { shift: 0, scale: 1 }, undefined, [0, 1, 2]);
  const tr = new LvdmTrainer({ config: cfg, latents: cache });
  await tr.trainStep(0);
  // Random output projections, so that every path (the class embedding included) reaches eps.
  for (const [name, v] of tr.store.entries()) if (/out_layers\.3|^out\.2/.test(name)) tf.tidy(() => v.assign(tf.tensor(new Rng(9).normalArray(v.size, 0, 0.2), v.shape)));
  const dir = tmpDir('class-sample');
  const file = path.join(dir, 'lvdm.safetensors');
  saveLvdmWeights(file, tr.store.snapshot(), cfg, { autoencoder: '/nonexistent', latent: cache.norm, latent_shape: cache.shape, clip: { frames: 4, height: 8, width: 8 }, ema: false }, 1);
  tr.dispose();
  const model = loadLvdm(file);
  const opts = { n: 2, frames: 4, batchSize: 2, sampler: 'ddim' as const, steps: 3, eta: 0, seed: 5 };
  const before = tf.memory().numTensors;
  const gen = async (classLabels: number[], cfgScale?: number): Promise<Float32Array[]> => {
    const z = await sampleLatents(model, 2, 2, 0, { ...opts, classLabels, cfg: cfgScale });
    const v = z.dataSync() as Float32Array;
    z.dispose();
    return [v.slice(0, per), v.slice(per)];
  };
  const a = await gen([0, 1]);
  const b = await gen([2, 1]);
  assert.ok(maxAbsDiffArrays(a[0], b[0]) > 1e-3, 'the label changes its video');
  assert.deepEqual(a[1], b[1], 'and only its own');
  assert.deepEqual(await gen([0, 1], 1), a);
  const nullLabel = await gen([3, 3]);
  assert.deepEqual(await gen([0, 1], 0), nullLabel, 's = 0 samples the null label');
  // s = 3 equals DDIM with eps_u + 3 (eps_c - eps_u) built by hand from the network.
  const guided = await gen([0, 1], 3);
  assert.ok(maxAbsDiffArrays(guided[0], a[0]) > 1e-3);
  const eps = model.eps;
  const byHand: EpsModel = (x, t) =>
    tf.tidy(() => {
      const c = eps(x, t, { class_label: tf.tensor1d([0, 1], 'int32') });
      const u = eps(x, t, { class_label: tf.tensor1d([3, 3], 'int32') });
      return tf.add(u, tf.mul(tf.sub(c, u), 3)) as tf.Tensor5D;
    });
  const noise = new Float32Array(2 * per);
  for (let i = 0; i < 2; i++) noise.set(new Rng(5).fork(`sample-${i}`).normalArray(per), i * per);
  const xT = tf.tensor5d(noise, [2, 2, 4, 4, 3]);
  const z = await sample(byHand, model.schedule, [2, 2, 4, 4, 3], { kind: 'ddim', steps: 3, eta: 0, xT, rng: new Rng(5).fork('steps-0') });
  const zv = z.dataSync() as Float32Array;
  tf.dispose([xT, z]);
  const maxDiff = Math.max(maxAbsDiffArrays(zv.slice(0, per), guided[0]), maxAbsDiffArrays(zv.slice(per), guided[1]));
  const scale = Math.max(...Array.from(zv, Math.abs));
  // float32 rounding only: the sampler runs both branches as one batch [x; x], the hand-built model as two.
  assert.ok(maxDiff < 2e-4 * Math.max(1, scale), `guided sampling against the hand-built guided model: ${maxDiff} (values up to ${scale})`);
  // Videos: generateVideos decodes the same latents.
  assert.equal((await generateVideos(model, new PoolCodec(), { ...opts, classLabels: [0, 1] })).videos.length, 2);
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
  await assert.rejects(generateVideos(model, new PoolCodec(), opts), /a class-conditional model needs class labels \(lvdm sample --class NAME\)/);
  await assert.rejects(gen([0, 4]), /class label 4 outside \[0, 3\] \(3 classes; 3 = none\)/);
  await assert.rejects(gen([0]), /1 class labels for 2 videos/);
  const plainTr = new LvdmTrainer({ config: config(), latents: cache });
  const plainFile = path.join(dir, 'plain.safetensors');
  saveLvdmWeights(plainFile, plainTr.samplingWeights(), config(), { autoencoder: '/nonexistent', latent: cache.norm, latent_shape: cache.shape, clip: { frames: 4, height: 8, width: 8 }, ema: true }, 1);
  plainTr.dispose();
  const plain = loadLvdm(plainFile);
  await assert.rejects(generateVideos(plain, new PoolCodec(), { ...opts, classLabels: [0, 1] }), /class labels given, but this model is not class-conditional \(unet.num_classes is unset\)/);
  // A class-conditional model cannot guide or stand in for an unconditional one.
  assert.throws(() => checkAutoguide(plain, model), /conditioning inputs differ/);
  plain.dispose();
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function maxAbsDiffArrays(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
