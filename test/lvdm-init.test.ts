/**
 * Starting a video model from an image model's weights (lib/lvdm/init.ts): with the temporal layers
 * fresh the video model is exactly the image model applied to each frame; 'copy' copies every
 * tensor; train 'temporal' moves only the temporal attention layers and resumes to the same
 * numbers; mismatched networks and files are errors naming the file and the tensor. No leaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { ExperimentConfig } from '../lib/config/schema';
import { LatentCache, LvdmTrainer, loadLvdm, saveLvdmWeights } from '../lib/lvdm';
import type { InitSpec } from '../lib/lvdm';
import { saveCheckpoint } from '../lib/train/checkpoint';

const ready = initBackend({ quiet: true });

const UNET = { in_channels: 3, out_channels: 3, model_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [1, 2], head_channels: 8, temporal_length: 2, norm_groups: 4, self_condition: true };

function config(unet: Record<string, unknown> = {}): ExperimentConfig {
  return ExperimentConfig.parse({
    name: 'init-test',
    seed: 3,
    data: { source: 'synthetic-shapes', frames: 4, size: 8, num_videos: 6 },
    unet: { ...UNET, ...unet },
    diffusion: { loss: 'mse', prediction: 'v', optim: { kind: 'adamw', lr: 1e-2 }, train: { steps: 4, batch_size: 2, ema_decay: 0.5 } },
  });
}

/** A latent cache of n random clips of `frames` latent frames of 4x4x3. */
function cache(frames: number, n = 4): LatentCache {
  const per = frames * 4 * 4 * 3;
  return new LatentCache(new Rng(frames).normalArray(n * per), new Float32Array(n * per).fill(-3), n, [frames, 4, 4, 3], { shift: 0, scale: 1 });
}

/** An image model (one latent frame) trained a few steps, its sampling weights written to a file. */
async function imageModel(dir: string, cfg = config(), name = 'image'): Promise<string> {
  const c = cache(1);
  const t = new LvdmTrainer({ config: cfg, latents: c });
  for (let i = 0; i < 3; i++) await t.trainStep(i);
  const file = path.join(dir, `${name}.safetensors`);
  saveLvdmWeights(file, t.samplingWeights(), cfg, { autoencoder: '', latent: c.norm, latent_shape: c.shape, clip: { frames: 2, height: 8, width: 8 }, ema: true }, 3);
  t.dispose();
  return file;
}

