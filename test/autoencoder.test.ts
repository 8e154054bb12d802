import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ParamStore } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { VideoAutoencoder, klDivergence, stageStrides } from '../lib/autoencoder/model';
import { AutoencoderTrainer } from '../lib/autoencoder/train';
import { reconstructClips } from '../lib/autoencoder/pipeline';
import { AutoencoderModelConfig, ExperimentConfig } from '../lib/config/schema';
import { validateConfig } from '../lib/config/load';
import { SyntheticDataset } from '../data/synthetic';
import { psnrU8 } from './helpers';

function tinyModel(ft: number, fs: number, channels: number[]): AutoencoderModelConfig {
  return AutoencoderModelConfig.parse({ channels, temporal_factor: ft, spatial_factor: fs, latent_channels: 3, norm_groups: 4, enc_res_blocks: 1, dec_res_blocks: 1 });
}

test('stage strides follow (ft, fs) as in LVDM: (2,2,2),(2,2,2),(1,2,2) for ft=4, fs=8', () => {
  assert.deepEqual(stageStrides({ temporal_factor: 4, spatial_factor: 8, channels: [1, 2, 3] }), [
    [2, 2, 2],
    [2, 2, 2],
    [1, 2, 2],
  ]);
  assert.throws(() => stageStrides({ temporal_factor: 4, spatial_factor: 8, channels: [1, 2] }), /autoencoder.model.channels: expected 3 entries/);
  assert.throws(() => stageStrides({ temporal_factor: 3, spatial_factor: 8, channels: [1, 2, 3] }), /powers of two/);
});

test('encoder/decoder shapes for several (ft, fs)', async () => {
  await initBackend({ quiet: true });
  const cases: [number, number, number[], number, number][] = [
    [1, 2, [8], 4, 8],
    [2, 2, [8], 4, 8],
    [2, 4, [8, 8], 4, 16],
    [4, 4, [4, 8], 8, 16],
  ];
  for (const [ft, fs, ch, t, hw] of cases) {
    const store = new ParamStore(new Rng(1));
    const ae = new VideoAutoencoder(store, tinyModel(ft, fs, ch));
    const before = tf.memory().numTensors;
    const x = tf.randomUniform([2, t, hw, hw, 3], -1, 1, 'float32', 3) as tf.Tensor5D;
    const p = ae.encode(x);
    assert.deepEqual(p.mean.shape, [2, t / ft, hw / fs, hw / fs, 3], `latent shape for ft=${ft} fs=${fs}`);
    assert.deepEqual(ae.latentShape(t, hw, hw), [t / ft, hw / fs, hw / fs, 3]);
    const y = ae.decode(p.mean);
    assert.deepEqual(y.shape, [2, t, hw, hw, 3]);
    tf.dispose([x, p.mean, p.logvar, y]);
    assert.equal(tf.memory().numTensors, before, 'no tensors leak from encode/decode');
    store.dispose();
  }
});

test('logvar is clamped to the configured range', async () => {
  await initBackend({ quiet: true });
  const cfg = AutoencoderModelConfig.parse({ channels: [4], temporal_factor: 1, spatial_factor: 2, norm_groups: 2, logvar_clamp: [-0.01, 0.01] });
  const store = new ParamStore(new Rng(2));
  const ae = new VideoAutoencoder(store, cfg);
  const x = tf.randomUniform([1, 2, 4, 4, 3], -1, 1, 'float32', 5) as tf.Tensor5D;
  const p = ae.encode(x);
  const lv = p.logvar.dataSync();
  assert.ok(lv.every((v) => v >= -0.01 - 1e-7 && v <= 0.01 + 1e-7));
  tf.dispose([x, p.mean, p.logvar]);
  store.dispose();
});

test('KL term equals its closed form 0.5 * sum(mu^2 + var - 1 - logvar)', async () => {
  await initBackend({ quiet: true });
  const rng = new Rng(3);
  const mu = rng.normalArray(2 * 24);
  const lv = rng.uniformArray(2 * 24, -2, 1);
  const p = { mean: tf.tensor5d(mu, [2, 2, 2, 2, 3]), logvar: tf.tensor5d(lv, [2, 2, 2, 2, 3]) };
  const kl = klDivergence(p).arraySync();
  for (let b = 0; b < 2; b++) {
    let ref = 0;
    for (let i = 0; i < 24; i++) {
      const m = mu[b * 24 + i];
      const l = lv[b * 24 + i];
      ref += 0.5 * (m * m + Math.exp(l) - 1 - l);
    }
    assert.ok(Math.abs(kl[b] - ref) < 1e-4 * Math.max(1, Math.abs(ref)), `KL ${kl[b]} vs ${ref}`);
  }
  // KL of the prior itself is zero
  const zero = klDivergence({ mean: tf.zeros([1, 1, 1, 1, 2]) as tf.Tensor5D, logvar: tf.zeros([1, 1, 1, 1, 2]) as tf.Tensor5D });
  assert.ok(Math.abs(zero.dataSync()[0]) < 1e-7);
  tf.dispose([p.mean, p.logvar, zero]);
});

function overfitConfig(steps: number): ExperimentConfig {
  return validateConfig(
    {
      name: 'overfit',
      seed: 7,
      data: { source: 'synthetic-shapes', frames: 4, size: 16, num_videos: 1, video_length: 4, held_out: 1 },
      autoencoder: {
        model: { channels: [16], temporal_factor: 2, spatial_factor: 2, latent_channels: 4, norm_groups: 8, enc_res_blocks: 1, dec_res_blocks: 1 },
        loss: { pixel: 'l1', disc_weight: 0 },
        optim: { lr: 3e-3, betas: [0.5, 0.9], grad_clip: 1 },
        train: { steps, batch_size: 1 },
      },
    },
    'overfit-config',
  );
}

test('a small autoencoder overfits one small synthetic clip to PSNR > 25 dB; no tensor leak across steps', async () => {
  await initBackend({ quiet: true });
  const cfg = overfitConfig(400);
  const d = cfg.data;
  const dataset = new SyntheticDataset({ family: 'shapes', size: 1, frames: d.frames, height: d.size, width: d.size, seed: 7, videoLength: 4 });
  const trainer = new AutoencoderTrainer({ config: cfg, dataset, log: () => {} });
  await trainer.trainStep(0);
  const before = tf.memory().numTensors;
  for (let s = 1; s < 400; s++) await trainer.trainStep(s);
  assert.equal(tf.memory().numTensors, before, 'training steps leak no tensors');
  const rec = await reconstructClips(trainer.ae, dataset, 1, 0);
  const p = psnrU8(rec.originals[0], rec.reconstructions[0]);
  assert.ok(Math.abs(p - rec.psnr) < 1e-6, 'PSNR agrees with an independent computation');
  assert.ok(p > 25, `PSNR ${p.toFixed(2)} dB should exceed 25 dB`);
  trainer.dispose();
});
