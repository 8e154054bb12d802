/**
 * Seeded procedural videos: stand-ins for the real data sets that run anywhere.
 *
 * Every frame is a pure function of (family, seed, video index, frame index, size): motion is
 * analytic (triangle waves, sinusoids, lattice noise in x-y-t), so frame t of a video of any
 * length is rendered in O(1) without rendering earlier frames. Content is defined in world
 * units where the shorter frame side is 1, so one video rendered at 32x32 and at 64x64 shows
 * the same scene.
 *
 * Families (config sources `synthetic-<family>`):
 * - shapes: one to three discs / squares / triangles bouncing on a textured background.
 * - sky: slowly drifting, morphing clouds (3D value noise), static camera.
 * - taichi: an articulated stick figure moving slowly in front of a static background.
 * - ucf: 12 action classes with distinct motions and a swaying camera; labels + captions.
 * - captioned: one or two shapes of one colour moving in one direction, with compositional
 *   captions ("two red squares move left"; data/captioned.ts).
 */
import { Rng, hashString } from '../lib/nn/rng';
import type { ClipDataset, ClipSample } from './types';
import { captionForClass } from './classes';
import { type CaptionAttributes, type CaptionedParams, captionOf, makeCaptionedParams, renderCaptioned } from './captioned';
import {
  type Frame,
  type Rgb,
  bounce,
  fillCapsule,
  fillCircle,
  fillConvex,
  mixRgb,
  valueNoise2,
  valueNoise3,
} from './raster';

export type SyntheticFamily = 'shapes' | 'shapes-large' | 'shapes-upright' | 'shapes-plain' | 'shapes-flat' | 'shapes-single' | 'sky' | 'taichi' | 'ucf' | 'captioned';
export const SYNTHETIC_FAMILIES: readonly SyntheticFamily[] = ['shapes', 'shapes-large', 'shapes-upright', 'shapes-plain', 'shapes-flat', 'shapes-single', 'sky', 'taichi', 'ucf', 'captioned'];

/** The families of moving discs, squares and triangles. */
export type ShapesFamily = 'shapes' | 'shapes-large' | 'shapes-upright' | 'shapes-plain' | 'shapes-flat' | 'shapes-single';

export function isShapesFamily(family: SyntheticFamily): family is ShapesFamily {
  return Object.prototype.hasOwnProperty.call(SHAPE_FAMILIES, family);
}

/** How a drawing family draws its shapes: circumradius rMin + rSpan U(0, 1), 1 to maxCount of them. */
interface ShapeDraws {
  rMin: number;
  rSpan: number;
  maxCount: number;
}
/** A family derived from a drawing family's videos (its seeds and draws), posed or pruned after drawing. */
interface ShapePose {
  drawsOf: 'shapes' | 'shapes-large';
  upright?: boolean;
  single?: boolean;
  flat?: boolean;
}

/**
 * Sizes and counts of the shapes families (world units: the frame's short side is 1), and how their
 * shapes are posed.
 * 'shapes' (the first demo family): 1-3 shapes of circumradius 0.08-0.20, 5-13 px across at 32x32.
 * 'shapes-large': 1-2 shapes of circumradius 0.15-0.25, 10-16 px across at 32x32, so that a
 * triangle's corners are several pixels apart (experiments/RESULTS.md: at the small size every
 * model here generated discs).
 * 'shapes-upright': the same videos as 'shapes-large' (`drawsOf`: its seeds and draws) with every
 * square axis-aligned, every triangle pointing up and none spinning (`upright`), so that each kind
 * is one pattern rather than one per angle.
 * 'shapes-plain': shapes-upright's videos with only their first shape (`single`), on a background
 * of one colour (`flat`: the background's first colour): the easiest outline task of the family, a
 * diagnostic (experiments/shapes-image-plain.yaml) of whether the shapes models' blobs come from
 * the scene's clutter or from drawing an outline at all.
 * 'shapes-flat': shapes-large's videos on a background of one colour, shapes and angles unchanged
 * (experiments/shapes-image-flat.yaml: is it the textured background?).
 * 'shapes-single': shapes-flat's videos with only their first shape, at its angle and spin
 * (experiments/shapes-image-single.yaml: is it the second shape, or the angles?).
 */
const SHAPE_FAMILIES: Record<ShapesFamily, ShapeDraws | ShapePose> = {
  shapes: { rMin: 0.08, rSpan: 0.12, maxCount: 3 },
  'shapes-large': { rMin: 0.15, rSpan: 0.1, maxCount: 2 },
  'shapes-upright': { drawsOf: 'shapes-large', upright: true },
  'shapes-plain': { drawsOf: 'shapes-large', upright: true, single: true, flat: true },
  'shapes-flat': { drawsOf: 'shapes-large', flat: true },
  'shapes-single': { drawsOf: 'shapes-large', single: true, flat: true },
};

/** The family whose seeds and draws a shapes family's videos come from, and how they are posed after. */
function shapesRecipe(family: ShapesFamily): { drawn: 'shapes' | 'shapes-large'; draws: ShapeDraws; pose: Omit<ShapePose, 'drawsOf'> } {
  const f = SHAPE_FAMILIES[family];
  const drawn = 'drawsOf' in f ? f.drawsOf : (family as 'shapes' | 'shapes-large');
  return { drawn, draws: SHAPE_FAMILIES[drawn] as ShapeDraws, pose: 'drawsOf' in f ? f : {} };
}

/** Class names of the UCF-like family (CamelCase as in UCF-101; captions split the words). */
export const SYNTHETIC_UCF_CLASSES: readonly string[] = [
  'BallBouncing',
  'PendulumSwing',
  'WheelSpinning',
  'JumpingJack',
  'Walking',
  'BodyWeightSquats',
  'HandWaving',
  'Punch',
  'JugglingBalls',
  'Drumming',
  'BoxSliding',
  'LightBlinking',
];

