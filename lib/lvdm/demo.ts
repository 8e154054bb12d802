/**
 * The latent-diffusion stage of `npm run demo`: train a small UNet3D on the demo autoencoder's
 * latents, sample short videos with DDIM and write them (MP4, GIF, PNG grid). Sized so the whole
 * demo (autoencoder + latent diffusion + sampling) stays within ~15 minutes on one wasm thread.
 */
import * as path from 'node:path';
import { ExperimentConfig, UNetConfig, DiffusionConfig } from '../config/schema';
import { loadAutoencoder } from '../autoencoder/io';
import { trainLvdm } from './pipeline';
import { generateVideos, writeSampleOutputs } from './generate';
import { loadLvdm } from './weights';

/** Defaults for configs without `unet` / `diffusion` sections (the demo's latents: 4 x 8 x 8 x 4). */
export function demoLvdmSections(latentChannels: number, latentFrames: number): { unet: UNetConfig; diffusion: DiffusionConfig } {
  return {
    unet: UNetConfig.parse({
      in_channels: latentChannels,
      out_channels: latentChannels,
      model_channels: 32,
      channel_mult: [1, 2],
      num_res_blocks: 1,
      attention_resolutions: [2],
      head_channels: 32,
      temporal_length: Math.max(1, latentFrames),
    }),
    diffusion: DiffusionConfig.parse({
      loss: 'l1',
      optim: { kind: 'adamw', lr: 1e-3, weight_decay: 0, warmup_steps: 50, decay: 'cosine', min_lr: 1e-4, grad_clip: 1 },
      train: { steps: 600, batch_size: 8, ckpt_every: 200, log_every: 20, ema_decay: 0.995 },
      latents: { windows_per_video: 1, batch_size: 8, max_clips: 512 },
      sampling: { sampler: 'ddim', steps: 50, eta: 0, n: 8, batch_size: 8, fps: 8 },
    }),
  };
}

export interface LvdmDemoOptions {
  /** The demo experiment config (its `unet` / `diffusion` sections are used when present). */
  config: ExperimentConfig;
  /** autoencoder.safetensors written by the autoencoder stage. */
  aeWeights: string;
  /** Folder for this stage (train run in <outDir>/train, samples in <outDir>/samples). */
  outDir: string;
  progress?: boolean;
  log?: (msg: string) => void;
  /** Samples to write (default diffusion.sampling.n). */
  n?: number;
}

export interface LvdmDemoResult {
  weights: string;
  steps: number;
  params: number;
  lastLoss: number;
  trainSeconds: number;
  sampleSeconds: number;
  /** Written sample files (per-sample MP4/GIF, grid.png). */
  files: string[];
  grid: string;
}

export async function runLvdmDemoStage(opts: LvdmDemoOptions): Promise<LvdmDemoResult> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`[lvdm] ${m}\n`));
  let config = opts.config;
  if (!config.unet || !config.diffusion) {
    const ae = loadAutoencoder(opts.aeWeights);
    const [t, , , c] = ae.ae.latentShape(config.data.frames, config.data.size, config.data.size);
    ae.dispose();
    const d = demoLvdmSections(c, t);
    config = { ...config, unet: config.unet ?? d.unet, diffusion: config.diffusion ?? d.diffusion };
  }
  const trained = await trainLvdm({ config, outDir: path.join(opts.outDir, 'train'), autoencoder: opts.aeWeights, progress: opts.progress, log, force: true });
  const model = loadLvdm(trained.weights);
  const ae = loadAutoencoder(opts.aeWeights);
  try {
    const s = config.diffusion!.sampling;
    const gen = await generateVideos(model, ae.ae, {
      n: opts.n ?? s.n,
      batchSize: s.batch_size,
      sampler: s.sampler,
      steps: s.steps,
      eta: s.eta,
      seed: config.seed,
    });
    const files = await writeSampleOutputs(path.join(opts.outDir, 'samples'), gen, { fps: s.fps });
    return {
      weights: trained.weights,
      steps: trained.steps,
      params: trained.params,
      lastLoss: trained.lastLoss,
      trainSeconds: trained.trainSeconds,
      sampleSeconds: gen.sampleSeconds + gen.decodeSeconds,
      files,
      grid: files.find((f) => f.endsWith('grid.png')) ?? '',
    };
  } finally {
    model.dispose();
    ae.dispose();
  }
}
