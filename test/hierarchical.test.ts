/**
 * Long-video conditioning (issue 6): masks, conditional latent perturbation in training batches,
 * the s convention shared by training and sampling, guidance, and w = 0 vs plain conditional
 * sampling (checked against a DDIM loop written out here, not the library's sampler).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { ParamStore } from '../lib/nn/params';
import { ExperimentConfig, LongVideoConfig, UNetConfig } from '../lib/config/schema';
import { LVDM_SCHEDULE, NoiseSchedule, ddimTimesteps } from '../lib/diffusion';
import { Cond, EpsModel, Timesteps } from '../lib/diffusion/types';
import { UNet3D } from '../lib/models/unet3d';
import { LatentCache, LvdmTrainer } from '../lib/lvdm';
import {
  S_UNCOND,
  buildConditionalBatch,
  conditionalBatchPreparer,
  drawConditional,
  frameMask,
  longSections,
  maskRows,
  microBatched,
  sampleConditionalWindow,
  uncondFor,
  WindowSampling,
} from '../lib/hierarchical';

const ready = initBackend({ quiet: true });
const schedule = NoiseSchedule.fromConfig(LVDM_SCHEDULE);

function spec(over: Partial<LongVideoConfig> = {}): LongVideoConfig {
  return LongVideoConfig.parse({ role: 'prediction', window: 3, latent_stride: 2, cond_frames: 1, p_cond: 0.5, s_max: 250, ...over });
}

function unetCfg(over: Record<string, unknown> = {}): UNetConfig {
  return UNetConfig.parse({
    in_channels: 2,
    out_channels: 2,
    model_channels: 8,
    channel_mult: [1],
    num_res_blocks: 1,
    attention_resolutions: [1],
    head_channels: 8,
    temporal_length: 4,
    norm_groups: 4,
    mask_channel: true,
    s_embed: 'table',
    s_levels: 252,
    ...over,
  });
}

/** A tiny UNet whose zero-initialised output layers are made live, so mask and s change eps. */
function liveUNet(seed = 1): { net: UNet3D; store: ParamStore } {
  const store = new ParamStore(new Rng(seed));
  const net = new UNet3D(store, unetCfg());
  const rng = new Rng(seed + 100);
  for (const [name, v] of store.entries()) {
    if (/proj_out|out_layers\.3|^out\.2/.test(name)) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size, 0, 0.3), v.shape)));
  }
  return { net, store };
}

