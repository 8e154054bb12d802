/**
 * Training the prediction and interpolation models (`lvdm train-pred`, `lvdm train-interp`):
 * the latent diffusion trainer (lib/lvdm) with the conditional batch preparer (batch.ts), on the
 * same latent cache as short-video training (clips of data.frames pixel frames; the model's
 * window is cut from each cached clip at its latent_stride). The exported `lvdm.safetensors`
 * carries the config with its `long` section, so generation knows the model's role, window,
 * stride and s convention. `loadLongModel` reads it back as a `LongModel`.
 */
import { LongVideoConfig } from '../config/schema';
import { LvdmTrainer } from '../lvdm/trainer';
import { DEFAULT_LATENT_CACHE_DIR, TrainExportResult, TrainLvdmOptions, prepareLatents, trainAndExport, trainingAutoencoder } from '../lvdm/pipeline';
import { LoadedLvdm, loadLvdm } from '../lvdm/weights';
import { longSections } from './conditioning';
import { conditionalBatchPreparer, windowSpan } from './batch';
import { LongModel } from './generate';

export interface TrainLongOptions extends TrainLvdmOptions {
  /** The role the command trains; the config's long.role must match. */
  role: LongVideoConfig['role'];
}

export type TrainLongResult = TrainExportResult;

export async function trainLongModel(opts: TrainLongOptions): Promise<TrainLongResult> {
  const cfg = opts.config;
  const { long } = longSections(cfg);
  if (long.role !== opts.role) throw new Error(`config '${cfg.name}': long.role is '${long.role}' but this command trains the ${opts.role} model`);
  const log = opts.log ?? ((m: string) => process.stderr.write(`[lvdm] ${m}\n`));
  const aeFile = trainingAutoencoder(cfg, opts.autoencoder);
  const { cache } = await prepareLatents(cfg, aeFile, opts.cacheDir ?? DEFAULT_LATENT_CACHE_DIR, log);
  const span = windowSpan(long);
  if (span > cache.shape[0])
    throw new Error(`config '${cfg.name}': long.window ${long.window} at latent_stride ${long.latent_stride} spans ${span} latent frames, but data.frames ${cfg.data.frames} gives clips of ${cache.shape[0]} latents`);
  const trainer = new LvdmTrainer({ config: cfg, latents: cache, prepareBatch: conditionalBatchPreparer(long) });
  try {
    log(
      `${long.role} model: ${trainer.store.numParams()} parameters; windows of ${long.window} latents at stride ${long.latent_stride} from clips of ${cache.shape[0]}, ` +
        `p_cond ${long.p_cond}, s_max ${long.s_max ?? 'none'}, loss on ${long.loss_frames} frames`,
    );
    return await trainAndExport(trainer, cfg, cache, aeFile, { ...opts, config: cfg }, long.role === 'prediction' ? 'train-pred' : 'train-interp');
  } finally {
    trainer.dispose();
  }
}

/** A LongModel view of a loaded latent diffusion model whose config has a `long` section. */
export function longModelOf(m: LoadedLvdm): LongModel {
  const { long } = longSections(m.config, `${m.source} (stored config)`);
  const [, h, w, c] = m.state.latent_shape;
  return { eps: m.eps, schedule: m.schedule, spec: long, latent: [h, w, c], source: m.source };
}

/** Loads `lvdm.safetensors` of a prediction / interpolation model. */
export function loadLongModel(file: string): { model: LongModel; loaded: LoadedLvdm } {
  const loaded = loadLvdm(file);
  try {
    return { model: longModelOf(loaded), loaded };
  } catch (e) {
    loaded.dispose();
    throw e;
  }
}
