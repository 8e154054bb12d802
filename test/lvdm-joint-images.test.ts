/**
 * Joint image-video training (diffusion.image_batch; Ho et al. 2022): each step also trains on
 * single latent frames of random clips, as one-frame clips through the same network. The frames
 * are the cache's; the step's loss is the frame-weighted mean of the clips' and the images' losses;
 * the clips' draws are those of training without images; resumes to the same numbers; no leaks;
 * combinations it does not support are errors naming the keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { ExperimentConfig } from '../lib/config/schema';
import { LatentCache, LvdmTrainer, plainBatch } from '../lib/lvdm';

const ready = initBackend({ quiet: true });

const UNET = { in_channels: 3, out_channels: 3, model_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [1, 2], head_channels: 8, temporal_length: 3, norm_groups: 4, self_condition: true };

function config(diffusion: Record<string, unknown> = {}): ExperimentConfig {
  return ExperimentConfig.parse({
    name: 'joint-test',
    seed: 5,
    data: { source: 'synthetic-shapes', frames: 6, size: 8, num_videos: 6 },
    unet: UNET,
    diffusion: { loss: 'mse', prediction: 'v', optim: { kind: 'adamw', lr: 1e-2 }, train: { steps: 4, batch_size: 2, ema_decay: 0.5 }, ...diffusion },
  });
}

/** A latent cache of n random clips of 3 latent frames of 4x4x3 with the given log-variance. */
function cache(n = 5, logvar = -3): LatentCache {
  const per = 3 * 4 * 4 * 3;
  return new LatentCache(new Rng(11).normalArray(n * per), new Float32Array(n * per).fill(logvar), n, [3, 4, 4, 3], { shift: 0.5, scale: 2 });
}

test('LatentCache.sampleFrames: frame f of clip k, normalised, as one-frame clips; bad frame indices are errors', async () => {
  await ready;
  const c = cache(5, -60); // posterior std e^-30: the samples are the means
  const got = c.sampleFrames([4, 0, 4], [2, 0, 1], new Rng(1));
  assert.deepEqual(got.shape, [3, 1, 4, 4, 3]);
  const per = 4 * 4 * 3;
  const want = new Float32Array(3 * per);
  [
    [4, 2],
    [0, 0],
    [4, 1],
  ].forEach(([k, f], j) => {
    for (let i = 0; i < per; i++) want[j * per + i] = 2 * (c.mean[(k * 3 + f) * per + i] + 0.5);
  });
  const data = got.dataSync();
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(data[i] - want[i]) < 1e-5, `value ${i}: ${data[i]} against ${want[i]}`);
  got.dispose();
  assert.throws(() => c.sampleFrames([0], [3], new Rng(1)), /frame 3 outside \[0, 2\]/);
  assert.throws(() => c.sampleFrames([0, 1], [0], new Rng(1)), /2 clips but 1 frame indices/);
});

test('joint training: the loss is the frame-weighted mean of the clips and the images; the clips are drawn as without images; resumes to the same numbers; no leaks', async () => {
  await ready;
  const c = cache();
  const plain = new LvdmTrainer({ config: config(), latents: c });
  const joint = new LvdmTrainer({ config: config({ image_batch: 4 }), latents: c });
  const p0 = await plain.trainStep(0);
  const j0 = await joint.trainStep(0);
  // Same initial weights and the same draws for the clips: the video part's loss is the plain step's.
  assert.ok(Math.abs(j0.loss_video - p0.loss) < 1e-6, `${j0.loss_video} against ${p0.loss}`);
  assert.ok(j0.loss_image > 0 && Math.abs(j0.loss_image - j0.loss_video) > 1e-6);
  // 2 clips of 3 latent frames and 4 images: weights 6/10 and 4/10.
  assert.ok(Math.abs(j0.loss - (6 * j0.loss_video + 4 * j0.loss_image) / 10) < 1e-6);
  plain.dispose();

  const tensors = joint.checkpointTensors();
  const state = JSON.parse(JSON.stringify(joint.checkpointState())) as Record<string, unknown>;
  const count = tf.memory().numTensors;
  const losses: number[] = [];
  for (let i = 1; i < 4; i++) losses.push((await joint.trainStep(i)).loss);
  assert.equal(tf.memory().numTensors, count, 'tensors leaked across joint training steps');
  const resumed = new LvdmTrainer({ config: config({ image_batch: 4 }), latents: c });
  resumed.restore(tensors, state, 1, 'test');
  const again: number[] = [];
  for (let i = 1; i < 4; i++) again.push((await resumed.trainStep(i)).loss);
  assert.deepEqual(again, losses);
  joint.dispose();
  resumed.dispose();
});

test('joint training refuses the long-video batches and motion weights, naming the keys', async () => {
  await ready;
  assert.throws(
    () => new LvdmTrainer({ config: config({ image_batch: 2 }), latents: cache(), prepareBatch: plainBatch }).dispose(),
    /diffusion.image_batch \(joint image-video training\) is for short-video models/,
  );
  assert.throws(() => new LvdmTrainer({ config: config({ image_batch: 2, motion_weight: 1 }), latents: cache() }).dispose(), /diffusion.image_batch and diffusion.motion_weight/);
  assert.throws(() => config({ image_batch: 0 }), /image_batch/);
});
