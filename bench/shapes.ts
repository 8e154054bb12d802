/**
 * The demo family's models at their real sizes (`shapes`): what the 30-minute target and the
 * long-video sweeps wait on. Both networks have 32 channels and spatial attention over all 256
 * positions of a 16x16 latent frame, so attention is a large part of their time.
 *   - shapes-short-train-step: the short model's training step (forward + backward + AdamW, EMA
 *     as configured) on its configuration's batch (8 clips of 8 latents 16x16x4), random latents;
 *   - shapes-ar-window-forward: one network forward of the shipped autoregressive model at the
 *     sweeps' batch (16 windows of 5 latents): a 1,024-frame video is 128 windows x 20 DDIM steps
 *     of these.
 * Configurations come from the shipped models (models/manifest.json, experiments/shapes.yaml).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BenchModule, BenchResult } from './types';
import { timeWallCpu } from './unet';
import { ExperimentConfig } from '../lib/config/schema';
import { Rng } from '../lib/nn/rng';
import { LatentCache, LvdmTrainer, loadLvdm } from '../lib/lvdm';
import { loadLongModel } from '../lib/hierarchical/train';
import { DEFAULT_MODELS_DIR, readManifest } from '../lib/experiments/shipped';

/** Folder of the shipped shapes task `stage`. */
function shippedShapes(stage: string): string {
  const entry = readManifest(DEFAULT_MODELS_DIR).tasks.find((t) => t.experiment === 'experiments/shapes.yaml' && t.stage === stage);
  if (!entry) throw new Error(`bench/shapes: ${path.join(DEFAULT_MODELS_DIR, 'manifest.json')} has no shapes '${stage}' model`);
  return path.join(DEFAULT_MODELS_DIR, entry.dir);
}

/**
 * A trainer for the shipped short model's configuration on random latents of its shape (also used by
 * bench/profile-kernels.ts); `channels` sets model_channels and head_channels (the same heads per level).
 */
export function shapesShortTrainer(channels?: number): { trainer: LvdmTrainer; batch: number; shape: number[] } {
  const raw = JSON.parse(fs.readFileSync(path.join(shippedShapes('lvdm'), 'config.json'), 'utf8')) as { unet: Record<string, unknown> };
  if (channels !== undefined) raw.unet = { ...raw.unet, model_channels: channels, head_channels: channels };
  const config = ExperimentConfig.parse(raw);
  const batch = config.diffusion!.train.batch_size;
  const shipped = loadLvdm(path.join(shippedShapes('lvdm'), 'lvdm.safetensors'));
  const shape = [...shipped.state.latent_shape] as [number, number, number, number]; // [8, 16, 16, 4]
  shipped.dispose();
  const per = shape.reduce((a, b) => a * b, 1);
  const n = 2 * batch;
  const latents = new LatentCache(new Rng(1).normalArray(n * per), new Float32Array(n * per).fill(-30), n, shape, { shift: 0, scale: 1 });
  return { trainer: new LvdmTrainer({ config, latents }), batch, shape };
}

async function shortTrainStep(quick: boolean): Promise<BenchResult> {
  const { trainer, batch, shape } = shapesShortTrainer();
  try {
    let step = 0;
    const t = await timeWallCpu(() => trainer.trainStep(step++), quick ? 2 : 8, quick ? 1 : 2);
    return {
      name: 'shapes-short-train-step',
      params: trainer.store.numParams(),
      timings_ms: { train_step_ms: t.wall },
      extra: { train_step_best_ms: t.best, train_step_cpu_ms: t.cpu, shape: `${batch}x${shape.join('x')}` },
    };
  } finally {
    trainer.dispose();
  }
}

async function arWindowForward(quick: boolean): Promise<BenchResult> {
  const { model, loaded } = loadLongModel(path.join(shippedShapes('ar'), 'lvdm.safetensors'));
  const batch = 16;
  const [h, w, c] = model.latent;
  const W = model.spec.window;
  const x = tf.tensor5d(new Rng(2).normalArray(batch * W * h * w * c), [batch, W, h, w, c]);
  const t = tf.tensor1d(Array.from({ length: batch }, (_, i) => 60 * i + 10), 'int32');
  const cond = { mask: tf.tensor2d(Array.from({ length: batch * W }, (_, i) => (i % W === 0 ? 1 : 0)), [batch, W]), s: tf.zeros([batch], 'int32') };
  try {
    const f = await timeWallCpu(() => tf.tidy(() => model.eps(x, t, cond).dataSync()), quick ? 2 : 8, quick ? 1 : 2);
    return {
      name: 'shapes-ar-window-forward',
      params: loaded.store.numParams(),
      timings_ms: { forward_ms: f.wall },
      extra: { forward_best_ms: f.best, forward_cpu_ms: f.cpu, shape: `${batch}x${W}x${h}x${w}x${c}+mask`, video_1024f_s: (f.wall * 128 * 20) / 1000 },
      note: 'video_1024f_s: forwards alone for 16 autoregressive videos of 1,024 frames (128 windows x 20 DDIM steps), no decoding',
    };
  } finally {
    tf.dispose([x, t, cond.mask, cond.s]);
    loaded.dispose();
  }
}

export const run: BenchModule = async (opts) => [await shortTrainStep(opts.quick), await arWindowForward(opts.quick)];