test('masks: prediction, interpolation and unconditional rows; bad windows are rejected', () => {
  assert.deepEqual(Array.from(frameMask('prediction', 4, 1)), [1, 0, 0, 0]);
  assert.deepEqual(Array.from(frameMask('prediction', 5, 2)), [1, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(frameMask('interpolation', 5)), [1, 0, 0, 0, 1]);
  assert.deepEqual(Array.from(frameMask('interpolation', 3)), [1, 0, 1]);
  assert.deepEqual(Array.from(frameMask('unconditional', 4)), [0, 0, 0, 0]);
  // The public code's prediction mask marked every frame as given: k must leave frames to generate.
  assert.throws(() => frameMask('prediction', 4, 4), /cond_frames must be an integer in \[1, 3\]/);
  assert.throws(() => frameMask('prediction', 4, 0), /cond_frames/);
  assert.throws(() => frameMask('interpolation', 2), /window must be >= 3/);
  // Mask choice per example follows p_cond (seeded draws; 4000 examples).
  for (const p of [0.5, 0.9]) {
    const d = drawConditional(new Rng(7), spec({ p_cond: p }), 4000, 8, 1, 1000);
    const frac = d.conditional.reduce((a, b) => a + b, 0) / 4000;
    assert.ok(Math.abs(frac - p) < 0.03, `p_cond ${p}: conditional fraction ${frac}`);
    const rows = maskRows(spec({ p_cond: p }), d.conditional);
    rows.forEach((r, i) => assert.deepEqual(Array.from(r), d.conditional[i] ? [1, 0, 0] : [0, 0, 0]));
  }
  const interp = maskRows(spec({ role: 'interpolation', window: 5, latent_stride: 1 }), [1, 0]);
  assert.deepEqual(interp.map((r) => Array.from(r)), [[1, 0, 0, 0, 1], [0, 0, 0, 0, 0]]);
});

test('config checks: mask channel, s embedding and s table size follow long.s_max', () => {
  const base = { name: 'x', data: { source: 'synthetic-sky', frames: 16, size: 8 } };
  const ok = ExperimentConfig.parse({ ...base, unet: unetCfg(), long: spec() });
  assert.equal(longSections(ok).long.s_max, 250);
  assert.throws(() => longSections(ExperimentConfig.parse({ ...base, unet: unetCfg({ s_levels: 251 }), long: spec() })), /s_levels is 251 but long.s_max 250 needs 252 rows/);
  assert.throws(() => longSections(ExperimentConfig.parse({ ...base, unet: unetCfg({ s_embed: 'none' }), long: spec() })), /network must be told s/);
  assert.throws(() => longSections(ExperimentConfig.parse({ ...base, unet: unetCfg(), long: spec({ s_max: null }) })), /set unet.s_embed: none/);
  assert.throws(() => longSections(ExperimentConfig.parse({ ...base, unet: unetCfg({ mask_channel: false }), long: spec() })), /mask_channel must be true/);
  assert.throws(() => longSections(ExperimentConfig.parse({ ...base, unet: unetCfg(), long: spec({ role: 'interpolation', window: 5, latent_stride: 2 }) })), /latent_stride must be 1/);
  assert.throws(() => ExperimentConfig.parse({ ...base, long: { ...spec(), extra: 1 } }), /extra/);
});

test('training batch: perturbation reaches only condition positions and equals q(z0, s); elsewhere q(z0, t)', async () => {
  await ready;
  const [B, L, h, w, c] = [8, 7, 2, 2, 2];
  const per = h * w * c;
  const z0host = Float32Array.from(new Rng(3).normalArray(B * L * per));
  const z0 = tf.tensor5d(z0host, [B, L, h, w, c]);
  for (const sp of [spec(), spec({ role: 'interpolation', window: 4, latent_stride: 1, p_cond: 0.6 }), spec({ s_max: null })]) {
    const before = tf.memory().numTensors;
    const d = drawConditional(new Rng(11), sp, B, L, per, schedule.T);
    assert.ok(d.conditional.includes(1) && d.conditional.includes(0), 'the draw has conditional and unconditional examples');
    const batch = buildConditionalBatch(z0, d, sp, schedule);
    const x = batch.x.dataSync();
    const x0 = batch.x0.dataSync();
    const mask = batch.cond!.mask.dataSync();
    const rows = maskRows(sp, d.conditional);
    const ab = schedule.alphasCumprod;
    let condPositions = 0;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < sp.window; j++) {
        const m = rows[b][j];
        assert.equal(mask[b * sp.window + j], m);
        const src = (b * L + d.offsets[b] + j * sp.latent_stride) * per;
        for (let i = 0; i < per; i++) {
          const z = z0host[src + i];
          const k = (b * sp.window + j) * per + i;
          assert.equal(x0[k], z, 'x0 holds the clean window (the v-prediction target needs it)');
          let ref: number;
          if (m === 1) {
            condPositions++;
            // z_s = sqrt(abar_s) z + sqrt(1 - abar_s) eps' (clean z without perturbation)
            ref = sp.s_max === null ? z : Math.sqrt(ab[d.s[b]!]) * z + Math.sqrt(1 - ab[d.s[b]!]) * d.sNoise[k];
          } else {
            ref = Math.sqrt(ab[d.t[b]]) * z + Math.sqrt(1 - ab[d.t[b]]) * d.noise[k];
          }
          assert.ok(Math.abs(x[k] - ref) < 1e-5, `x[${b},${j},${i}] = ${x[k]}, expected ${ref}`);
        }
      }
    }
    assert.ok(condPositions > 0);
    // s levels: s + 1 for conditional examples, S_UNCOND for the others; no s input without perturbation.
    if (sp.s_max === null) assert.equal(batch.cond!.s, undefined);
    else assert.deepEqual(Array.from(batch.cond!.s.dataSync()), Array.from(d.conditional, (cnd, b) => (cnd ? d.s[b]! + 1 : S_UNCOND)));
    // Loss on generated latents only: weights = 1 - m.
    assert.deepEqual(Array.from(batch.weights!.dataSync()), Array.from(mask, (m) => 1 - m));
    assert.deepEqual(Array.from(batch.target.dataSync()), Array.from(d.noise));
    // Changing only the perturbation draws (s, eps') moves condition positions and nothing else.
    if (sp.s_max !== null) {
      const d2 = { ...d, s: d.s.map((v) => (v === null ? null : (v + 97) % 251)), sNoise: d.sNoise.map((v) => -v) };
      const batch2 = buildConditionalBatch(z0, d2, sp, schedule);
      const x2 = batch2.x.dataSync();
      for (let k = 0; k < x.length; k++) {
        const m = mask[Math.floor(k / per)];
        if (m === 0) assert.equal(x2[k], x[k]);
      }
      assert.ok(x2.some((v, k) => mask[Math.floor(k / per)] === 1 && Math.abs(v - x[k]) > 1e-3));
      tf.dispose([batch2.x, batch2.target, batch2.x0, batch2.weights!, ...Object.values(batch2.cond!)]);
    }
    tf.dispose([batch.x, batch.target, batch.x0, batch.weights!, ...Object.values(batch.cond!)]);
    assert.equal(tf.memory().numTensors, before);
  }
  // loss_frames 'all' gives no weights; a window longer than the clip is an error naming the keys.
  const all = buildConditionalBatch(z0, drawConditional(new Rng(1), spec({ loss_frames: 'all' }), B, L, per, schedule.T), spec({ loss_frames: 'all' }), schedule);
  assert.equal(all.weights, undefined);
  tf.dispose([all.x, all.target, all.x0, ...Object.values(all.cond!)]);
  assert.throws(() => drawConditional(new Rng(1), spec({ window: 5, latent_stride: 2 }), B, L, per, schedule.T), /spans 9 latent frames but the cached clips have 7.*data.frames/);
  z0.dispose();
});

