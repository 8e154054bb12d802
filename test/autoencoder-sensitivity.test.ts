/**
 * lib/autoencoder/sensitivity.ts against a reference written out step by step on a tiny untrained
 * autoencoder: noise is added in the normalised latent space (z = mean + sigma * eps / scale), and
 * no tensors are left behind. lib/autoencoder/noise-finetune.ts: only the decoder moves, the noise
 * reaches it, no leaks, and an interrupted run resumes to the uninterrupted run's numbers; with
 * train_encoder the encoder moves against noise relative to the latents' spread and the saved
 * latent statistics are those of the trained encoder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ParamStore } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { DecoderFinetuneConfig, ExperimentConfig } from '../lib/config/schema';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { clipsToTensor, computeLatentStats, loadAutoencoder, saveAutoencoderWeights } from '../lib/autoencoder/io';
import { latentNoisePsnr } from '../lib/autoencoder/sensitivity';
import { DecoderNoiseTrainer, finetuneDecoder, isDecoderParam, relativeLatentNoise } from '../lib/autoencoder/noise-finetune';
import { LAST_CHECKPOINT, runTraining, trainLoopOptions } from '../lib/train/loop';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { datasetFromConfig } from '../data/from-config';
import { psnr } from '../metrics/quality';

const SCALE = 2;
const SHIFT = 0.1;

/** Reference: perturb the raw posterior mean by sigma * eps / scale (what normalised noise means), decode, PSNR. */
async function reference(file: string, clips: Uint8Array[], sigma: number, seed: number): Promise<number> {
  const loaded = loadAutoencoder(file);
  const x = clipsToTensor(clips, 4, 8, 8);
  const post = loaded.ae.encode(x);
  const eps = new Rng(seed).normalArray(post.mean.size);
  const z = tf.add(post.mean, tf.tensor(Array.from(eps, (e) => (sigma * e) / SCALE), post.mean.shape)) as tf.Tensor5D;
  const y = await loaded.ae.decode(z).data();
  const decoded = Uint8Array.from(y, (v) => Math.min(255, Math.max(0, Math.round((v + 1) * 127.5))));
  const real = new Uint8Array(clips.length * clips[0].length);
  clips.forEach((c, i) => real.set(c, i * c.length));
  tf.dispose([x, post.mean, post.logvar, z]);
  loaded.dispose();
  return psnr(real, decoded);
}

/** A tiny untrained autoencoder file with latent statistics; returns its path and config. */
function tinyAutoencoder(dir: string) {
  const cfg = ExperimentConfig.parse({
    name: 'sensitivity-test',
    data: { source: 'synthetic-shapes', frames: 4, size: 8, num_videos: 8, held_out: 1 },
    autoencoder: { model: { channels: [8], temporal_factor: 2, spatial_factor: 2, latent_channels: 2, norm_groups: 4, enc_res_blocks: 1, dec_res_blocks: 1 }, train: { steps: 1, batch_size: 1 } },
  });
  const store = new ParamStore(new Rng(5));
  new VideoAutoencoder(store, cfg.autoencoder!.model);
  const file = path.join(dir, 'autoencoder.safetensors');
  saveAutoencoderWeights(file, store, cfg, { shift: SHIFT, scale: SCALE, mean: -SHIFT, std: 1 / SCALE, count: 1 }, 0);
  store.dispose();
  return { file, cfg };
}

test('latentNoisePsnr: noise in the normalised latent space, against a step-by-step reference; no leaks', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-sens-'));
  const { file } = tinyAutoencoder(dir);
  const rng = new Rng(9);
  const clips = [0, 1].map(() => Uint8Array.from({ length: 4 * 8 * 8 * 3 }, () => Math.floor(rng.uniform() * 256)));

  const sigmas = [0, 2, 8];
  const before = tf.memory().numTensors;
  const loaded = loadAutoencoder(file);
  const got = await latentNoisePsnr(loaded, clips, [4, 8, 8], sigmas, 7);
  loaded.dispose();
  assert.equal(tf.memory().numTensors, before, 'tensors left behind');
  for (let i = 0; i < sigmas.length; i++) {
    const want = await reference(file, clips, sigmas[i], 7);
    assert.ok(Math.abs(got[i] - want) < 0.02, `sigma ${sigmas[i]}: ${got[i]} dB, reference ${want} dB`);
  }
  // The noise reaches the decoder: the largest sigma moves the PSNR measurably.
  assert.ok(Math.abs(got[2] - got[0]) > 0.05, `sigma 8 changed PSNR by only ${got[2] - got[0]} dB`);
  fs.rmSync(dir, { recursive: true, force: true });
});

const FINETUNE = DecoderFinetuneConfig.parse({ sigma_max: 0, optim: { lr: 1e-2, betas: [0.5, 0.9], warmup_steps: 1, decay: 'cosine', grad_clip: 1 }, train: { steps: 6, batch_size: 2, ckpt_every: 2, log_every: 1 } });

