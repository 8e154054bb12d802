/**
 * Starting a latent model from another's trained weights (`init` of a short stage): image-model
 * pretraining for video models. VideoLDM (Blattmann et al. 2023, "Align your Latents", section 3.1)
 * and Make-A-Video (Singer et al. 2022) take a trained image model, insert temporal layers and train
 * them on videos. Here the image model is the same UNet3D trained on one-frame latents, best without
 * temporal attention (unet.temporal_attention false): every other tensor matches by name and shape,
 * and only the temporal attention layers look across frames:
 *
 * - temporal 'fresh': those layers keep their fresh initialisation (a zero output projection, the
 *   identity), so a video model started from an image model without them is exactly that image
 *   model applied to each frame; 'copy': copied from an image model that has them (on one frame
 *   their attention is a per-position linear map, which across frames becomes a mixing of frames).
 * - train 'temporal': only the temporal layers train and the rest stays frozen (VideoLDM's choice:
 *   what the image model draws in a frame is kept); 'all': every parameter trains.
 */
import { NamedArray, ParamStore } from '../nn/params';
import { UNet3D } from '../models/unet3d/unet';
import { lvdmSamplingTensors } from './stored';

export interface InitSpec {
  /** lvdm.safetensors (or an lvdm training checkpoint) of the model whose weights start this one. */
  weights: string;
  temporal: 'fresh' | 'copy';
  train: 'all' | 'temporal';
}

export interface InitReport {
  copied: number;
  /** Temporal parameters left at their fresh initialisation. */
  fresh: number;
  /** Parameters frozen (train 'temporal'). */
  frozen: number;
}

/**
 * Same names and shapes, except that the source may lack the temporal layers (`optional`): the
 * error names the file, the first differing tensors and both shapes.
 */
function checkSameTensors(store: ParamStore, src: Map<string, NamedArray>, file: string, optional: Set<string>): void {
  const names = store.names();
  const missing = names.filter((n) => !src.has(n) && !optional.has(n));
  const extra = [...src.keys()].filter((n) => !store.has(n));
  const list = (xs: string[]): string => `${xs.slice(0, 4).join(', ')}${xs.length > 4 ? `, ... (${xs.length})` : ''}`;
  const hint = 'init needs the same unet section (channels, levels, attention, conditioning) in both stages';
  if (missing.length) throw new Error(`init from ${file}: it has no tensor for this model's ${list(missing)}; ${hint}`);
  if (extra.length) throw new Error(`init from ${file}: its ${list(extra)} are not parameters of this model; ${hint}`);
  for (const n of names) {
    const got = src.get(n)?.shape;
    const want = store.get(n).shape;
    if (got && (got.length !== want.length || got.some((d, i) => d !== want[i]))) throw new Error(`init from ${file}: tensor '${n}' is [${got}], this model's is [${want}]; ${hint}`);
  }
}

/** Loads `spec.weights` into `store` (built with `unet`) as the spec says, and freezes what it says. */
export function initFromWeights(store: ParamStore, unet: UNet3D, spec: InitSpec): InitReport {
  const { params } = lvdmSamplingTensors(spec.weights);
  const temporal = new Set(unet.cfg.temporal_attention ? unet.temporalParamNames() : []);
  if (spec.train === 'temporal' && temporal.size === 0) throw new Error(`init from ${spec.weights}: train 'temporal' but this model has no temporal attention (unet.temporal_attention is false)`);
  checkSameTensors(store, params, spec.weights, spec.temporal === 'fresh' ? temporal : new Set());
  const copy = new Map([...params].filter(([n]) => spec.temporal === 'copy' || !temporal.has(n)));
  store.load(copy, { strict: false, source: spec.weights });
  const frozen = spec.train === 'temporal' ? store.names().filter((n) => !temporal.has(n)) : [];
  store.freezeNames(frozen);
  return { copied: copy.size, fresh: store.names().length - copy.size, frozen: frozen.length };
}