/** The kinds of shape the shapes families draw. */
export const SYNTHETIC_SHAPE_KINDS: readonly string[] = ['disc', 'square', 'triangle'];

/**
 * Class names of the shapes families: the set of kinds a clip shows, label = (bit mask of its kinds,
 * bit k for SYNTHETIC_SHAPE_KINDS[k]) - 1: 'disc', 'square', 'disc+square', 'triangle', ... A
 * class-conditional model asked for 'square' draws clips in which every shape is a square.
 */
export const SYNTHETIC_SHAPE_CLASSES: readonly string[] = Array.from({ length: 2 ** SYNTHETIC_SHAPE_KINDS.length - 1 }, (_, i) =>
  SYNTHETIC_SHAPE_KINDS.filter((_, k) => ((i + 1) >> k) & 1).join('+'),
);

/** The kinds (indices into SYNTHETIC_SHAPE_KINDS) of a shapes class label. */
export function shapeClassKinds(label: number): number[] {
  if (!Number.isInteger(label) || label < 0 || label >= SYNTHETIC_SHAPE_CLASSES.length)
    throw new Error(`shapes class label ${label} outside [0, ${SYNTHETIC_SHAPE_CLASSES.length - 1}] (${SYNTHETIC_SHAPE_CLASSES.join(', ')})`);
  return SYNTHETIC_SHAPE_KINDS.map((_, k) => k).filter((k) => ((label + 1) >> k) & 1);
}

/** Identifies one synthetic video. */
export interface SyntheticVideoSpec {
  family: SyntheticFamily;
  seed: number;
  index: number;
  height: number;
  width: number;
}

/** 'synthetic-sky' -> 'sky'; null for any other source name. */
export function syntheticFamilyFromSource(source: string): SyntheticFamily | null {
  const m = /^synthetic-([a-z][\w-]*)$/.exec(source);
  if (!m) return null;
  return (SYNTHETIC_FAMILIES as readonly string[]).includes(m[1]) ? (m[1] as SyntheticFamily) : null;
}

// ---------------------------------------------------------------------------------------------
// Per-video parameters (drawn once from an Rng seeded by family, seed and index; cached).

const TAU = 2 * Math.PI;

interface Wave {
  amp: number;
  omega: number;
  phase: number;
}

/** a0 + sum of sinusoids: smooth joint trajectories. */
function waveAt(base: number, waves: readonly Wave[], t: number): number {
  let v = base;
  for (const w of waves) v += w.amp * Math.sin(w.omega * t + w.phase);
  return v;
}

function randWaves(rng: Rng, n: number, amp: number, minPeriod: number, maxPeriod: number): Wave[] {
  const out: Wave[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      amp: amp * (0.4 + 0.6 * rng.uniform()) / (i + 1),
      omega: TAU / (minPeriod + (maxPeriod - minPeriod) * rng.uniform()),
      phase: TAU * rng.uniform(),
    });
  }
  return out;
}

function randColour(rng: Rng, lo: number, hi: number): Rgb {
  return [rng.int(lo, hi), rng.int(lo, hi), rng.int(lo, hi)];
}

interface Background {
  kind: 'noise' | 'gradient' | 'stripes';
  c1: Rgb;
  c2: Rgb;
  angle: number;
  freq: number;
  seed: number;
}

function randBackground(rng: Rng): Background {
  const kinds: Background['kind'][] = ['noise', 'gradient', 'stripes'];
  const kind = rng.choice(kinds);
  const c1 = randColour(rng, 40, 170);
  const near = (v: number): number => Math.max(0, Math.min(255, v + rng.int(-45, 45)));
  const c2: Rgb = kind === 'stripes' ? [near(c1[0]), near(c1[1]), near(c1[2])] : randColour(rng, 40, 170);
  return { kind, c1, c2, angle: TAU * rng.uniform(), freq: 2 + 5 * rng.uniform(), seed: rng.nextU32() };
}

/** Background colour at world point (x, y); (aw, ah) is the world extent of the frame. */
function backgroundAt(b: Background, x: number, y: number, aw: number, ah: number): [number, number, number] {
  let t: number;
  if (b.kind === 'noise') {
    t = 0.65 * valueNoise2(x * b.freq, y * b.freq, b.seed) + 0.35 * valueNoise2(x * b.freq * 2.3, y * b.freq * 2.3, b.seed ^ 0x5bd1e995);
  } else if (b.kind === 'gradient') {
    const c = Math.cos(b.angle);
    const s = Math.sin(b.angle);
    const ext = 0.5 * (Math.abs(c) * aw + Math.abs(s) * ah) || 1;
    t = 0.5 + (0.5 * ((x - aw / 2) * c + (y - ah / 2) * s)) / ext;
  } else {
    t = 0.5 + 0.5 * Math.sin(TAU * b.freq * (x * Math.cos(b.angle) + y * Math.sin(b.angle)));
  }
  return mixRgb(b.c1, b.c2, t);
}

export const SHAPE_PALETTE: readonly { name: string; rgb: Rgb }[] = [
  { name: 'red', rgb: [230, 40, 40] },
  { name: 'green', rgb: [40, 210, 60] },
  { name: 'blue', rgb: [40, 80, 240] },
  { name: 'yellow', rgb: [245, 225, 30] },
  { name: 'magenta', rgb: [225, 50, 220] },
  { name: 'cyan', rgb: [40, 220, 230] },
  { name: 'orange', rgb: [250, 140, 20] },
  { name: 'white', rgb: [250, 250, 250] },
];

