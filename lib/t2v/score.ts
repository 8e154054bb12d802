/**
 * Prompt-following score (issue 15): the fraction of generated videos whose classifier-predicted
 * attribute equals the prompt's, per attribute (colour, shape, direction, count), and the fraction
 * with every attribute right. Chance levels are 1 / (number of values) per attribute.
 */
import { CAPTION_ATTRIBUTES, CAPTION_ATTRIBUTE_SIZES, CAPTION_COLOURS, CaptionAttribute, CaptionAttributes } from '../../data/captioned';

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

/**
 * A classifier-free colour probe: among saturated pixels (max - min channel > 80), the caption
 * colour (index into CAPTION_COLOURS) nearest to most of them; -1 when no pixel is saturated.
 * It reads colour even from videos too degraded for the classifier.
 */
export function dominantColour(video: Uint8Array): number {
  const votes = new Array<number>(CAPTION_COLOURS.length).fill(0);
  for (let i = 0; i < video.length; i += 3) {
    const r = video[i];
    const g = video[i + 1];
    const b = video[i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) <= 80) continue;
    let best = 0;
    let bestD = Infinity;
    CAPTION_COLOURS.forEach((c, k) => {
      const d = (r - c.rgb[0]) ** 2 + (g - c.rgb[1]) ** 2 + (b - c.rgb[2]) ** 2;
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    });
    votes[best] += 1;
  }
  const top = votes.indexOf(Math.max(...votes));
  return votes[top] > 0 ? top : -1;
}
