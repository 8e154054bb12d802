/**
 * The trained latent diffusion model on disk: `lvdm.safetensors` (kind 'lvdm-weights') holds the
 * sampling weights (EMA when enabled) as `model.*`, the config that rebuilds the UNet and the
 * schedule, the latent normalisation it was trained with and the autoencoder it belongs to.
 * `loadLvdm` also accepts a training checkpoint (it then prefers the `ema.*` tensors).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExperimentConfig } from '../config/schema';
import { NamedArray, ParamStore } from '../nn/params';
import { Rng } from '../nn/rng';
import { prefixed, saveCheckpoint } from '../train/checkpoint';
import { lvdmSamplingTensors } from './stored';
import { NoiseSchedule } from '../diffusion/schedule';
import { epsModelFor } from '../diffusion/prediction';
import { EpsModel } from '../diffusion/types';
import { UNet3D } from '../models/unet3d/unet';
import { LatentNorm } from './latents';
import { lvdmSections, scheduleFromConfig, textConditionerFor } from './trainer';
import { TextConditioner } from '../text/conditioner';

export const LVDM_WEIGHTS = 'lvdm.safetensors';

export interface LvdmWeightsState {
  /** Absolute path of the autoencoder whose latents the model learned. */
  autoencoder: string;
  latent: LatentNorm;
  /** Latent shape of a training clip [t, h, w, c]. */
  latent_shape: [number, number, number, number];
  /** Pixel frames / size of a training clip. */
  clip: { frames: number; height: number; width: number };
  ema: boolean;
}

export function saveLvdmWeights(file: string, weights: Map<string, NamedArray>, config: ExperimentConfig, state: LvdmWeightsState, step: number): void {
  saveCheckpoint(file, prefixed(weights, 'model.'), { kind: 'lvdm-weights', step, config, state: { ...state } });
}

export interface LoadedLvdm {
  unet: UNet3D;
  /** The text encoder of a text-to-video model (config `text`), else null. */
  text: TextConditioner | null;
  store: ParamStore;
  config: ExperimentConfig;
  schedule: NoiseSchedule;
  /** The network as the samplers' EpsModel (a v-prediction network converted to eps). */
  eps: EpsModel;
  state: LvdmWeightsState;
  step: number;
  source: string;
  dispose(): void;
}

/** Loads `lvdm.safetensors` or a training checkpoint of kind 'lvdm'. */
export function loadLvdm(file: string): LoadedLvdm {
  const { meta, config, params: stored, ema } = lvdmSamplingTensors(file);
  const { unet } = lvdmSections(config, `${file} (stored config)`);
  const store = new ParamStore(new Rng(0));
  const net = new UNet3D(store, unet);
  const text = textConditionerFor(config, store, `${file} (stored config)`);
  const params = meta.kind === 'lvdm' ? new Map([...stored].filter(([k]) => store.has(k))) : stored;
  store.load(params, { source: file });
  const st = meta.state as Partial<LvdmWeightsState> & { latent?: LatentNorm; latent_shape?: [number, number, number, number] };
  if (!st.latent || !st.latent_shape) throw new Error(`${file}: no latent normalisation / shape recorded`);
  const state: LvdmWeightsState = {
    autoencoder: st.autoencoder ?? config.diffusion?.autoencoder ?? '',
    latent: st.latent,
    latent_shape: st.latent_shape,
    clip: st.clip ?? { frames: config.data.frames, height: config.data.size, width: config.data.size },
    ema,
  };
  const schedule = scheduleFromConfig(config.diffusion!);
  return {
    unet: net,
    text,
    store,
    config,
    schedule,
    eps: epsModelFor(net.asEpsModel(), schedule, config.diffusion!.prediction),
    state,
    step: meta.step,
    source: file,
    dispose: () => store.dispose(),
  };
}

/** The autoencoder file to decode with: explicit override, else the recorded one (checked). */
export function resolveAutoencoder(model: LoadedLvdm, override?: string): string {
  const file = override ?? model.state.autoencoder;
  if (!file) throw new Error(`${model.source}: no autoencoder recorded; pass --ae <autoencoder.safetensors>`);
  if (!fs.existsSync(file)) {
    const near = path.join(path.dirname(model.source), '..', 'autoencoder', 'autoencoder.safetensors');
    if (!override && fs.existsSync(near)) return near;
    throw new Error(`${file}: autoencoder not found (recorded in ${model.source}); pass --ae <autoencoder.safetensors>`);
  }
  return file;
}
