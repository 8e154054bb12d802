/**
 * Prompt-following score (issue 15): the fraction of generated videos whose classifier-predicted
 * attribute equals the prompt's, per attribute (colour, shape, direction, count), and the fraction
 * with every attribute right. Chance levels are 1 / (number of values) per attribute.
 */
import { CAPTION_ATTRIBUTES, CAPTION_ATTRIBUTE_SIZES, CaptionAttribute, CaptionAttributes } from '../../data/captioned';

export interface PromptFollowing {
  n: number;
  accuracy: Record<CaptionAttribute, number>;
  /** All four attributes right. */
  all: number;
}

export function promptFollowing(predicted: readonly CaptionAttributes[], target: readonly CaptionAttributes[]): PromptFollowing {
  if (predicted.length !== target.length || target.length === 0) throw new Error(`promptFollowing: ${predicted.length} predictions for ${target.length} targets`);
  const accuracy = {} as Record<CaptionAttribute, number>;
  for (const a of CAPTION_ATTRIBUTES) accuracy[a] = predicted.filter((p, i) => p[a] === target[i][a]).length / target.length;
  const all = predicted.filter((p, i) => CAPTION_ATTRIBUTES.every((a) => p[a] === target[i][a])).length / target.length;
  return { n: target.length, accuracy, all };
}

/** Chance accuracy per attribute (uniformly drawn prompts). */
export function chanceLevels(): Record<CaptionAttribute, number> {
  const out = {} as Record<CaptionAttribute, number>;
  for (const a of CAPTION_ATTRIBUTES) out[a] = 1 / CAPTION_ATTRIBUTE_SIZES[a];
  return out;
}
