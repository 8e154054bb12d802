/**
 * The autoencoder stage end to end: config -> data -> train (resumable) -> latent stats -> weights
 * export -> held-out reconstruction quality. Used by `lvdm train-ae`, `lvdm demo` and notebooks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ExperimentConfig } from '../config/schema';
import { writeJsonAtomic } from '../io/atomic';
import { Rng } from '../nn/rng';
import { runTraining, trainLoopOptions } from '../train/loop';
import { datasetFromConfig } from '../../data/from-config';
import type { ClipDataset } from '../../data/types';
import { fromUnitRange } from '../../data/loader';
import { psnr, ssim } from '../../metrics/quality';
import { VideoAutoencoder } from './model';
import { AutoencoderTrainer } from './train';
import { clipsToTensor, computeLatentStats, LatentStats, saveAutoencoderWeights } from './io';

export const AE_WEIGHTS = 'autoencoder.safetensors';

/** SSIM's 11x11 Gaussian window needs frames of at least 11 px; smaller clips report SSIM as NaN. */
export const SSIM_MIN_SIZE = 11;

export interface ReconstructionResult {
  originals: Uint8Array[];
  reconstructions: Uint8Array[];
  frames: number;
  height: number;
  width: number;
  keys: string[];
  /** Mean over clips of per-clip PSNR (dB, uint8 range) and SSIM (NaN for frames under 11 px). */
  psnr: number;
  ssim: number;
  perClip: { key: string; psnr: number; ssim: number }[];
}

/** Reconstructs the first `n` clips of `dataset` through the posterior mean; PSNR/SSIM on uint8 frames. */
export async function reconstructClips(ae: VideoAutoencoder, dataset: ClipDataset, n: number, seed: number, batch = 2): Promise<ReconstructionResult> {
  const rng = new Rng(seed).fork('reconstruct');
  const total = Math.min(n, dataset.size);
  const { frames: t, height: h, width: w } = dataset;
  const res: ReconstructionResult = { originals: [], reconstructions: [], frames: t, height: h, width: w, keys: [], psnr: 0, ssim: 0, perClip: [] };
  for (let i = 0; i < total; i += batch) {
    const idx = Array.from({ length: Math.min(batch, total - i) }, (_, j) => i + j);
    const clips = await Promise.all(idx.map((k) => dataset.get(k, rng.fork(`clip-${k}`))));
    const x = clipsToTensor(clips.map((c) => c.video), t, h, w);
    const p = ae.encode(x);
    const y = ae.decode(p.mean); // [B, T, H, W, 3]
    const data = y.dataSync() as Float32Array;
    tf.dispose([x, p.mean, p.logvar, y]);
    const per = t * h * w * 3;
    clips.forEach((c, j) => {
      const rec = fromUnitRange(data.subarray(j * per, (j + 1) * per));
      const q = { key: c.key, psnr: psnr(c.video, rec, 255), ssim: h >= SSIM_MIN_SIZE && w >= SSIM_MIN_SIZE ? ssim(c.video, rec, [t, h, w, 3]) : NaN };
      res.originals.push(c.video);
      res.reconstructions.push(rec);
      res.keys.push(c.key);
      res.perClip.push(q);
    });
  }
  res.psnr = res.perClip.reduce((a, c) => a + c.psnr, 0) / res.perClip.length;
  res.ssim = res.perClip.reduce((a, c) => a + c.ssim, 0) / res.perClip.length;
  return res;
}

export interface TrainAutoencoderOptions {
  config: ExperimentConfig;
  outDir: string;
  resume?: boolean;
  force?: boolean;
  progress?: boolean;
  log?: (msg: string) => void;
}

export interface TrainAutoencoderResult {
  outDir: string;
  weights: string;
  checkpoint: string;
  steps: number;
  latent: LatentStats;
  heldOut: { clips: number; psnr: number; ssim: number };
  trainSeconds: number;
}

export async function trainAutoencoder(opts: TrainAutoencoderOptions): Promise<TrainAutoencoderResult> {
  const cfg = opts.config;
  const ae = cfg.autoencoder;
  if (!ae) throw new Error(`config '${cfg.name}': the autoencoder section is required`);
  const log = opts.log ?? ((m: string) => process.stderr.write(`[lvdm] ${m}\n`));
  const dataset = datasetFromConfig(cfg.data, 'train', cfg.seed);
  const trainer = new AutoencoderTrainer({ config: cfg, dataset, log });
  try {
    log(`autoencoder: ${trainer.store.numParams()} parameters, factors ${trainer.ae.factors.join('x')}, clips ${dataset.frames}x${dataset.height}x${dataset.width}`);
    const t0 = Date.now();
    const r = await runTraining(trainer, trainLoopOptions(ae.train, opts, 'train-ae'));
    const trainSeconds = (Date.now() - t0) / 1000;
    const latent = await computeLatentStats(trainer.ae, dataset, ae.latent_stats_clips, cfg.seed);
    log(`latent stats: mean ${latent.mean.toFixed(4)} std ${latent.std.toFixed(4)} -> shift ${latent.shift.toFixed(4)} scale ${latent.scale.toFixed(4)}`);
    const weights = path.join(opts.outDir, AE_WEIGHTS);
    saveAutoencoderWeights(weights, trainer.store, cfg, latent, r.step);
    const heldOutSet = datasetFromConfig(cfg.data, 'heldout', cfg.seed);
    const rec = await reconstructClips(trainer.ae, heldOutSet, cfg.data.held_out, cfg.seed);
    const heldOut = { clips: rec.perClip.length, psnr: rec.psnr, ssim: rec.ssim };
    writeJsonAtomic(path.join(opts.outDir, 'eval.json'), { step: r.step, held_out: heldOut, latent, train_seconds: trainSeconds });
    return { outDir: opts.outDir, weights, checkpoint: r.checkpoint, steps: r.step, latent, heldOut, trainSeconds };
  } finally {
    trainer.dispose();
  }
}

export function assertFile(file: string, what: string): void {
  if (!fs.existsSync(file)) throw new Error(`${file}: ${what} not found`);
}
