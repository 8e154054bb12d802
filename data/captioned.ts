/**
 * `synthetic-captioned`: seeded videos whose captions are compositional, so that prompt following
 * of a text-to-video model can be measured here (issue 15). Each video shows one or two shapes of
 * one colour and kind moving in one direction over a plain background, captioned
 * "a red circle moves left" / "two blue squares move up":
 *   colour x shape x direction x count = 4 x 3 x 4 x 2 = 96 captions, drawn uniformly per video.
 * The motion is a straight line that crosses about 60% of the frame in 16 frames; a shape that
 * leaves the frame re-enters from the opposite side (so long videos keep moving), which the
 * caption does not describe: captions hold for the first 16 frames, and configs use
 * `data.video_length` <= 16 (clips then start at frame 0). Rendering is a pure function of (seed, index, frame, size), like the other
 * synthetic families (data/synthetic.ts dispatches here).
 */
import type { Rng } from '../lib/nn/rng';
import { type Frame, type Rgb, fillCircle, fillConvex } from './raster';

export const CAPTION_COLOURS: readonly { name: string; rgb: Rgb }[] = [
  { name: 'red', rgb: [235, 45, 40] },
  { name: 'green', rgb: [40, 215, 60] },
  { name: 'blue', rgb: [50, 90, 250] },
  { name: 'yellow', rgb: [250, 230, 40] },
];
export const CAPTION_SHAPES: readonly { name: string; plural: string }[] = [
  { name: 'circle', plural: 'circles' },
  { name: 'square', plural: 'squares' },
  { name: 'triangle', plural: 'triangles' },
];
/** Direction names and unit steps in image coordinates (y grows downwards). */
export const CAPTION_DIRECTIONS: readonly { name: string; dx: number; dy: number }[] = [
  { name: 'left', dx: -1, dy: 0 },
  { name: 'right', dx: 1, dy: 0 },
  { name: 'up', dx: 0, dy: -1 },
  { name: 'down', dx: 0, dy: 1 },
];
export const CAPTION_COUNTS: readonly number[] = [1, 2];
/** Frames over which a caption is true (clips should not be longer). */
export const CAPTIONED_MAX_FRAMES = 16;

/** The attributes of one captioned video, as indices into the lists above. */
export interface CaptionAttributes {
  colour: number;
  shape: number;
  direction: number;
  /** Index into CAPTION_COUNTS. */
  count: number;
}

export const CAPTION_ATTRIBUTES = ['colour', 'shape', 'direction', 'count'] as const;
export type CaptionAttribute = (typeof CAPTION_ATTRIBUTES)[number];
export const CAPTION_ATTRIBUTE_SIZES: Record<CaptionAttribute, number> = {
  colour: CAPTION_COLOURS.length,
  shape: CAPTION_SHAPES.length,
  direction: CAPTION_DIRECTIONS.length,
  count: CAPTION_COUNTS.length,
};

/** "a red circle moves left" / "two red circles move left". */
export function captionOf(a: CaptionAttributes): string {
  const colour = CAPTION_COLOURS[a.colour].name;
  const dir = CAPTION_DIRECTIONS[a.direction].name;
  return CAPTION_COUNTS[a.count] === 1 ? `a ${colour} ${CAPTION_SHAPES[a.shape].name} moves ${dir}` : `two ${colour} ${CAPTION_SHAPES[a.shape].plural} move ${dir}`;
}

/** Every word the captions use (for a word-vocabulary tokenizer: text.words). */
export function captionWords(): string[] {
  return [
    'a', 'two', 'moves', 'move',
    ...CAPTION_COLOURS.map((c) => c.name),
    ...CAPTION_SHAPES.flatMap((s) => [s.name, s.plural]),
    ...CAPTION_DIRECTIONS.map((d) => d.name),
  ];
}

/** Every caption, in attribute order (colour slowest, count fastest). */
export function allCaptions(): { caption: string; attributes: CaptionAttributes }[] {
  const out: { caption: string; attributes: CaptionAttributes }[] = [];
  for (let colour = 0; colour < CAPTION_COLOURS.length; colour++)
    for (let shape = 0; shape < CAPTION_SHAPES.length; shape++)
      for (let direction = 0; direction < CAPTION_DIRECTIONS.length; direction++)
        for (let count = 0; count < CAPTION_COUNTS.length; count++) {
          const attributes = { colour, shape, direction, count };
          out.push({ caption: captionOf(attributes), attributes });
        }
  return out;
}