test('LvdmTrainer with the conditional preparer trains (finite loss, no leaked tensors)', async () => {
  await ready;
  const config = ExperimentConfig.parse({
    name: 'long-train-test',
    seed: 2,
    data: { source: 'synthetic-sky', frames: 16, size: 8 },
    unet: unetCfg(),
    diffusion: { loss: 'mse', optim: { kind: 'adamw', lr: 1e-3 }, train: { steps: 3, batch_size: 3, ema_decay: 0.9 } },
    long: spec(),
  });
  const n = 4;
  const shape: [number, number, number, number] = [6, 4, 4, 2];
  const per = shape.reduce((a, b) => a * b, 1);
  const cache = new LatentCache(Float32Array.from(new Rng(1).normalArray(n * per)), new Float32Array(n * per).fill(-20), n, shape, { shift: 0, scale: 1 });
  const trainer = new LvdmTrainer({ config, latents: cache, prepareBatch: conditionalBatchPreparer(longSections(config).long) });
  await trainer.trainStep(0);
  const before = tf.memory().numTensors;
  const logs = await trainer.trainStep(1);
  assert.ok(Number.isFinite(logs.loss) && logs.loss > 0);
  assert.equal(tf.memory().numTensors, before);
  trainer.dispose();
});

/** Records every forward's inputs, then delegates. */
function spy(model: EpsModel): { model: EpsModel; calls: { x: Float32Array; t: number[]; mask: Float32Array; s: number[] | null }[] } {
  const calls: { x: Float32Array; t: number[]; mask: Float32Array; s: number[] | null }[] = [];
  return {
    calls,
    model: (x: tf.Tensor5D, t: Timesteps, cond?: Cond) => {
      calls.push({
        x: x.dataSync() as Float32Array,
        t: Array.from(t instanceof Int32Array ? t : t.dataSync()),
        mask: cond!.mask.dataSync() as Float32Array,
        s: cond!.s ? Array.from(cond!.s.dataSync()) : null,
      });
      return model(x, t, cond);
    },
  };
}

/**
 * Independent reference for conditional DDIM (eta 0, trailing steps) with fixed perturbed conditions
 * and guidance, on host arrays: every step writes z_s into condition positions, eps = (1 + w) eps_c
 * - w eps_u, x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) eps; finally clean conditions.
 */