function same(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

test("init from an image model without temporal layers: the video model is that image model on each frame; 'fresh' and 'copy' from one with them", async () => {
  await ready;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-init-'));
  try {
    const flat = await imageModel(dir, config({ temporal_attention: false }), 'flat');
    const withTemporal = await imageModel(dir);
    const image = loadLvdm(flat);
    const video = new LvdmTrainer({ config: config(), latents: cache(3), init: { weights: flat, temporal: 'fresh', train: 'all' } });
    const temporal = new Set(video.unet.temporalParamNames());
    // Seven attention blocks (one per level going down, the middle, two per level going up), eight
    // temporal tensors each: norm_t, qkv_t, proj_out_t (weight, bias) and the two relative-position tables.
    assert.equal(temporal.size, 56);
    assert.ok([...temporal].every((n) => /\.(norm_t|qkv_t|proj_out_t|relative_position_[kv])\./.test(n)), [...temporal].join(', '));
    assert.deepEqual(video.initReport, { copied: image.store.names().length, fresh: 56, frozen: 0 });
    const img = image.store.snapshot();
    for (const [n, v] of video.store.snapshot()) if (!temporal.has(n)) assert.ok(same(v.data, img.get(n)!.data), n);
    const count = tf.memory().numTensors;
    const x = tf.tidy(() => tf.randomNormal([2, 3, 4, 4, 3], 0, 1, 'float32', 7) as tf.Tensor5D);
    const sc = tf.tidy(() => tf.randomNormal([2, 3, 4, 4, 3], 0, 1, 'float32', 8) as tf.Tensor5D);
    const t = Int32Array.from([10, 700]);
    const frame = (f: number) => (v: tf.Tensor5D) => tf.slice(v, [0, f, 0, 0, 0], [2, 1, 4, 4, 3]);
    const perFrame = tf.tidy(() => tf.concat([0, 1, 2].map((f) => image.unet.apply(frame(f)(x), t, { self_cond: frame(f)(sc) })), 1));
    const maxDiff = (m: LvdmTrainer): number => tf.tidy(() => tf.max(tf.abs(tf.sub(m.unet.apply(x, t, { self_cond: sc }), perFrame))).dataSync()[0]);
    const diff = maxDiff(video);
    assert.ok(diff < 1e-5, `the video model differs from the image model on each frame by ${diff}`);
    // From an image model that has temporal layers: 'fresh' drops its one-frame temporal maps, 'copy' keeps them; neither is the other image model.
    const fresh = new LvdmTrainer({ config: config(), latents: cache(3), init: { weights: withTemporal, temporal: 'fresh', train: 'all' } });
    const copied = new LvdmTrainer({ config: config(), latents: cache(3), init: { weights: withTemporal, temporal: 'copy', train: 'all' } });
    assert.deepEqual(copied.initReport, { copied: image.store.names().length + 56, fresh: 0, frozen: 0 });
    const src = loadLvdm(withTemporal).store;
    for (const [n, v] of copied.store.snapshot()) assert.ok(same(v.data, src.get(n).dataSync() as Float32Array), n);
    assert.ok(fresh.store.snapshot().get('input_blocks.1.1.proj_out_t.weight')!.data.every((v) => v === 0));
    assert.ok(maxDiff(fresh) > 1e-3 && maxDiff(copied) > 1e-3);
    for (const m of [fresh, copied]) m.dispose();
    src.dispose();
    tf.dispose([x, sc, perFrame]);
    assert.equal(tf.memory().numTensors, count);
    assert.throws(() => new LvdmTrainer({ config: config(), latents: cache(3), init: { weights: flat, temporal: 'copy', train: 'all' } }), /flat\.safetensors: it has no tensor for this model's .*norm_t/);
    video.dispose();
    image.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("train 'temporal': only the temporal attention layers move; a resumed run gives the same numbers; no leaks", async () => {
  await ready;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-init-'));
  try {
    const weights = await imageModel(dir, config({ temporal_attention: false }));
    const spec: InitSpec = { weights, temporal: 'fresh', train: 'temporal' };
    const a = new LvdmTrainer({ config: config(), latents: cache(3), init: spec });
    const temporal = new Set(a.unet.temporalParamNames());
    assert.deepEqual(a.store.trainable().map(([n]) => n).sort(), [...temporal].sort());
    assert.equal(a.initReport!.frozen, a.store.names().length - temporal.size);
    const before = a.store.snapshot();
    const losses: number[] = [];
    await a.trainStep(0);
    const tensors = a.checkpointTensors();
    const state = JSON.parse(JSON.stringify(a.checkpointState())) as Record<string, unknown>;
    const count = tf.memory().numTensors;
    for (let i = 1; i < 3; i++) losses.push((await a.trainStep(i)).loss);
    assert.equal(tf.memory().numTensors, count, 'tensors leaked across training steps');
    const after = a.store.snapshot();
    for (const [n, v] of after) assert.equal(same(v.data, before.get(n)!.data), !temporal.has(n), `${n} ${temporal.has(n) ? 'did not move' : 'moved'}`);
    // The sampling weights: EMA of the temporal layers, the frozen image layers as they were.
    for (const [n, v] of a.samplingWeights()) if (!temporal.has(n)) assert.ok(same(v.data, before.get(n)!.data), n);
    const b = new LvdmTrainer({ config: config(), latents: cache(3), init: spec });
    b.restore(tensors, state, 1, 'test');
    const lb: number[] = [];
    for (let i = 1; i < 3; i++) lb.push((await b.trainStep(i)).loss);
    assert.deepEqual(lb, losses);
    a.dispose();
    b.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('init errors name the file, the tensor and what was expected', async () => {
  await ready;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-init-'));
  try {
    const weights = await imageModel(dir);
    const spec: InitSpec = { weights, temporal: 'fresh', train: 'all' };
    const make = (cfg: ExperimentConfig, s: InitSpec = spec) => new LvdmTrainer({ config: cfg, latents: cache(3), init: s }).dispose();
    const count = tf.memory().numTensors;
    assert.throws(() => make(config({ model_channels: 16, head_channels: 16 })), (e: Error) => e.message.includes(weights) && /tensor '.+' is \[.+\], this model's is \[.+\]; init needs the same unet section/.test(e.message));
    assert.throws(() => make(config({ self_condition: false })), (e: Error) => e.message.includes(weights) && /input_blocks\.0\.0\.weight/.test(e.message));
    assert.throws(() => make(config({ num_classes: 3 })), /has no tensor for this model's class_emb\.weight; init needs the same unet section/);
    assert.throws(() => make(config({ temporal_attention: false })), /norm_t\.bias.* are not parameters of this model/);
    assert.throws(() => make(config({ temporal_attention: false }), { ...spec, train: 'temporal' }), /train 'temporal' but this model has no temporal attention \(unet\.temporal_attention is false\)/);
    const notLvdm = path.join(dir, 'ae.safetensors');
    saveCheckpoint(notLvdm, new Map([['w', { shape: [1], data: new Float32Array(1) }]]), { kind: 'autoencoder', step: 0, config: {}, state: {} });
    assert.throws(() => make(config(), { ...spec, weights: notLvdm }), new RegExp(`${notLvdm.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: expected a latent diffusion model`));
    assert.throws(() => make(config(), { ...spec, weights: path.join(dir, 'missing.safetensors') }), /missing\.safetensors: checkpoint not found/);
    assert.equal(tf.memory().numTensors, count, 'a failed init leaked tensors');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
