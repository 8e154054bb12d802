/**
 * Autoencoder weights on disk and latent normalisation.
 * `autoencoder.safetensors` (kind 'autoencoder-weights') holds the model parameters (`model.*`), the
 * config that rebuilds the model, and the latent shift/scale derived from the training data:
 * LVDM normalises latents as z_n = scale * (z + shift) before diffusion (lvdm-facts.md section 1);
 * the public configs never say how shift/scale were chosen, so we use shift = -mean and
 * scale = 1 / std of posterior samples of encoded training clips, and record them.
 */
import * as tf from '@tensorflow/tfjs';
import { ExperimentConfig } from '../config/schema';
import { validateConfig } from '../config/load';
import { ParamStore } from '../nn/params';
import { Rng } from '../nn/rng';
import { loadCheckpoint, prefixed, saveCheckpoint, subTensors } from '../train/checkpoint';
import { toUnitRange } from '../../data/loader';
import type { ClipDataset } from '../../data/types';
import { VideoAutoencoder } from './model';

export interface LatentStats {
  shift: number;
  scale: number;
  /** Mean and std of the raw latents the stats came from, and how many values. */
  mean: number;
  std: number;
  count: number;
}

export interface LoadedAutoencoder {
  ae: VideoAutoencoder;
  store: ParamStore;
  config: ExperimentConfig;
  latent: LatentStats | null;
  /** Normalised latent z_n = scale * (z + shift) (identity without stats). */
  normalize(z: tf.Tensor5D): tf.Tensor5D;
  denormalize(zn: tf.Tensor5D): tf.Tensor5D;
  dispose(): void;
}

/** Stacks clips [T, H, W, 3] uint8 into a float batch [B, T, H, W, 3] in [-1, 1]. */
export function clipsToTensor(clips: Uint8Array[], t: number, h: number, w: number): tf.Tensor5D {
  const per = t * h * w * 3;
  const buf = new Float32Array(clips.length * per);
  clips.forEach((c, i) => toUnitRange(c, buf, i * per));
  return tf.tensor5d(buf, [clips.length, t, h, w, 3]);
}

/** Encodes `n` clips of `dataset` (posterior samples) and returns shift = -mean, scale = 1/std. */
export async function computeLatentStats(ae: VideoAutoencoder, dataset: ClipDataset, n: number, seed: number, batch = 4): Promise<LatentStats> {
  const rng = new Rng(seed).fork('latent-stats');
  let sum = 0;
  let sumSq = 0;
  let count = 0;
  const total = Math.min(n, dataset.size);
  for (let i = 0; i < total; i += batch) {
    const idx = Array.from({ length: Math.min(batch, total - i) }, (_, j) => i + j);
    const clips = await Promise.all(idx.map((k) => dataset.get(k, rng.fork(`clip-${k}`))));
    const x = clipsToTensor(
      clips.map((c) => c.video),
      dataset.frames,
      dataset.height,
      dataset.width,
    );
    const p = ae.encode(x);
    const z = VideoAutoencoder.samplePosterior(p, rng);
    const d = z.dataSync();
    for (let k = 0; k < d.length; k++) {
      sum += d[k];
      sumSq += d[k] * d[k];
    }
    count += d.length;
    tf.dispose([x, p.mean, p.logvar, z]);
  }
  const mean = sum / count;
  const std = Math.sqrt(Math.max(sumSq / count - mean * mean, 1e-12));
  return { shift: -mean, scale: 1 / std, mean, std, count };
}

export function saveAutoencoderWeights(file: string, store: ParamStore, config: ExperimentConfig, latent: LatentStats | null, step: number): void {
  saveCheckpoint(file, prefixed(store.snapshot(), 'model.'), { kind: 'autoencoder-weights', step, config, state: { latent } });
}

/**
 * Loads an autoencoder from its weights export or from a training checkpoint
 * (`checkpoint-last.safetensors`; then the latent stats are absent unless recorded).
 */
export function loadAutoencoder(file: string): LoadedAutoencoder {
  const { meta, tensors } = loadCheckpoint(file);
  if (meta.kind !== 'autoencoder-weights' && meta.kind !== 'autoencoder')
    throw new Error(`${file}: expected an autoencoder checkpoint or weights file, got a '${meta.kind}' checkpoint`);
  const config = validateConfig(meta.config, `${file} (stored config)`);
  if (!config.autoencoder) throw new Error(`${file}: stored config has no autoencoder section`);
  const store = new ParamStore(new Rng(0));
  const ae = new VideoAutoencoder(store, config.autoencoder.model);
  const params = subTensors(tensors, 'model.');
  params.delete('loss.logvar');
  store.load(params, { source: file });
  return withLatentStats({ ae, store, config }, (meta.state.latent as LatentStats | null | undefined) ?? null);
}

/** An autoencoder with the normalisation of `latent` (identity without stats); shares `base`'s weights. */
export function withLatentStats(base: Pick<LoadedAutoencoder, 'ae' | 'store' | 'config'>, latent: LatentStats | null): LoadedAutoencoder {
  const shift = latent?.shift ?? 0;
  const scale = latent?.scale ?? 1;
  const { ae, store, config } = base;
  return {
    ae,
    store,
    config,
    latent,
    normalize: (z) => tf.tidy(() => tf.mul(tf.add(z, shift), scale) as tf.Tensor5D),
    denormalize: (zn) => tf.tidy(() => tf.sub(tf.div(zn, scale), shift) as tf.Tensor5D),
    dispose: () => store.dispose(),
  };
}
