/** Captions and class labels of a config's held-out clips (prompts and labels for conditional previews and evaluations). */
import { ExperimentConfig } from '../config/schema';
import { Rng } from '../nn/rng';
import { datasetFromConfig } from '../../data/from-config';
import type { ClipSample } from '../../data/types';
import type { LoadedLvdm } from './weights';

/** The first `n` held-out clips (cycling when there are fewer): the real clips a conditional evaluation takes its prompts or labels from. */
export async function heldOutClips(config: ExperimentConfig, n: number): Promise<ClipSample[]> {
  const ds = datasetFromConfig(config.data, 'heldout', config.seed);
  const out: ClipSample[] = [];
  for (let i = 0; i < n; i++) out.push(await ds.get(i % ds.size, new Rng(config.seed).fork(`caption-${i}`)));
  return out;
}

/**
 * The first `n` held-out clips (cycling when there are fewer), each with its caption: the real clips
 * whose captions `heldOutCaptions` gives as prompts; an error when the source has no captions.
 */
export async function heldOutCaptionedClips(config: ExperimentConfig, n: number): Promise<(ClipSample & { caption: string })[]> {
  return (await heldOutClips(config, n)).map((clip) => {
    if (clip.caption === undefined) throw new Error(`data source '${config.data.source}' has no captions for text-to-video prompts`);
    return { ...clip, caption: clip.caption };
  });
}

/** The first `n` held-out clips' captions (cycling when there are fewer); an error when the source has none. */
export async function heldOutCaptions(config: ExperimentConfig, n: number): Promise<string[]> {
  return (await heldOutCaptionedClips(config, n)).map((c) => c.caption);
}

/** The first `n` held-out clips' class labels (cycling when there are fewer); an error when the source has none. */
export async function heldOutLabels(config: ExperimentConfig, n: number): Promise<number[]> {
  return (await heldOutClips(config, n)).map((clip) => {
    if (clip.label === undefined) throw new Error(`data source '${config.data.source}' has no class labels for a class-conditional model`);
    return clip.label;
  });
}

/**
 * What a conditional model is asked for when sampling stands in for held-out clips (runner sweeps,
 * training previews, quality curves): text-to-video models their captions, class-conditional models
 * their labels; nothing for unconditional models.
 */
export async function heldOutConditioning(model: Pick<LoadedLvdm, 'text' | 'unet' | 'config'>, n: number): Promise<{ prompts?: string[]; classLabels?: number[] }> {
  if (model.text) return { prompts: await heldOutCaptions(model.config, n) };
  if (model.unet.cfg.num_classes !== undefined) return { classLabels: await heldOutLabels(model.config, n) };
  return {};
}
