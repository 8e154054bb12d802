/**
 * Prompt following on the synthetic shapes families, read without a learned classifier: does a
 * generated clip draw the object its caption names ("a video of a red square and a blue disc
 * moving", data/synthetic.ts syntheticVideoInfo)? Each clip's dominant object (the most frequent
 * moving colour) is tracked and its kind read from its outline by the object-consistency reading
 * (object-consistency.ts, shape-kind.ts); then
 *   - colour named: the object's colour is nearest (RGB) to a palette colour the caption names;
 *   - kind named: the read kind is the kind the caption gives that colour (of the colour-named clips);
 *   - polygons: clips whose object reads as a square or a triangle.
 * On real clips with their own captions this gives the reader's ceiling (test/shapes-prompt-following.test.ts).
 */
import { SHAPE_PALETTE } from '../data/synthetic';
import { objectConsistency, type ConsistencyOptions } from './object-consistency';
import type { ShapeKind } from './shape-kind';

export interface NamedShape {
  colour: string;
  kind: ShapeKind;
}

/** The shapes a caption names, in order; an error naming the caption when it names none. */
export function shapesOfCaption(caption: string): NamedShape[] {
  const out = [...caption.matchAll(/\ba (\w+) (disc|square|triangle)\b/g)].map((m) => ({ colour: m[1], kind: m[2] as ShapeKind }));
  if (out.length === 0) throw new Error(`shapesOfCaption: the caption names no shape ('a <colour> disc|square|triangle'): '${caption}'`);
  return out;
}

/** The palette colour (data/synthetic.ts SHAPE_PALETTE) nearest in RGB to `rgb` (0-255). */
export function nearestShapeColour(rgb: readonly number[]): string {
  let best = SHAPE_PALETTE[0].name;
  let bd = Infinity;
  for (const c of SHAPE_PALETTE) {
    const d = (c.rgb[0] - rgb[0]) ** 2 + (c.rgb[1] - rgb[1]) ** 2 + (c.rgb[2] - rgb[2]) ** 2;
    if (d < bd) [best, bd] = [c.name, d];
  }
  return best;
}

export interface ShapesPromptFollowing {
  clips: number;
  /** Clips whose object keeps a consistent shape and velocity (object-consistency.ts). */
  consistent: number;
  /** Clips in which an object was found and its kind read. */
  object: number;
  /** Of `object`: the object's colour is one the caption names. */
  colourNamed: number;
  /** Of `colourNamed`: the read kind is the caption's kind for that colour. */
  kindNamed: number;
  /** Of `object`: read as a square or a triangle. */
  polygons: number;
  kinds: Record<ShapeKind, number>;
}

/** The readings of `n` clips [n, T, H, W, 3] (uint8, or floats in `opts.range`) against their captions. */
export function shapesPromptFollowing(clips: ArrayLike<number>, shape: readonly number[], captions: readonly string[], opts: ConsistencyOptions = {}): ShapesPromptFollowing {
  if (shape.length !== 5 || shape[4] !== 3) throw new Error(`shapesPromptFollowing: expected clips [n, T, H, W, 3], got [${shape.join(', ')}]`);
  if (captions.length !== shape[0]) throw new Error(`shapesPromptFollowing: ${shape[0]} clips but ${captions.length} captions`);
  if (clips.length !== shape.reduce((p, d) => p * d, 1)) throw new Error(`shapesPromptFollowing: ${clips.length} values for shape [${shape.join(', ')}]`);
  const named = captions.map(shapesOfCaption);
  // One object-consistency pass over all clips: the verdicts, the tracked colour and the kind per clip.
  const res = objectConsistency(clips, shape, opts);
  const r: ShapesPromptFollowing = { clips: res.clips, consistent: res.consistent, object: 0, colourNamed: 0, kindNamed: 0, polygons: res.kinds.square + res.kinds.triangle, kinds: res.kinds };
  res.perClip.forEach((c, i) => {
    if (!c.colour || !c.kind) return;
    r.object++;
    const same = named[i].filter((s) => s.colour === nearestShapeColour(c.colour!));
    if (same.length === 0) return;
    r.colourNamed++;
    if (same.some((s) => s.kind === c.kind)) r.kindNamed++;
  });
  return r;
}