function referenceDdim(net: UNet3D, shape: [number, number, number, number, number], maskRow: Float32Array, zCond: Float32Array, rngs: Rng[], s: number, w: number, steps: number): Float32Array {
  const [b, W] = shape;
  const per = shape.slice(2).reduce((a, c) => a * c, 1);
  const x = new Float32Array(b * W * per);
  const zs = new Float32Array(b * W * per);
  const ab = schedule.alphasCumprod;
  rngs.forEach((r, i) => {
    x.set(r.fork('xT').normalArray(W * per), i * W * per);
    const e = r.fork('perturb').normalArray(W * per);
    for (let k = 0; k < W * per; k++) zs[i * W * per + k] = Math.sqrt(ab[s]) * zCond[i * W * per + k] + Math.sqrt(1 - ab[s]) * e[k];
  });
  const isCond = (k: number): boolean => maskRow[Math.floor(k / per) % W] === 1;
  const write = (v: Float32Array, src: Float32Array): void => {
    for (let k = 0; k < v.length; k++) if (isCond(k)) v[k] = src[k];
  };
  const eps = (xin: Float32Array, t: number, uncond: boolean): Float32Array =>
    tf.tidy(() => {
      const mask = tf.tensor2d(uncond ? new Float32Array(b * W) : Float32Array.from({ length: b * W }, (_, i) => maskRow[i % W]), [b, W]);
      const sl = tf.tensor1d(new Int32Array(b).fill(uncond ? 0 : s + 1), 'int32');
      return net.apply(tf.tensor5d(xin, shape), new Int32Array(b).fill(t), { mask, s: sl }).dataSync() as Float32Array;
    });
  const ts = ddimTimesteps(schedule.T, steps, 'trailing');
  write(x, zs);
  for (let i = ts.length - 1; i >= 0; i--) {
    const t = ts[i];
    const a = ab[t];
    const aPrev = i > 0 ? ab[ts[i - 1]] : 1;
    write(x, zs);
    const ec = eps(x, t, false);
    const eu = w > 0 ? eps(x, t, true) : ec;
    for (let k = 0; k < x.length; k++) {
      const e = (1 + w) * ec[k] - w * eu[k];
      const x0 = (x[k] - Math.sqrt(1 - a) * e) / Math.sqrt(a);
      x[k] = Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev) * e;
    }
    write(x, zs);
  }
  write(x, zCond);
  return x;
}

test('sampling: fixed perturbed conditions every step; guidance = (1 + w) eps_c - w eps_u; w = 0 is plain conditional DDIM', async () => {
  await ready;
  const { net, store } = liveUNet(4);
  const sp = spec({ window: 4, cond_frames: 2 });
  const shape: [number, number, number, number, number] = [2, 4, 4, 4, 2];
  const per = 4 * 4 * 2;
  const maskRow = frameMask('prediction', 4, 2);
  const zCondHost = Float32Array.from(new Rng(9).normalArray(2 * 4 * per));
  const zCond = tf.tensor5d(zCondHost, shape);
  const rngs = [new Rng(21), new Rng(22)];
  const s = 100;
  const before = tf.memory().numTensors;
  for (const w of [0, 0.7]) {
    const sampling: WindowSampling = { sampler: 'ddim', steps: 3, eta: 0, s, w };
    const sp1 = spy(net.asEpsModel());
    const out = await sampleConditionalWindow({ model: sp1.model, schedule, spec: sp, shape, mask: maskRow, conditions: zCond, sampling, rngs });
    const got = out.dataSync() as Float32Array;
    out.dispose();
    const ref = referenceDdim(net, shape, maskRow, zCondHost, rngs, s, w, 3);
    const err = got.reduce((m, v, k) => Math.max(m, Math.abs(v - ref[k])), 0);
    assert.ok(err < 2e-3, `w = ${w}: max |sample - reference| = ${err}`);
    // Condition positions of the result are the clean conditions.
    for (let k = 0; k < got.length; k++) if (maskRow[Math.floor(k / per) % 4] === 1) assert.equal(got[k], zCondHost[k]);
    // One forward per step (batched guidance doubles the batch); the noisy condition is identical at every step.
    assert.equal(sp1.calls.length, 3);
    const first = sp1.calls[0].x;
    for (const call of sp1.calls) {
      assert.equal(call.x.length, (w > 0 ? 2 : 1) * got.length);
      for (let k = 0; k < got.length; k++) if (maskRow[Math.floor(k / per) % 4] === 1) assert.equal(call.x[k], first[k]);
    }
    // ... and equals q(z_cond, s) with the clip's perturbation noise.
    const e0 = rngs[0].fork('perturb').normalArray(4 * per);
    const ab = schedule.alphasCumprod[s];
    for (let k = 0; k < 4 * per; k++) {
      if (maskRow[Math.floor(k / per)] === 1) assert.ok(Math.abs(first[k] - (Math.sqrt(ab) * zCondHost[k] + Math.sqrt(1 - ab) * e0[k])) < 1e-5);
    }
  }
  // w = 0 and w > 0 differ (the unconditional branch is really used).
  const a = await sampleConditionalWindow({ model: net.asEpsModel(), schedule, spec: sp, shape, mask: maskRow, conditions: zCond, sampling: { sampler: 'ddim', steps: 2, eta: 0, s, w: 0 }, rngs });
  const g = await sampleConditionalWindow({ model: net.asEpsModel(), schedule, spec: sp, shape, mask: maskRow, conditions: zCond, sampling: { sampler: 'ddim', steps: 2, eta: 0, s, w: 1 }, rngs });
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(a, g))).dataSync()[0]) > 1e-3);
  tf.dispose([a, g]);
  assert.equal(tf.memory().numTensors, before);
  zCond.dispose();
  store.dispose();
});