interface Shape {
  kind: number; // index into SYNTHETIC_SHAPE_KINDS
  colour: number; // index into SHAPE_PALETTE
  r: number; // world units (circumradius for polygons)
  x0: number;
  y0: number;
  vx: number; // world units per frame
  vy: number;
  angle0: number;
  spin: number; // rad per frame
}

interface ShapesParams {
  family: ShapesFamily;
  bg: Background;
  shapes: Shape[];
}

interface SkyParams {
  family: 'sky';
  top: Rgb;
  horizon: Rgb;
  cloud: Rgb;
  shade: number;
  threshold: number;
  scale: number;
  vx: number;
  vy: number;
  morph: number;
  seed: number;
}

interface FigureStyle {
  body: Rgb;
  back: Rgb; // limbs drawn behind the torso
  head: Rgb;
  size: number; // world height of the figure
}

interface TaichiParams {
  family: 'taichi';
  wall: Background;
  floor: Rgb;
  floorY: number; // as a fraction of the world height
  style: FigureStyle;
  baseX: number; // fraction of world width
  sway: Wave[];
  bob: Wave[];
  lean: Wave[];
  shoulderL: Wave[];
  shoulderR: Wave[];
  elbowL: Wave[];
  elbowR: Wave[];
  hipL: Wave[];
  hipR: Wave[];
  kneeL: Wave[];
  kneeR: Wave[];
}

interface UcfParams {
  family: 'ucf';
  label: number;
  wall: Rgb;
  ground: Rgb;
  floorY: number; // fraction of world height
  texSeed: number;
  texFreq: number;
  poleFreq: number;
  panAmpX: number;
  panAmpY: number;
  panOmega: number;
  panPhase: number;
  period: number; // frames per motion cycle
  phase: number; // radians
  dirSign: number; // +1 or -1
  cx: number; // fraction of world width where the action is centred
  prop: Rgb; // colour of the ball / wheel / box / light
  style: FigureStyle;
  speed: number; // world units per frame for translating actors
}

type VideoParams = ShapesParams | SkyParams | TaichiParams | UcfParams | CaptionedParams;

function isShapesParams(p: VideoParams): p is ShapesParams {
  return isShapesFamily(p.family);
}

