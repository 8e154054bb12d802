/**
 * Glue for `lvdm train-lvdm`, `lvdm sample` and the demo: autoencoder -> latent cache ->
 * LvdmTrainer under the shared training loop -> weights export (EMA) -> generation.
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { ExperimentConfig } from '../config/schema';
import { RunFlags, runTraining, trainLoopOptions } from '../train/loop';
import { loadAutoencoder } from '../autoencoder/io';
import { datasetFromConfig } from '../../data/from-config';
import { LatentCache, LatentCacheKey, latentCacheKey } from './latents';
import { LvdmTrainer, lvdmSections } from './trainer';
import { LVDM_WEIGHTS, saveLvdmWeights } from './weights';
import { InitSpec } from './init';

export const DEFAULT_LATENT_CACHE_DIR = path.join('.cache', 'latents');

export interface TrainLvdmOptions {
  config: ExperimentConfig;
  outDir: string;
  /** Autoencoder weights (overrides diffusion.autoencoder). */
  autoencoder?: string;
  resume?: boolean;
  force?: boolean;
  progress?: boolean;
  /** Where encoded latents are cached (default .cache/latents); reused while the autoencoder and data settings match. */
  cacheDir?: string;
  log?: (msg: string) => void;
  /** Start from another model's weights (lib/lvdm/init.ts; a short stage's `init` in an experiment file). */
  init?: InitSpec;
}

export interface TrainLvdmResult extends TrainExportResult {
  latentCache: string;
}

/** The latent cache file (and its key) of the config's training data under `autoencoder`. */
export function latentCacheFile(config: ExperimentConfig, autoencoder: string, cacheDir: string): { file: string; key: LatentCacheKey } {
  const { diffusion } = lvdmSections(config);
  const key = latentCacheKey(autoencoder, config.data, config.seed, diffusion.latents.windows_per_video, diffusion.latents.max_clips);
  const hash = crypto.createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
  return { file: path.join(cacheDir, `latents-${hash}.safetensors`), key };
}

/**
 * Loads or builds the latent cache of the config's training data under `autoencoder`, normalised
 * as the diffusion model sees it: the autoencoder's shift/scale times diffusion.latents.input_scale
 * (the file itself keeps the autoencoder's, so models with different input scales share it).
 */
export async function prepareLatents(config: ExperimentConfig, autoencoder: string, cacheDir: string, log: (m: string) => void): Promise<{ cache: LatentCache; file: string }> {
  const b = lvdmSections(config).diffusion.latents.input_scale ?? 1;
  const r = await loadOrBuildLatents(config, autoencoder, cacheDir, log);
  if (b === 1) return r;
  log(`latents: input scale ${b} (normalised scale ${r.cache.norm.scale.toFixed(4)} -> ${(r.cache.norm.scale * b).toFixed(4)})`);
  return { cache: r.cache.withInputScale(b), file: r.file };
}

async function loadOrBuildLatents(config: ExperimentConfig, autoencoder: string, cacheDir: string, log: (m: string) => void): Promise<{ cache: LatentCache; file: string }> {
  const { diffusion } = lvdmSections(config);
  const { file, key } = latentCacheFile(config, autoencoder, cacheDir);
  const cached = LatentCache.load(file, key);
  // A class-conditional model needs the clips' labels, which caches written before labels were kept lack.
  const labelsMissing = cached !== null && config.unet?.num_classes !== undefined && !cached.labels;
  if (cached && !labelsMissing) {
    log(`latents: ${cached.count} clips of [${cached.shape}] from cache ${file}`);
    return { cache: cached, file };
  }
  if (labelsMissing) log(`latents: cache ${file} has no class labels; encoding again`);
  const loaded = loadAutoencoder(autoencoder);
  try {
    const dataset = datasetFromConfig(config.data, 'train', config.seed);
    const t0 = Date.now();
    const norm = loaded.latent ? { shift: loaded.latent.shift, scale: loaded.latent.scale } : undefined;
    const cache = await LatentCache.build({
      codec: loaded.ae,
      dataset,
      windowsPerVideo: diffusion.latents.windows_per_video,
      batchSize: diffusion.latents.batch_size,
      seed: config.seed,
      maxClips: diffusion.latents.max_clips,
      norm,
    });
    cache.save(file, key);
    log(
      `latents: encoded ${cache.count} clips of [${cache.shape}] in ${((Date.now() - t0) / 1000).toFixed(1)} s -> ${file} ` +
        `(shift ${cache.norm.shift.toFixed(4)}, scale ${cache.norm.scale.toFixed(4)}${norm ? ', from the autoencoder' : ', derived from the cache'})`,
    );
    return { cache, file };
  } finally {
    loaded.dispose();
  }
}

