/**
 * The sampling weights stored in a latent diffusion model file, without building the network:
 * `lvdm.safetensors` (kind 'lvdm-weights') or a training checkpoint of kind 'lvdm' (its EMA shadow
 * over its live weights). Read by `loadLvdm` and by `init` (lib/lvdm/init.ts); it imports nothing
 * of the trainer, so the trainer can use it.
 */
import { ExperimentConfig } from '../config/schema';
import { validateConfig } from '../config/load';
import { NamedArray } from '../nn/params';
import { CheckpointMeta, loadCheckpoint, subTensors } from '../train/checkpoint';

export interface LvdmSamplingTensors {
  meta: CheckpointMeta;
  /** The stored config (validated). */
  config: ExperimentConfig;
  /** Parameters by name: the EMA shadow over the live weights where the file has one. */
  params: Map<string, NamedArray>;
  ema: boolean;
}

/** The sampling weights of `lvdm.safetensors` or of a training checkpoint of kind 'lvdm' (its `ema.*` over its `model.*`). */
export function lvdmSamplingTensors(file: string): LvdmSamplingTensors {
  const { meta, tensors } = loadCheckpoint(file);
  if (meta.kind !== 'lvdm-weights' && meta.kind !== 'lvdm')
    throw new Error(`${file}: expected a latent diffusion model (lvdm.safetensors or an lvdm training checkpoint), got a '${meta.kind}' checkpoint`);
  const config = validateConfig(meta.config, `${file} (stored config)`);
  const params = subTensors(tensors, 'model.');
  let ema = meta.kind === 'lvdm-weights' ? Boolean((meta.state as { ema?: unknown }).ema) : false;
  if (meta.kind === 'lvdm') {
    const shadow = subTensors(tensors, 'ema.');
    for (const [k, v] of shadow) params.set(k, v);
    ema = shadow.size > 0;
  }
  return { meta, config, params, ema };
}