test('DecoderNoiseTrainer: the encoder stays frozen, the decoder moves, the noise reaches it; no leaks', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-dnf-'));
  const { file, cfg } = tinyAutoencoder(dir);
  const dataset = datasetFromConfig(cfg.data!, 'train', 0);
  const run = async (sigmaMax: number) => {
    const loaded = loadAutoencoder(file);
    const before = new Map(loaded.store.entries().map(([n, v]) => [n, v.dataSync().slice()]));
    const tensors = tf.memory().numTensors;
    const trainer = new DecoderNoiseTrainer(loaded, dataset, { ...FINETUNE, sigma_max: sigmaMax }, 4);
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) losses.push((await trainer.trainStep(step)).loss);
    trainer.dispose();
    const moved = loaded.store.entries().filter(([n, v]) => v.dataSync().some((x, i) => x !== before.get(n)![i])).map(([n]) => n);
    loaded.dispose();
    // The optimiser's moments are gone with it; the autoencoder's own tensors were loaded before counting.
    assert.equal(tf.memory().numTensors, tensors - before.size, 'tensors left behind');
    return { losses, moved, names: [...before.keys()] };
  };
  const quiet = await run(0);
  const noisy = await run(4);
  assert.equal(quiet.losses.length, 3);
  assert.ok(quiet.moved.length > 0, 'no parameter changed');
  assert.deepEqual(quiet.moved.filter((n) => !isDecoderParam(n)), [], 'encoder parameters changed');
  assert.ok(quiet.names.some((n) => n.startsWith('encoder.')), 'the test autoencoder has an encoder');
  // Same batches and weights at step 1: only the latent noise differs.
  assert.notEqual(noisy.losses[0], quiet.losses[0], 'sigma_max 4 gave the same first loss as 0');
  const loaded = loadAutoencoder(file);
  assert.throws(() => new DecoderNoiseTrainer(loaded, dataset, { ...FINETUNE, sigma_max: -1 }, 0), /sigma_max must be >= 0, got -1/);
  loaded.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('DecoderNoiseTrainer with motion_weight: the first loss grows linearly in lambda, a threshold above all motion changes nothing, a threshold alone is refused', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-dnf-motion-'));
  const { file, cfg } = tinyAutoencoder(dir);
  const dataset = datasetFromConfig(cfg.data!, 'train', 0);
  const firstLoss = async (motion: { motion_weight?: number; motion_threshold?: number }): Promise<number> => {
    const loaded = loadAutoencoder(file);
    const tensors = tf.memory().numTensors;
    const trainer = new DecoderNoiseTrainer(loaded, dataset, { ...FINETUNE, ...motion }, 4);
    const { loss } = await trainer.trainStep(0);
    trainer.dispose();
    assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
    loaded.dispose();
    return loss;
  };
  const plain = await firstLoss({});
  const one = await firstLoss({ motion_weight: 1 });
  const four = await firstLoss({ motion_weight: 4 });
  assert.ok(one > plain + 1e-5, `motion_weight 1 (${one}) should exceed the plain loss (${plain}) on moving shapes`);
  assert.ok(Math.abs(four - plain - 4 * (one - plain)) < 1e-4 * plain, `loss ${four} at lambda 4 is not plain + 4 x the excess at lambda 1 (${plain}, ${one})`);
  assert.equal(await firstLoss({ motion_weight: 4, motion_threshold: 10 }), plain, 'a threshold above all motion is the uniform loss');
  const loaded = loadAutoencoder(file);
  assert.throws(() => new DecoderNoiseTrainer(loaded, dataset, { ...FINETUNE, motion_threshold: 0.3 }, 0), /finetune.motion_threshold is 0.3 but finetune.motion_weight is unset or 0/);
  loaded.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('DecoderNoiseTrainer: a run interrupted after a checkpoint and resumed ends with the parameters and state of an uninterrupted one', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-dnr-'));
  const { file, cfg } = tinyAutoencoder(dir);
  const dataset = datasetFromConfig(cfg.data!, 'train', 0);
  const ft = { ...FINETUNE, sigma_max: 0.8 };
  const train = async (out: string, resume: boolean, failAt: number | null) => {
    const loaded = loadAutoencoder(file);
    const trainer = new DecoderNoiseTrainer(loaded, dataset, ft, 3);
    // Failing inside a step stands in for SIGKILL: only the files written so far survive.
    const step = trainer.trainStep.bind(trainer);
    trainer.trainStep = (s) => (s === failAt ? Promise.reject(new Error('killed')) : step(s));
    try {
      await runTraining(trainer, trainLoopOptions(ft.train, { outDir: out, config: { finetune: ft }, resume, progress: false }, 'finetune-decoder'));
    } finally {
      trainer.dispose();
      loaded.dispose();
    }
  };
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  await train(a, false, null);
  await assert.rejects(train(b, false, 3), /killed/);
  assert.equal(loadCheckpoint(path.join(b, LAST_CHECKPOINT)).meta.step, 2, 'the interrupted run left its step-2 checkpoint');
  await train(b, true, null);
  const ca = loadCheckpoint(path.join(a, LAST_CHECKPOINT));
  const cb = loadCheckpoint(path.join(b, LAST_CHECKPOINT));
  assert.equal(cb.meta.step, 6);
  assert.deepEqual([...cb.tensors.keys()].sort(), [...ca.tensors.keys()].sort());
  assert.ok([...ca.tensors.keys()].some((k) => k.startsWith('optim.')), 'the optimiser moments are checkpointed');
  for (const [name, t] of ca.tensors) assert.deepEqual(Buffer.from(cb.tensors.get(name)!.data.buffer), Buffer.from(t.data.buffer), `tensor ${name} differs after resume`);
  assert.deepEqual(cb.meta.state, ca.meta.state, 'noise RNG, loader and optimiser step match');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('relativeLatentNoise: z + sigma_i * std(z) * eps against a float64 reference; scaling z scales the result; no leaks', async () => {
  await initBackend({ quiet: true });
  const rng = new Rng(11);
  const shape: [number, number, number, number, number] = [2, 2, 3, 3, 2];
  const n = shape.reduce((a, c) => a * c, 1);
  const zv = Float32Array.from(rng.normalArray(n), (v, i) => 3 * v + (i % 5) - 1);
  const ev = Float32Array.from(rng.normalArray(n));
  const sigma = [0.25, 0.9];
  const mean = zv.reduce((a, v) => a + v, 0) / n;
  const std = Math.sqrt(zv.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  const per = n / 2;
  const expected = Array.from(zv, (v, i) => v + sigma[Math.floor(i / per)] * std * ev[i]);
  const tensors = tf.memory().numTensors;
  const z = tf.tensor5d(zv, shape);
  const eps = tf.tensor5d(ev, shape);
  const zs = tf.mul(z, 7) as tf.Tensor5D;
  const out = relativeLatentNoise(z, sigma, eps);
  const scaled = relativeLatentNoise(zs, sigma, eps);
  const got = out.dataSync();
  const gotScaled = scaled.dataSync();
  expected.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-4 * (1 + Math.abs(v)), `element ${i}: ${got[i]} vs ${v}`));
  got.forEach((v, i) => assert.ok(Math.abs(gotScaled[i] - 7 * v) < 1e-4 * (1 + Math.abs(7 * v)), `scaled element ${i}`));
  tf.dispose([z, eps, zs, out, scaled]);
  assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
});

test('finetuneDecoder with train_encoder: the encoder moves, the latent statistics are measured again and saved; no leaks', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-dnj-'));
  const { file, cfg } = tinyAutoencoder(dir);
  const dataset = datasetFromConfig(cfg.data!, 'train', 0);
  const joint = { ...FINETUNE, sigma_max: 0.5, train_encoder: true };
  // The trainer alone: every parameter trains, nothing is left behind.
  const loaded = loadAutoencoder(file);
  const before = new Map(loaded.store.entries().map(([n, v]) => [n, v.dataSync().slice()]));
  const tensors = tf.memory().numTensors;
  const trainer = new DecoderNoiseTrainer(loaded, dataset, joint, 4);
  for (let step = 0; step < 2; step++) assert.ok(Number.isFinite((await trainer.trainStep(step)).loss));
  trainer.dispose();
  const moved = loaded.store.entries().filter(([n, v]) => v.dataSync().some((x, i) => x !== before.get(n)![i])).map(([n]) => n);
  assert.ok(moved.some((n) => n.startsWith('encoder.')), `encoder parameters did not move (moved: ${moved.join(', ')})`);
  assert.ok(moved.some(isDecoderParam), 'decoder parameters did not move');
  assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
  loaded.dispose();
  // The stage end to end: the saved statistics are those of the trained encoder, not the original ones.
  const out = path.join(dir, 'dec');
  const ev = await finetuneDecoder({ autoencoder: file, data: cfg.data!, seed: 2, finetune: joint, outDir: out, progress: false, log: () => {} }, 'autoencoder.safetensors');
  const tuned = loadAutoencoder(path.join(out, 'autoencoder.safetensors'));
  const again = await computeLatentStats(tuned.ae, datasetFromConfig(cfg.data!, 'train', 2), cfg.autoencoder!.latent_stats_clips, 2);
  assert.ok(tuned.latent && Math.abs(tuned.latent.scale - again.scale) < 1e-9 * again.scale && Math.abs(tuned.latent.shift - again.shift) < 1e-9, 'saved stats differ from the trained encoder\'s');
  assert.notEqual(tuned.latent.scale, SCALE, 'the original statistics were kept');
  assert.deepEqual(ev.latent, tuned.latent);
  assert.equal(ev.held_out.psnr.length, 3);
  tuned.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