/** The autoencoder a latent diffusion run trains on: `--ae`, else the config's diffusion.autoencoder (absolute path). */
export function trainingAutoencoder(cfg: ExperimentConfig, override?: string): string {
  const autoencoder = override ?? lvdmSections(cfg).diffusion.autoencoder;
  if (!autoencoder) throw new Error(`config '${cfg.name}': no autoencoder given (set diffusion.autoencoder or pass --ae <autoencoder.safetensors>)`);
  return path.resolve(autoencoder);
}

export async function trainLvdm(opts: TrainLvdmOptions): Promise<TrainLvdmResult> {
  const cfg = opts.config;
  const { diffusion } = lvdmSections(cfg);
  const log = opts.log ?? ((m: string) => process.stderr.write(`[lvdm] ${m}\n`));
  const aeFile = trainingAutoencoder(cfg, opts.autoencoder);
  const { cache, file: cacheFile } = await prepareLatents(cfg, aeFile, opts.cacheDir ?? DEFAULT_LATENT_CACHE_DIR, log);
  const trainer = new LvdmTrainer({ config: cfg, latents: cache, init: opts.init });
  try {
    const ir = trainer.initReport;
    if (ir && opts.init)
      log(`init: ${ir.copied} tensors from ${opts.init.weights}, ${ir.fresh} temporal tensors fresh${ir.frozen ? `, ${ir.frozen} frozen (only the temporal layers train: ${trainer.store.trainable().length} tensors)` : ''}`);
    const tln = diffusion.timestep_sampling?.logit_normal;
    log(`unet: ${trainer.store.numParams()} parameters; latents [${cache.shape}], batch ${diffusion.train.batch_size}, ${diffusion.loss} loss on ${diffusion.prediction ?? 'eps'}${diffusion.timestep_weighting ? `, ${diffusion.timestep_weighting}-weighted` : ''}${tln ? `, t logit-normal(${tln.mean}, ${tln.std})` : ''}${diffusion.input_perturbation ? `, input perturbation ${diffusion.input_perturbation}` : ''}`);
    const r = await trainAndExport(trainer, cfg, cache, aeFile, { ...opts, config: cfg }, 'train-lvdm');
    return { ...r, latentCache: cacheFile };
  } finally {
    trainer.dispose();
  }
}

/** Folder (in a run folder) of the per-checkpoint sampling weights written when `train.snapshots` is set. */
export const SNAPSHOT_DIR = 'snapshots';

export interface TrainExportResult {
  outDir: string;
  weights: string;
  checkpoint: string;
  steps: number;
  trainSeconds: number;
  lastLoss: number;
  params: number;
}

/**
 * Runs the training loop for a latent diffusion trainer (plain, prediction or interpolation) and
 * exports its sampling (EMA) weights as `lvdm.safetensors` with the latent normalisation, latent
 * shape, clip size and the autoencoder it was trained on.
 */
export async function trainAndExport(trainer: LvdmTrainer, cfg: ExperimentConfig, cache: LatentCache, aeFile: string, run: RunFlags, label: string): Promise<TrainExportResult> {
  const { diffusion } = lvdmSections(cfg);
  const t0 = Date.now();
  const exportTo = (file: string, step: number): void =>
    saveLvdmWeights(
      file,
      trainer.samplingWeights(),
      cfg,
      {
        autoencoder: aeFile,
        latent: cache.norm,
        latent_shape: cache.shape,
        clip: { frames: cfg.data.frames, height: cfg.data.size, width: cfg.data.size },
        ema: trainer.ema !== null,
      },
      step,
    );
  const loop = trainLoopOptions(diffusion.train, run, label);
  if (diffusion.train.snapshots === true) loop.onCheckpoint = (step) => exportTo(path.join(run.outDir, SNAPSHOT_DIR, `lvdm-${step}.safetensors`), step);
  const r = await runTraining(trainer, loop);
  const trainSeconds = (Date.now() - t0) / 1000;
  const weights = path.join(run.outDir, LVDM_WEIGHTS);
  exportTo(weights, r.step);
  return { outDir: run.outDir, weights, checkpoint: r.checkpoint, steps: r.step, trainSeconds, lastLoss: r.lastLogs.loss ?? NaN, params: trainer.store.numParams() };
}
