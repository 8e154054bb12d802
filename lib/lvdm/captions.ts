/** Captions of a config's held-out clips (prompts for text-to-video previews and evaluations). */
import { ExperimentConfig } from '../config/schema';
import { Rng } from '../nn/rng';
import { datasetFromConfig } from '../../data/from-config';
import type { ClipSample } from '../../data/types';

/**
 * The first `n` held-out clips (cycling when there are fewer), each with its caption: the real clips
 * whose captions `heldOutCaptions` gives as prompts; an error when the source has no captions.
 */
export async function heldOutCaptionedClips(config: ExperimentConfig, n: number): Promise<(ClipSample & { caption: string })[]> {
  const ds = datasetFromConfig(config.data, 'heldout', config.seed);
  const out: (ClipSample & { caption: string })[] = [];
  for (let i = 0; i < n; i++) {
    const clip = await ds.get(i % ds.size, new Rng(config.seed).fork(`caption-${i}`));
    if (clip.caption === undefined) throw new Error(`data source '${config.data.source}' has no captions for text-to-video prompts`);
    out.push({ ...clip, caption: clip.caption });
  }
  return out;
}

/** The first `n` held-out clips' captions (cycling when there are fewer); an error when the source has none. */
export async function heldOutCaptions(config: ExperimentConfig, n: number): Promise<string[]> {
  return (await heldOutCaptionedClips(config, n)).map((c) => c.caption);
}