function videoSeed(family: SyntheticFamily, seed: number, index: number): number {
  const drawn = isShapesFamily(family) ? shapesRecipe(family).drawn : family;
  let h = hashString(`synthetic-${drawn}`) ^ Math.imul(index + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ Math.imul(Math.floor(seed) >>> 0, 0xc2b2ae35);
  return (h ^ (h >>> 13)) >>> 0;
}

function randFigureStyle(rng: Rng, minSize: number, maxSize: number): FigureStyle {
  const body = randColour(rng, 60, 250);
  return {
    body,
    back: [body[0] * 0.7, body[1] * 0.7, body[2] * 0.7],
    head: [rng.int(170, 240), rng.int(120, 190), rng.int(90, 150)],
    size: minSize + (maxSize - minSize) * rng.uniform(),
  };
}

function makeParams(family: SyntheticFamily, seed: number, index: number): VideoParams {
  const rng = new Rng(videoSeed(family, seed, index));
  if (family === 'captioned') return makeCaptionedParams(rng);
  if (isShapesFamily(family)) {
    const { draws: size, pose } = shapesRecipe(family);
    const bg = randBackground(rng);
    const n = rng.int(1, size.maxCount);
    const colours = rng.permutation(SHAPE_PALETTE.length);
    const shapes: Shape[] = [];
    for (let i = 0; i < n; i++) {
      const speed = 0.004 + 0.026 * rng.uniform();
      const dir = TAU * rng.uniform();
      shapes.push({
        kind: rng.int(0, 2),
        colour: colours[i],
        r: size.rMin + size.rSpan * rng.uniform(),
        x0: rng.uniform() * 4,
        y0: rng.uniform() * 4,
        vx: speed * Math.cos(dir),
        vy: speed * Math.sin(dir),
        angle0: TAU * rng.uniform(),
        spin: rng.uniform() < 0.5 ? 0 : (rng.uniform() - 0.5) * 0.1,
      });
    }
    // Upright: drawn as above, so every other parameter is the drawn family's; then no spin, squares
    // axis-aligned (a vertex at 45 degrees), triangles with a vertex straight up (-90: y points down).
    if (pose.upright) for (const sh of shapes) Object.assign(sh, { angle0: sh.kind === 1 ? TAU / 8 : -TAU / 4, spin: 0 });
    // Single: the first shape alone; flat: the background's first colour (c1 mixed with itself).
    return { family, bg: pose.flat ? { ...bg, c2: bg.c1 } : bg, shapes: pose.single ? shapes.slice(0, 1) : shapes };
  }
  if (family === 'sky') {
    const palette = rng.int(0, 3);
    const skies: [Rgb, Rgb, Rgb][] = [
      [[40, 90, 190], [150, 195, 240], [250, 250, 252]], // day
      [[70, 110, 180], [190, 205, 225], [235, 235, 240]], // hazy
      [[60, 50, 120], [245, 150, 100], [255, 215, 190]], // dusk
      [[80, 92, 110], [150, 158, 170], [238, 240, 244]], // overcast
    ];
    const [top, horizon, cloud] = skies[palette];
    const drift = 0.0015 + 0.006 * rng.uniform();
    const dir = (rng.uniform() - 0.5) * 0.8 + (rng.uniform() < 0.5 ? 0 : Math.PI);
    return {
      family,
      top,
      horizon,
      cloud,
      shade: 0.25 + 0.25 * rng.uniform(),
      threshold: 0.38 + 0.2 * rng.uniform(),
      scale: 1.8 + 2.2 * rng.uniform(),
      vx: drift * Math.cos(dir),
      vy: drift * Math.sin(dir) * 0.3,
      morph: 0.002 + 0.005 * rng.uniform(),
      seed: rng.nextU32(),
    };
  }
  if (family === 'taichi') {
    const slow = (n: number, amp: number): Wave[] => randWaves(rng, n, amp, 60, 220);
    return {
      family,
      wall: randBackground(rng),
      floor: randColour(rng, 60, 160),
      floorY: 0.78 + 0.1 * rng.uniform(),
      style: randFigureStyle(rng, 0.55, 0.7),
      baseX: 0.35 + 0.3 * rng.uniform(),
      sway: slow(2, 0.12),
      bob: slow(1, 0.03),
      lean: slow(2, 0.15),
      shoulderL: slow(2, 1.1),
      shoulderR: slow(2, 1.1),
      elbowL: slow(2, 0.6),
      elbowR: slow(2, 0.6),
      hipL: slow(2, 0.2),
      hipR: slow(2, 0.2),
      kneeL: slow(1, 0.25),
      kneeR: slow(1, 0.25),
    };
  }
  // ucf: balanced classes, label = index mod number of classes.
  const label = index % SYNTHETIC_UCF_CLASSES.length;
  const moving = rng.uniform() < 0.7;
  return {
    family: 'ucf',
    label,
    wall: randColour(rng, 70, 200),
    ground: randColour(rng, 50, 150),
    floorY: 0.8 + 0.08 * rng.uniform(),
    texSeed: rng.nextU32(),
    texFreq: 4 + 6 * rng.uniform(),
    poleFreq: 1 + 3 * rng.uniform(),
    panAmpX: moving ? 0.05 + 0.25 * rng.uniform() : 0,
    panAmpY: moving ? 0.03 * rng.uniform() : 0,
    panOmega: TAU / (80 + 220 * rng.uniform()),
    panPhase: TAU * rng.uniform(),
    period: 12 + 28 * rng.uniform(),
    phase: TAU * rng.uniform(),
    dirSign: rng.uniform() < 0.5 ? -1 : 1,
    cx: 0.4 + 0.2 * rng.uniform(),
    prop: randColour(rng, 30, 255),
    style: randFigureStyle(rng, 0.5, 0.65),
    speed: 0.004 + 0.01 * rng.uniform(),
  };
}

const paramCache = new Map<string, VideoParams>();
const bgCache = new Map<string, Uint8Array>();
const CACHE_LIMIT = 512;

function cachedPut<V>(m: Map<string, V>, k: string, v: V, limit: number): V {
  if (m.size >= limit) m.delete(m.keys().next().value as string);
  m.set(k, v);
  return v;
}

function paramsFor(spec: SyntheticVideoSpec): VideoParams {
  const k = `${spec.family}|${spec.seed}|${spec.index}`;
  return paramCache.get(k) ?? cachedPut(paramCache, k, makeParams(spec.family, spec.seed, spec.index), CACHE_LIMIT);
}

// ---------------------------------------------------------------------------------------------
// Articulated figure: joint angles in radians from "hanging straight down", positive towards +x.

interface Pose {
  hipX: number; // world
  hipY: number;
  lean: number;
  shoulderL: number;
  elbowL: number;
  shoulderR: number;
  elbowR: number;
  hipL: number;
  kneeL: number;
  hipR: number;
  kneeR: number;
}

interface View {
  scale: number; // pixels per world unit
  camX: number; // world position of the frame's left edge
  camY: number;
}

function drawFigure(f: Frame, p: Pose, st: FigureStyle, v: View): { handL: [number, number]; handR: [number, number] } {
  const s = st.size;
  const px = (x: number): number => (x - v.camX) * v.scale;
  const py = (y: number): number => (y - v.camY) * v.scale;
  const limb = 0.045 * s * v.scale;
  // Torso from the hip upwards, tilted by `lean`.
  const shX = p.hipX + Math.sin(p.lean) * 0.32 * s;
  const shY = p.hipY - Math.cos(p.lean) * 0.32 * s;
  const headX = p.hipX + Math.sin(p.lean) * 0.45 * s;
  const headY = p.hipY - Math.cos(p.lean) * 0.45 * s;
  const chain = (x: number, y: number, a1: number, a2: number, l1: number, l2: number): [number, number, number, number] => {
    const mx = x + Math.sin(a1) * l1 * s;
    const my = y + Math.cos(a1) * l1 * s;
    return [mx, my, mx + Math.sin(a1 + a2) * l2 * s, my + Math.cos(a1 + a2) * l2 * s];
  };
  const armL = chain(shX, shY, p.shoulderL + p.lean, p.elbowL, 0.17, 0.16);
  const armR = chain(shX, shY, p.shoulderR + p.lean, p.elbowR, 0.17, 0.16);
  const legL = chain(p.hipX, p.hipY, p.hipL, p.kneeL, 0.22, 0.22);
  const legR = chain(p.hipX, p.hipY, p.hipR, p.kneeR, 0.22, 0.22);
  // Left limbs behind the torso (darker), right limbs in front.
  fillCapsule(f, px(p.hipX), py(p.hipY), px(legL[0]), py(legL[1]), limb, st.back);
  fillCapsule(f, px(legL[0]), py(legL[1]), px(legL[2]), py(legL[3]), limb, st.back);
  fillCapsule(f, px(shX), py(shY), px(armL[0]), py(armL[1]), limb, st.back);
  fillCapsule(f, px(armL[0]), py(armL[1]), px(armL[2]), py(armL[3]), limb * 0.9, st.back);
  fillCapsule(f, px(p.hipX), py(p.hipY), px(shX), py(shY), 0.065 * s * v.scale, st.body);
  fillCircle(f, px(headX), py(headY), 0.085 * s * v.scale, st.head);
  fillCapsule(f, px(p.hipX), py(p.hipY), px(legR[0]), py(legR[1]), limb, st.body);
  fillCapsule(f, px(legR[0]), py(legR[1]), px(legR[2]), py(legR[3]), limb, st.body);
  fillCapsule(f, px(shX), py(shY), px(armR[0]), py(armR[1]), limb, st.body);
  fillCapsule(f, px(armR[0]), py(armR[1]), px(armR[2]), py(armR[3]), limb * 0.9, st.body);
  return { handL: [armL[2], armL[3]], handR: [armR[2], armR[3]] };
}

/** Hip height that puts straight legs' feet on the floor. */
function standingHipY(floorY: number, st: FigureStyle): number {
  return floorY - 0.44 * st.size - 0.02 * st.size;
}

// ---------------------------------------------------------------------------------------------
// Frame renderers.

function frameView(spec: SyntheticVideoSpec): { s: number; aw: number; ah: number } {
  const s = Math.min(spec.height, spec.width);
  return { s, aw: spec.width / s, ah: spec.height / s };
}

/** A static background rendered once per (video, size) and copied into each frame. */
function staticBackground(spec: SyntheticVideoSpec, key: string, colourAt: (x: number, y: number) => [number, number, number]): Uint8Array {
  const k = `${key}|${spec.family}|${spec.seed}|${spec.index}|${spec.height}x${spec.width}`;
  const hit = bgCache.get(k);
  if (hit) return hit;
  const { s } = frameView(spec);
  const out = new Uint8Array(spec.height * spec.width * 3);
  for (let y = 0; y < spec.height; y++) {
    for (let x = 0; x < spec.width; x++) {
      const c = colourAt((x + 0.5) / s, (y + 0.5) / s);
      const i = (y * spec.width + x) * 3;
      out[i] = c[0] + 0.5;
      out[i + 1] = c[1] + 0.5;
      out[i + 2] = c[2] + 0.5;
    }
  }
  return cachedPut(bgCache, k, out, 64);
}

function renderShapes(spec: SyntheticVideoSpec, p: ShapesParams, t: number, f: Frame): void {
  const { s, aw, ah } = frameView(spec);
  f.data.set(staticBackground(spec, 'bg', (x, y) => backgroundAt(p.bg, x, y, aw, ah)), f.offset);
  for (const sh of p.shapes) {
    const r = Math.min(sh.r, 0.45 * Math.min(aw, ah));
    const cx = bounce(sh.x0 + sh.vx * t, r, aw - r) * s;
    const cy = bounce(sh.y0 + sh.vy * t, r, ah - r) * s;
    const rgb = SHAPE_PALETTE[sh.colour].rgb;
    if (sh.kind === 0) {
      fillCircle(f, cx, cy, r * s, rgb);
    } else {
      const n = sh.kind === 1 ? 4 : 3;
      const rr = sh.kind === 1 ? r * s * 0.95 : r * s;
      const a0 = sh.angle0 + sh.spin * t;
      const xs: number[] = [];
      const ys: number[] = [];
      for (let i = 0; i < n; i++) {
        xs.push(cx + rr * Math.cos(a0 + (TAU * i) / n));
        ys.push(cy + rr * Math.sin(a0 + (TAU * i) / n));
      }
      fillConvex(f, xs, ys, rgb);
    }
  }
}

function smoothstep(a: number, b: number, x: number): number {
  const t = Math.max(0, Math.min(1, (x - a) / (b - a)));
  return t * t * (3 - 2 * t);
}

function renderSky(spec: SyntheticVideoSpec, p: SkyParams, t: number, f: Frame): void {
  const { s, ah } = frameView(spec);
  const d = f.data;
  const ox = -p.vx * t;
  const oy = -p.vy * t;
  const z = p.morph * t;
  for (let y = 0; y < spec.height; y++) {
    const wy = (y + 0.5) / s;
    const sky = mixRgb(p.top, p.horizon, Math.min(1, wy / ah));
    const ny = (wy + oy) * p.scale;
    for (let x = 0; x < spec.width; x++) {
      const nx = ((x + 0.5) / s + ox) * p.scale;
      // fbm: three octaves, the finer ones morphing faster (3D value noise over x, y, t).
      const n =
        0.57 * valueNoise3(nx, ny, z, p.seed) +
        0.29 * valueNoise3(nx * 2.03, ny * 2.03, z * 1.7, p.seed ^ 0x1234567) +
        0.14 * valueNoise3(nx * 4.1, ny * 4.1, z * 2.9, p.seed ^ 0x7654321);
      const m = smoothstep(p.threshold, p.threshold + 0.22, n);
      const shade = 1 - p.shade * (1 - smoothstep(p.threshold, p.threshold + 0.45, n));
      const i = f.offset + (y * spec.width + x) * 3;
      d[i] = sky[0] + (p.cloud[0] * shade - sky[0]) * m + 0.5;
      d[i + 1] = sky[1] + (p.cloud[1] * shade - sky[1]) * m + 0.5;
      d[i + 2] = sky[2] + (p.cloud[2] * shade - sky[2]) * m + 0.5;
    }
  }
}

function renderTaichi(spec: SyntheticVideoSpec, p: TaichiParams, t: number, f: Frame): void {
  const { s, aw, ah } = frameView(spec);
  const floorY = p.floorY * ah;
  f.data.set(
    staticBackground(spec, 'bg', (x, y) => {
      if (y >= floorY) return mixRgb(p.floor, [0, 0, 0], 0.25 * Math.min(1, (y - floorY) / (ah - floorY + 1e-6)));
      return backgroundAt(p.wall, x, y, aw, ah);
    }),
    f.offset,
  );
  const st = p.style;
  const pose: Pose = {
    hipX: aw * p.baseX + waveAt(0, p.sway, t),
    hipY: standingHipY(floorY, st) + waveAt(0, p.bob, t) * st.size + 0.03 * st.size,
    lean: waveAt(0, p.lean, t),
    shoulderL: waveAt(-0.5, p.shoulderL, t),
    shoulderR: waveAt(0.5, p.shoulderR, t),
    elbowL: waveAt(-0.5, p.elbowL, t),
    elbowR: waveAt(0.5, p.elbowR, t),
    hipL: waveAt(-0.12, p.hipL, t),
    hipR: waveAt(0.12, p.hipR, t),
    kneeL: waveAt(0.15, p.kneeL, t),
    kneeR: waveAt(-0.15, p.kneeR, t),
  };
  drawFigure(f, pose, st, { scale: s, camX: 0, camY: 0 });
}

function renderUcf(spec: SyntheticVideoSpec, p: UcfParams, t: number, f: Frame): void {
  const { s, aw, ah } = frameView(spec);
  const camX = p.panAmpX * Math.sin(p.panOmega * t + p.panPhase);
  const camY = p.panAmpY * Math.sin(1.7 * p.panOmega * t + p.panPhase);
  const floorY = p.floorY * ah;
  const d = f.data;
  // Background in world coordinates, seen through the moving camera.
  for (let y = 0; y < spec.height; y++) {
    const wy = (y + 0.5) / s + camY;
    const onFloor = wy >= floorY;
    const base = onFloor ? p.ground : p.wall;
    for (let x = 0; x < spec.width; x++) {
      const wx = (x + 0.5) / s + camX;
      const tex = valueNoise2(wx * p.texFreq, wy * p.texFreq, p.texSeed) - 0.5;
      const pole = onFloor ? 0 : Math.max(0, Math.sin(TAU * p.poleFreq * wx)) ** 8 * 0.35;
      const g = 1 + 0.45 * tex - pole;
      const i = f.offset + (y * spec.width + x) * 3;
      d[i] = Math.min(255, base[0] * g) + 0.5;
      d[i + 1] = Math.min(255, base[1] * g) + 0.5;
      d[i + 2] = Math.min(255, base[2] * g) + 0.5;
    }
  }
  const v: View = { scale: s, camX, camY };
  const X = (x: number): number => (x - camX) * s;
  const Y = (y: number): number => (y - camY) * s;
  const ph = (TAU * t) / p.period + p.phase; // motion phase
  const cx = p.cx * aw;
  const st = p.style;
  const hipY0 = standingHipY(floorY, st);
  const still: Pose = {
    hipX: cx, hipY: hipY0, lean: 0,
    shoulderL: -0.25, elbowL: -0.1, shoulderR: 0.25, elbowR: 0.1,
    hipL: -0.1, kneeL: 0, hipR: 0.1, kneeR: 0,
  };
  switch (SYNTHETIC_UCF_CLASSES[p.label]) {
    case 'BallBouncing': {
      const r = 0.08;
      const x = bounce(cx + p.dirSign * p.speed * 0.5 * t, r, aw - r);
      const y = floorY - r - 0.45 * Math.abs(Math.sin(ph / 2));
      fillCircle(f, X(x), Y(y), r * s, p.prop);
      break;
    }
    case 'PendulumSwing': {
      const a = 0.8 * Math.sin(ph);
      const bx = cx + 0.55 * Math.sin(a);
      const by = 0.1 + 0.55 * Math.cos(a);
      fillCapsule(f, X(cx - 0.1), Y(0.08), X(cx + 0.1), Y(0.08), 0.02 * s, [60, 60, 60]);
      fillCapsule(f, X(cx), Y(0.1), X(bx), Y(by), 0.012 * s, [40, 40, 40]);
      fillCircle(f, X(bx), Y(by), 0.07 * s, p.prop);
      break;
    }
    case 'WheelSpinning': {
      const wy = 0.45 * ah;
      const R = 0.25;
      const a = (p.dirSign * TAU * t) / p.period;
      fillCircle(f, X(cx), Y(wy), R * s, [30, 30, 30]);
      fillCircle(f, X(cx), Y(wy), (R - 0.04) * s, mixRgb(p.prop, [255, 255, 255], 0.6));
      for (let k = 0; k < 4; k++) {
        const ak = a + (k * Math.PI) / 2;
        fillCapsule(f, X(cx), Y(wy), X(cx + (R - 0.03) * Math.cos(ak)), Y(wy + (R - 0.03) * Math.sin(ak)), 0.015 * s, [40, 40, 40]);
      }
      fillCircle(f, X(cx + (R - 0.02) * Math.cos(a)), Y(wy + (R - 0.02) * Math.sin(a)), 0.035 * s, p.prop);
      break;
    }
    case 'JumpingJack': {
      const o = 0.5 - 0.5 * Math.cos(ph); // 0 closed .. 1 open
      drawFigure(f, {
        ...still,
        hipY: hipY0 - 0.08 * st.size * Math.abs(Math.sin(ph)),
        shoulderL: -(0.2 + 2.6 * o), elbowL: -0.1, shoulderR: 0.2 + 2.6 * o, elbowR: 0.1,
        hipL: -(0.05 + 0.35 * o), hipR: 0.05 + 0.35 * o,
      }, st, v);
      break;
    }
    case 'Walking': {
      const x = bounce(cx + p.dirSign * p.speed * t, 0.15, aw - 0.15);
      const sw = Math.sin(ph);
      drawFigure(f, {
        ...still,
        hipX: x, hipY: hipY0 - 0.02 * st.size * Math.abs(Math.cos(ph)),
        shoulderL: -0.5 * sw, elbowL: -0.3, shoulderR: 0.5 * sw, elbowR: -0.3,
        hipL: 0.45 * sw, kneeL: -0.3 * Math.max(0, sw), hipR: -0.45 * sw, kneeR: -0.3 * Math.max(0, -sw),
      }, st, v);
      break;
    }
    case 'BodyWeightSquats': {
      const o = 0.5 - 0.5 * Math.cos(ph);
      const hip = 0.1 + 1.0 * o;
      drawFigure(f, {
        ...still,
        hipY: hipY0 + 0.44 * st.size * (1 - Math.cos(hip)) * 0.9,
        lean: 0,
        shoulderL: -(0.3 + 1.2 * o), shoulderR: 0.3 + 1.2 * o,
        hipL: -hip, kneeL: 2 * hip - 0.05, hipR: hip, kneeR: -2 * hip + 0.05,
      }, st, v);
      break;
    }
    case 'HandWaving': {
      drawFigure(f, { ...still, shoulderR: 2.6, elbowR: 0.7 * Math.sin(ph * 1.5) }, st, v);
      break;
    }
    case 'Punch': {
      const l = Math.max(0, Math.sin(ph));
      const r = Math.max(0, -Math.sin(ph));
      drawFigure(f, {
        ...still,
        lean: 0.08 * Math.sin(ph),
        shoulderL: -(0.9 + 0.7 * l), elbowL: -(1.6 * (1 - l)),
        shoulderR: 0.9 + 0.7 * r, elbowR: 1.6 * (1 - r),
        hipL: -0.2, hipR: 0.2,
      }, st, v);
      break;
    }
    case 'JugglingBalls': {
      const c = Math.cos(ph);
      const hands = drawFigure(f, { ...still, shoulderL: -0.4 - 0.15 * c, elbowL: -1.1, shoulderR: 0.4 + 0.15 * c, elbowR: 1.1 }, st, v);
      const hy = (hands.handL[1] + hands.handR[1]) / 2;
      for (let k = 0; k < 3; k++) {
        const q = ph / 2 + (k * TAU) / 3;
        const bx = cx + 0.14 * Math.cos(q);
        const by = hy - 0.05 - 0.3 * Math.abs(Math.sin(q));
        fillCircle(f, X(bx), Y(by), 0.035 * s, mixRgb(p.prop, [255, 255, 255], k * 0.3));
      }
      break;
    }
    case 'Drumming': {
      const a = Math.sin(ph * 1.5);
      const hands = drawFigure(f, {
        ...still,
        shoulderL: -0.6 - 0.35 * a, elbowL: -1.0 - 0.4 * a,
        shoulderR: 0.6 - 0.35 * a, elbowR: 1.0 - 0.4 * a,
      }, st, v);
      const dy = Math.max(hands.handL[1], hands.handR[1]) + 0.06;
      fillConvex(f, [X(cx - 0.17), X(cx + 0.17), X(cx + 0.14), X(cx - 0.14)], [Y(dy), Y(dy), Y(dy + 0.14), Y(dy + 0.14)], p.prop);
      break;
    }
    case 'BoxSliding': {
      const h = 0.12;
      const x = bounce(cx + p.dirSign * 3 * p.speed * t, h, aw - h);
      fillConvex(f, [X(x - h), X(x + h), X(x + h), X(x - h)], [Y(floorY - 2 * h), Y(floorY - 2 * h), Y(floorY), Y(floorY)], p.prop);
      break;
    }
    case 'LightBlinking': {
      const on = 0.5 + 0.5 * Math.sin(ph);
      fillCapsule(f, X(cx), Y(floorY), X(cx), Y(0.35 * ah), 0.015 * s, [50, 50, 50]);
      fillCircle(f, X(cx), Y(0.3 * ah), 0.1 * s, [40, 40, 40]);
      fillCircle(f, X(cx), Y(0.3 * ah), 0.085 * s, mixRgb([40, 40, 40], p.prop, on));
      break;
    }
    default:
      throw new Error(`synthetic-ucf: no renderer for class ${p.label}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Public API.

/** Label and caption of a synthetic video (undefined where the family has none). */
export function syntheticVideoInfo(spec: Pick<SyntheticVideoSpec, 'family' | 'seed' | 'index'>): {
  label?: number;
  className?: string;
  caption: string;
} {
  const p = paramsFor({ ...spec, height: 1, width: 1 });
  if (p.family === 'ucf') {
    const name = SYNTHETIC_UCF_CLASSES[p.label];
    return { label: p.label, className: name, caption: captionForClass(name) };
  }
  if (isShapesParams(p)) {
    const parts = p.shapes.map((sh) => `a ${SHAPE_PALETTE[sh.colour].name} ${SYNTHETIC_SHAPE_KINDS[sh.kind]}`);
    const list = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
    const label = p.shapes.reduce((mask, sh) => mask | (1 << sh.kind), 0) - 1;
    return { label, className: SYNTHETIC_SHAPE_CLASSES[label], caption: `a video of ${list} moving` };
  }
  if (p.family === 'sky') return { caption: 'a time-lapse video of clouds drifting across the sky' };
  if (p.family === 'captioned') return { caption: captionOf(p.attributes) };
  return { caption: 'a video of a person practising tai chi' };
}

/** The attributes of a synthetic-captioned video (indices into data/captioned.ts's lists). */
export function captionedAttributes(seed: number, index: number): CaptionAttributes {
  const p = paramsFor({ family: 'captioned', seed, index, height: 1, width: 1 });
  if (p.family !== 'captioned') throw new Error('captionedAttributes: not a captioned video');
  return { ...p.attributes };
}

/**
 * Render `count` frames starting at frame `start`, every `stride`-th frame, as [count, H, W, 3]
 * uint8. Frame t depends only on (spec, t): any window of any video can be rendered directly.
 */
export function renderSyntheticFrames(spec: SyntheticVideoSpec, start: number, count: number, stride = 1): Uint8Array {
  validateSpec(spec);
  if (!Number.isInteger(start) || start < 0) throw new Error(`renderSyntheticFrames: start must be an integer >= 0, got ${start}`);
  if (!Number.isInteger(count) || count < 0) throw new Error(`renderSyntheticFrames: count must be an integer >= 0, got ${count}`);
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`renderSyntheticFrames: stride must be an integer >= 1, got ${stride}`);
  const p = paramsFor(spec);
  const frameBytes = spec.height * spec.width * 3;
  const out = new Uint8Array(count * frameBytes);
  for (let i = 0; i < count; i++) {
    const f: Frame = { data: out, offset: i * frameBytes, width: spec.width, height: spec.height };
    const t = start + i * stride;
    if (p.family === 'sky') renderSky(spec, p, t, f);
    else if (p.family === 'taichi') renderTaichi(spec, p, t, f);
    else if (p.family === 'captioned') renderCaptioned(p, t, f);
    else if (p.family === 'ucf') renderUcf(spec, p, t, f);
    else renderShapes(spec, p, t, f);
  }
  return out;
}

function validateSpec(spec: SyntheticVideoSpec): void {
  if (!SYNTHETIC_FAMILIES.includes(spec.family)) {
    throw new Error(`synthetic: unknown family '${spec.family}', expected one of ${SYNTHETIC_FAMILIES.join(', ')}`);
  }
  for (const k of ['height', 'width'] as const) {
    if (!Number.isInteger(spec[k]) || spec[k] < 1) throw new Error(`synthetic: ${k} must be a positive integer, got ${spec[k]}`);
  }
  if (!Number.isInteger(spec.index) || spec.index < 0) throw new Error(`synthetic: index must be an integer >= 0, got ${spec.index}`);
  if (!Number.isFinite(spec.seed)) throw new Error(`synthetic: seed must be finite, got ${spec.seed}`);
}

export interface SyntheticDatasetOptions {
  family: SyntheticFamily;
  /** Number of distinct videos (default 1000). */
  size?: number;
  /** Frames per clip L (default 16). */
  frames?: number;
  height?: number;
  width?: number;
  /** Frame stride K between the clip's frames (default 1). */
  frameStride?: number;
  /** Seed of the video content (default 0). */
  seed?: number;
  /** Frames per video, from which clip windows are drawn (default max(256, span)). */
  videoLength?: number;
}

/** A ClipDataset of synthetic videos: `get(i, rng)` draws a window start from rng. */
export class SyntheticDataset implements ClipDataset {
  readonly name: string;
  readonly family: SyntheticFamily;
  readonly size: number;
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  readonly frameStride: number;
  readonly seed: number;
  readonly videoLength: number;
  readonly numClasses?: number;
  readonly classNames?: readonly string[];

  constructor(opts: SyntheticDatasetOptions) {
    if (!SYNTHETIC_FAMILIES.includes(opts.family)) {
      throw new Error(`SyntheticDataset: unknown family '${opts.family}', expected one of ${SYNTHETIC_FAMILIES.join(', ')}`);
    }
    this.family = opts.family;
    this.name = `synthetic-${opts.family}`;
    this.size = opts.size ?? 1000;
    this.frames = opts.frames ?? 16;
    this.height = opts.height ?? 32;
    this.width = opts.width ?? 32;
    this.frameStride = opts.frameStride ?? 1;
    this.seed = opts.seed ?? 0;
    const span = this.span();
    this.videoLength = opts.videoLength ?? Math.max(256, span);
    const positive: [string, number][] = [
      ['size', this.size], ['frames', this.frames], ['height', this.height], ['width', this.width],
      ['frameStride', this.frameStride], ['videoLength', this.videoLength],
    ];
    for (const [k, v] of positive) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`SyntheticDataset(${this.name}): ${k} must be a positive integer, got ${v}`);
    }
    if (this.videoLength < span) {
      throw new Error(
        `SyntheticDataset(${this.name}): videoLength ${this.videoLength} is shorter than one clip ` +
          `((frames - 1) * frameStride + 1 = ${span})`,
      );
    }
    if (this.family === 'ucf') {
      this.numClasses = SYNTHETIC_UCF_CLASSES.length;
      this.classNames = SYNTHETIC_UCF_CLASSES;
    } else if (isShapesFamily(this.family)) {
      this.numClasses = SYNTHETIC_SHAPE_CLASSES.length;
      this.classNames = SYNTHETIC_SHAPE_CLASSES;
    }
  }

  /** Frames a clip covers in its source video: (L - 1) * K + 1. */
  span(): number {
    return (this.frames - 1) * this.frameStride + 1;
  }

  spec(index: number): SyntheticVideoSpec {
    return { family: this.family, seed: this.seed, index, height: this.height, width: this.width };
  }

  /** The clip of video `index` starting at source frame `start` (no randomness). */
  clipAt(index: number, start: number): ClipSample {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new Error(`${this.name}: index ${index} out of range [0, ${this.size})`);
    }
    if (start < 0 || start + this.span() > this.videoLength) {
      throw new Error(`${this.name}: window start ${start} out of range [0, ${this.videoLength - this.span()}]`);
    }
    const spec = this.spec(index);
    const info = syntheticVideoInfo(spec);
    return {
      video: renderSyntheticFrames(spec, start, this.frames, this.frameStride),
      frames: this.frames,
      height: this.height,
      width: this.width,
      label: info.label,
      caption: info.caption,
      key: `${this.name}/${String(index).padStart(6, '0')}@${start}`,
    };
  }

  async get(index: number, rng: Rng): Promise<ClipSample> {
    return this.clipAt(index, rng.int(0, this.videoLength - this.span()));
  }
}