export interface CaptionedParams {
  family: 'captioned';
  attributes: CaptionAttributes;
  background: Rgb;
  /** Shape radius (world units; the shorter frame side is 1). */
  r: number;
  /** World units per frame. */
  speed: number;
  /** Start positions of the shapes (world units). */
  starts: [number, number][];
}

/** Draws one video's attributes and layout from its Rng. */
export function makeCaptionedParams(rng: Rng): CaptionedParams {
  const attributes: CaptionAttributes = {
    colour: rng.int(0, CAPTION_COLOURS.length - 1),
    shape: rng.int(0, CAPTION_SHAPES.length - 1),
    direction: rng.int(0, CAPTION_DIRECTIONS.length - 1),
    count: rng.int(0, CAPTION_COUNTS.length - 1),
  };
  const grey = rng.int(35, 95);
  const background: Rgb = [grey + rng.int(-12, 12), grey + rng.int(-12, 12), grey + rng.int(-12, 12)];
  const d = CAPTION_DIRECTIONS[attributes.direction];
  const r = 0.14 + 0.03 * rng.uniform();
  const speed = 0.034 + 0.008 * rng.uniform();
  // Along the motion: start 0.75-0.8 of the way "behind" the centre line; across it: one shape
  // anywhere in the middle band, two shapes in the two halves.
  const along = 0.78 + 0.05 * (rng.uniform() - 0.5);
  const across = CAPTION_COUNTS[attributes.count] === 1 ? [0.32 + 0.36 * rng.uniform()] : [0.27 + 0.04 * rng.uniform(), 0.7 + 0.04 * rng.uniform()];
  const starts = across.map((c): [number, number] => {
    if (d.dx !== 0) return [d.dx < 0 ? along : 1 - along, c];
    return [c, d.dy < 0 ? along : 1 - along];
  });
  return { family: 'captioned', attributes, background, r, speed, starts };
}

/** Renders frame t into f (the world is the unit square centred in the frame's shorter side). */
export function renderCaptioned(p: CaptionedParams, t: number, f: Frame): void {
  const s = Math.min(f.width, f.height);
  const [br, bg, bb] = p.background;
  const end = f.offset + f.width * f.height * 3;
  for (let i = f.offset; i < end; i += 3) {
    f.data[i] = br;
    f.data[i + 1] = bg;
    f.data[i + 2] = bb;
  }
  const d = CAPTION_DIRECTIONS[p.attributes.direction];
  const rgb = CAPTION_COLOURS[p.attributes.colour].rgb;
  const ox = (f.width - s) / 2;
  const oy = (f.height - s) / 2;
  // Wrap-around along the motion: positions live on [-r, 1 + r) (one period = 1 + 2r).
  const wrap = (v: number): number => {
    const period = 1 + 2 * p.r;
    return ((((v + p.r) % period) + period) % period) - p.r;
  };
  for (const [x0, y0] of p.starts) {
    const cx = ox + wrap(x0 + d.dx * p.speed * t) * s;
    const cy = oy + wrap(y0 + d.dy * p.speed * t) * s;
    const r = p.r * s;
    if (p.attributes.shape === 0) {
      fillCircle(f, cx, cy, r, rgb);
    } else {
      const n = p.attributes.shape === 1 ? 4 : 3;
      // Squares axis-aligned, triangles pointing up: the kind, not the pose, is the attribute.
      const a0 = n === 4 ? Math.PI / 4 : -Math.PI / 2;
      const rr = n === 4 ? r * 1.1 : r * 1.15;
      const xs: number[] = [];
      const ys: number[] = [];
      for (let i = 0; i < n; i++) {
        xs.push(cx + rr * Math.cos(a0 + (2 * Math.PI * i) / n));
        ys.push(cy + rr * Math.sin(a0 + (2 * Math.PI * i) / n));
      }
      fillConvex(f, xs, ys, rgb);
    }
  }
}
