import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ParamStore } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { VideoAutoencoder, klDivergence, stageStrides } from '../lib/autoencoder/model';
import { AutoencoderTrainer } from '../lib/autoencoder/train';
import { gradientDifference } from '../lib/autoencoder/gdl';
import { reconstructClips } from '../lib/autoencoder/pipeline';
import { AutoencoderLossConfig, AutoencoderModelConfig, ExperimentConfig } from '../lib/config/schema';
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

test('gradient difference loss matches a per-pixel loop over |dx| and |dy| (Mathieu et al. 2016, alpha 1)', async () => {
  await initBackend({ quiet: true });
  const [b, t, h, w, c] = [2, 2, 5, 4, 3];
  const rng = new Rng(3);
  const xs = Float32Array.from(rng.normalArray(b * t * h * w * c));
  const rs = Float32Array.from(rng.normalArray(b * t * h * w * c));
  const before = tf.memory().numTensors;
  const x = tf.tensor5d(xs, [b, t, h, w, c]);
  const xr = tf.tensor5d(rs, [b, t, h, w, c]);
  const got = gradientDifference(x, xr);
  assert.deepEqual(got.shape, [b, t, h, w, c]);
  const g = got.dataSync();
  const at = (a: Float32Array, i: number, y: number, xx: number, k: number): number => a[(((i * h) + y) * w + xx) * c + k];
  for (let i = 0; i < b * t; i++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let k = 0; k < c; k++) {
          let ref = 0;
          if (y > 0) ref += Math.abs(Math.abs(at(xs, i, y, xx, k) - at(xs, i, y - 1, xx, k)) - Math.abs(at(rs, i, y, xx, k) - at(rs, i, y - 1, xx, k)));
          if (xx > 0) ref += Math.abs(Math.abs(at(xs, i, y, xx, k) - at(xs, i, y, xx - 1, k)) - Math.abs(at(rs, i, y, xx, k) - at(rs, i, y, xx - 1, k)));
          const v = g[((i * h + y) * w + xx) * c + k];
          assert.ok(Math.abs(v - ref) < 1e-5, `gdl at frame ${i} (${y}, ${xx}, ${k}): ${v} vs ${ref}`);
        }
  // A uniform shift of intensity keeps every gradient, so it costs nothing here.
  const shifted = tf.add(x, 0.25) as tf.Tensor5D;
  const zero = gradientDifference(x, shifted);
  const worst = tf.max(zero);
  assert.ok(worst.dataSync()[0] < 1e-5, `a shifted copy should cost 0, got ${worst.dataSync()[0]}`);
  tf.dispose([x, xr, got, shifted, zero, worst]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
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

/** The reconstruction term `rec` logged at step 0 of the overfit config with `loss` keys set (same init, same batch); checks for leaked tensors. */
async function recAtStep0(loss: Partial<AutoencoderLossConfig>): Promise<number> {
  const cfg = overfitConfig(10);
  Object.assign(cfg.autoencoder!.loss, loss);
  const d = cfg.data;
  const dataset = new SyntheticDataset({ family: 'shapes', size: 1, frames: d.frames, height: d.size, width: d.size, seed: 7, videoLength: 4 });
  const before = tf.memory().numTensors;
  const trainer = new AutoencoderTrainer({ config: cfg, dataset, log: () => {} });
  const logs = await trainer.trainStep(0);
  trainer.dispose();
  assert.equal(tf.memory().numTensors, before, `loss ${JSON.stringify(loss)}: tensors left behind`);
  return logs.rec;
}

test('loss.pixel_weight scales the L1 term and loss.edge_weight adds the gradient difference (same init, same batch)', async () => {
  await initBackend({ quiet: true });
  const plain = await recAtStep0({});
  const doubled = await recAtStep0({ pixel_weight: 2 });
  assert.ok(Math.abs(doubled - 2 * plain) < 1e-5 * plain, `pixel_weight 2: rec ${doubled} should be twice ${plain}`);
  const withEdges = await recAtStep0({ edge_weight: 1 });
  assert.ok(withEdges > plain + 1e-3, `rec with edge_weight 1 (${withEdges}) should exceed plain L1 (${plain})`);
});

test('loss.motion_weight multiplies each pixel term by 1 + lambda * max(m - tau, 0): linear in lambda, 1 above all motion; a threshold alone is refused', async () => {
  await initBackend({ quiet: true });
  const plain = await recAtStep0({});
  const one = await recAtStep0({ motion_weight: 1 });
  const three = await recAtStep0({ motion_weight: 3 });
  // Same init and batch at step 0: rec(lambda) = mean(l1) + lambda * mean(l1 * m), so the excess is linear in lambda.
  assert.ok(one > plain + 1e-4, `motion_weight 1 (${one}) should weigh the moving shape's pixels up over the plain ${plain}`);
  assert.ok(Math.abs(three - plain - 3 * (one - plain)) < 1e-4 * plain, `rec ${three} at lambda 3 is not plain + 3 x the excess at lambda 1 (${plain}, ${one})`);
  assert.equal(await recAtStep0({ motion_weight: 5, motion_threshold: 10 }), plain, 'a threshold above all motion (pixels change by at most 2) is the uniform loss');
  const cfg = overfitConfig(10);
  cfg.autoencoder!.loss.motion_threshold = 0.2;
  assert.throws(
    () => new AutoencoderTrainer({ config: cfg, dataset: new SyntheticDataset({ family: 'shapes', size: 1, frames: 4, height: 16, width: 16, seed: 7 }), log: () => {} }),
    /config 'overfit': autoencoder.loss.motion_threshold is 0.2 but autoencoder.loss.motion_weight is unset or 0/,
  );
});

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