test('the unconditional branch at sampling is what training saw (all-zero mask, s level S_UNCOND)', async () => {
  await ready;
  const { net, store } = liveUNet(5);
  const sp = spec({ window: 3, cond_frames: 1 });
  // Training: unconditional examples (p_cond 0) and conditional ones (p_cond 1).
  const z0 = tf.tensor5d(new Rng(1).normalArray(4 * 5 * 32), [4, 5, 4, 4, 2]);
  const prep = conditionalBatchPreparer({ ...sp, p_cond: 0 });
  const tu = prep(z0, { schedule, rng: new Rng(3), step: 0 });
  const trainUncondMask = Array.from(tu.cond!.mask.dataSync());
  const trainUncondS = Array.from(tu.cond!.s.dataSync());
  assert.deepEqual(trainUncondMask, new Array(12).fill(0));
  assert.deepEqual(trainUncondS, new Array(4).fill(S_UNCOND));
  const tc = conditionalBatchPreparer({ ...sp, p_cond: 1 })(z0, { schedule, rng: new Rng(3), step: 0 });
  const condLevels = Array.from(tc.cond!.s.dataSync());
  assert.ok(condLevels.every((v) => v >= 1), 'conditional training examples never use the unconditional level');
  // Sampling with guidance: the second half of the batched forward is the unconditional branch.
  const sp1 = spy(net.asEpsModel());
  const shape: [number, number, number, number, number] = [4, 3, 4, 4, 2];
  const zc = tf.tensor5d(new Rng(2).normalArray(4 * 3 * 32), shape);
  const out = await sampleConditionalWindow({
    model: sp1.model,
    schedule,
    spec: sp,
    shape,
    mask: frameMask('prediction', 3, 1),
    conditions: zc,
    sampling: { sampler: 'ddim', steps: 1, eta: 0, s: 40, w: 0.5 },
    rngs: [1, 2, 3, 4].map((i) => new Rng(i)),
  });
  const call = sp1.calls[0];
  assert.deepEqual(Array.from(call.mask.subarray(12)), trainUncondMask);
  assert.deepEqual(call.s!.slice(4), trainUncondS);
  // The conditional half uses the training convention for s = 40: level 41, mask [1, 0, 0].
  assert.deepEqual(call.s!.slice(0, 4), [41, 41, 41, 41]);
  assert.deepEqual(Array.from(call.mask.subarray(0, 12)), [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]);
  // uncondFor (used by the sampler) gives the same tensors.
  const u = uncondFor(sp, 4, 3);
  assert.deepEqual(Array.from(u.s.dataSync()), trainUncondS);
  // s outside the trained range, or guidance for a model that never saw the unconditional case, are errors.
  const base = { model: net.asEpsModel(), schedule, shape, mask: frameMask('prediction', 3, 1), conditions: zc, rngs: [1, 2, 3, 4].map((i) => new Rng(i)) };
  await assert.rejects(sampleConditionalWindow({ ...base, spec: sp, sampling: { sampler: 'ddim', steps: 1, eta: 0, s: 251, w: 0 } }), /s must be an integer in \[0, 250\]/);
  tf.dispose([out, z0, zc, tu.x, tu.target, tu.x0, tu.weights!, ...Object.values(tu.cond!), tc.x, tc.target, tc.x0, tc.weights!, ...Object.values(tc.cond!), ...Object.values(u)]);
  store.dispose();
});

test('micro-batched forwards equal one big forward', async () => {
  await ready;
  const { net, store } = liveUNet(6);
  const x = tf.tensor5d(new Rng(1).normalArray(5 * 3 * 32), [5, 3, 4, 4, 2]);
  const t = Int32Array.from([1, 50, 300, 700, 999]);
  const cond = { mask: tf.tensor2d([1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0], [5, 3]), s: tf.tensor1d([3, 0, 7, 9, 0], 'int32') };
  const full = net.apply(x, t, cond);
  const before = tf.memory().numTensors;
  const parts = microBatched(net.asEpsModel(), 2)(x, t, cond);
  assert.equal(tf.memory().numTensors, before + 1);
  const err = tf.tidy(() => tf.max(tf.abs(tf.sub(full, parts))).dataSync()[0]);
  assert.ok(err < 1e-5, `max difference ${err}`);
  tf.dispose([x, full, parts, ...Object.values(cond)]);
  store.dispose();
});
