/**
 * Object consistency: a quality reading of generated clips of the synthetic `shapes` family that a
 * person can check by eye (issue 12): the fraction of clips whose main object keeps a consistent
 * shape (constant area, sharp edges) and velocity (constant, up to reflections off the walls).
 *
 * Per clip (frames [T, H, W, 3], values mapped to [0, 255]); every step is plain arithmetic:
 * 1. Moving pixels: on 3 x 3 box-filtered frames, pixels whose colour leaves the per-pixel temporal
 *    median (the family's background is static) by more than `changeDistance` in some frame.
 * 2. Object colour c: the most frequent colour (8 x 8 x 8 RGB bins, then the bin's mean) among
 *    the moving pixels' values over all frames; objects are flat-coloured, the background is
 *    textured, so the object's colour is the one shared by the pixels it sweeps over. Keying on
 *    the colour (not on |I - median|) also finds slow objects that cover the same pixels in most
 *    frames, where the median background is the object itself. A colour whose region covers
 *    more than `maxAreaFraction` of a frame is background, and the next most frequent is taken.
 * 3. Per frame: the largest 4-connected region of pixels within `colourDistance` of c; its area
 *    and centroid weighted by coverage a = clamp(1 - |I - c| / contrast) over the region and its
 *    1-px fringe (contrast: the median distance from c of the pixels 3 steps outside the region),
 *    and its edge sharpness (median colour step across the outline / contrast).
 * 4. Consistent when the object is found (area >= `minArea`) in all but `maxMissing` frames, its
 *    edge sharpness is >= `minEdge`, the coefficient of variation of its area is <= `maxAreaCv`,
 *    the median |second difference| of its centroid (px/frame^2) is <= `maxAccel`, and no second
 *    difference exceeds 2 * median speed + `jumpSlack` (a reflection off a wall changes the
 *    velocity by at most twice the speed; a jump, a splice or a shuffled frame changes it by more).
 * Pixel thresholds are set for 32 x 32 frames and scale with min(H, W) / 32. Method and calibration
 * on real and corrupted clips: metrics/OBJECT-CONSISTENCY.md.
 */

import { classifyOutline, isRegularOutline, outlineHarmonics, SHAPE_KINDS, type OutlineHarmonics, type ShapeKind } from './shape-kind';

/** Value range of float clips: the loaders' [-1, 1], [0, 1], or uint8-like [0, 255]. */
export type ValueRange = '[-1, 1]' | '[0, 1]' | '[0, 255]';
export const VALUE_RANGES: readonly ValueRange[] = ['[-1, 1]', '[0, 1]', '[0, 255]'];

export interface ConsistencyOptions {
  /** Value range of `clips` (default '[0, 255]' for a Uint8Array, else '[-1, 1]'). */
  range?: ValueRange;
  /** RGB distance (0-255 units) from the median background that marks a pixel as moving (default 40). */
  changeDistance?: number;
  /** RGB distance (0-255 units) from the object colour within which a pixel is object (default 60). */
  colourDistance?: number;
  /** Largest object area as a fraction of the frame; larger regions are background (default 0.3). */
  maxAreaFraction?: number;
  /** Smallest area counted as a found object, pixels at 32 x 32 (default 3). */
  minArea?: number;
  /** Frames in which the object may be missing (default 1). */
  maxMissing?: number;
  /** Largest coefficient of variation (std / mean) of the object's area (default 0.2). */
  maxAreaCv?: number;
  /** Largest median |second difference| of the centroid, px/frame^2 at 32 x 32 (default 0.5). */
  maxAccel?: number;
  /** Smallest edge sharpness (median colour step across the outline / contrast with the surroundings; default 0.3). */
  minEdge?: number;
  /** Slack over a reflection (2 x median speed) for any single |second difference|, px/frame^2 at 32 x 32 (default 1). */
  jumpSlack?: number;
}

/** The tests in the order they are applied; a clip's `failed` names the first it failed. */
export type ConsistencyTest = 'object' | 'found' | 'edge' | 'area' | 'velocity' | 'jump';
export const CONSISTENCY_TESTS: readonly ConsistencyTest[] = ['object', 'found', 'edge', 'area', 'velocity', 'jump'];

/** The thresholds in force (the pixel ones as given, for 32 x 32; `scale` converts them to the clip's size). */
export type ConsistencyThresholds = Required<Omit<ConsistencyOptions, 'range'>>;

export interface ClipConsistency {
  consistent: boolean;
  /** The first test the clip failed (null when consistent). */
  failed: ConsistencyTest | null;
  /** 'ok', or why not (names the failed test and its numbers). */
  reason: string;
  /** Frames in which the object was found. */
  found: number;
  frames: number;
  /** Coefficient of variation of the object's area over the frames where it was found (NaN if none). */
  areaCv: number;
  /** Median |second difference| of the centroid, px/frame^2 at the clip's resolution (NaN if < 3 frames). */
  accel: number;
  /** Largest |second difference| of the centroid, px/frame^2 (NaN if < 3 frames). */
  maxAccel: number;
  /** Median speed |centroid difference|, px/frame (NaN if < 2 frames). */
  speed: number;
  /** Edge sharpness: median over frames of (median colour step across the object's outline) / (its contrast with the surroundings); NaN if not measurable. */
  edge: number;
  /** Mean area of the object in pixels (NaN if none found). */
  area: number;
  /** The object colour in [0, 255] RGB (null when no moving pixels were found). */
  colour: [number, number, number] | null;
  /** Median over the frames where the object was found of its outline's 2-, 3- and 4-fold harmonics (shape-kind.ts; NaN if none). */
  outline: OutlineHarmonics;
  /** The object's kind read from `outline` (null when no object was found). Not one of the tests. */
  kind: ShapeKind | null;
  /** Per frame: area in pixels (0 when not found) and centroid (x, y) in pixels (pixel centres at i + 0.5; NaN when not found). */
  areas: number[];
  centroids: [number, number][];
}

export interface ConsistencyResult {
  /** Fraction of clips that are consistent. */
  fraction: number;
  consistent: number;
  clips: number;
  perClip: ClipConsistency[];
  /** Clips that failed each test first. */
  failures: Record<ConsistencyTest, number>;
  /** Clips whose object reads as each kind (shape-kind.ts; clips without an object are not counted). */
  kinds: Record<ShapeKind, number>;
  /** Consistent clips whose object reads as each kind. */
  consistentKinds: Record<ShapeKind, number>;
  /** Consistent clips whose object's outline is regular (a disc, square or triangle, not an elongated or lumpy blob: shape-kind.ts isRegularOutline). */
  consistentRegular: number;
  /** The thresholds used (0-255 colour units; pixel thresholds for 32 x 32, multiplied by `scale` = min(H, W) / 32). */
  thresholds: ConsistencyThresholds & { range: ValueRange; scale: number };
}

export const CONSISTENCY_DEFAULTS: Readonly<ConsistencyThresholds> = {
  changeDistance: 40,
  colourDistance: 60,
  maxAreaFraction: 0.3,
  minArea: 3,
  maxMissing: 1,
  maxAreaCv: 0.2,
  maxAccel: 0.5,
  jumpSlack: 1,
  minEdge: 0.3,
};

/** Maps a value of `range` to [0, 255]. */
function toByteScale(range: ValueRange): (v: number) => number {
  if (range === '[-1, 1]') return (v) => (v + 1) * 127.5;
  if (range === '[0, 1]') return (v) => v * 255;
  return (v) => v;
}

/** A clip in `range` as uint8 [0, 255] (rounded, clipped), e.g. for display. */
export function clipBytes(clip: ArrayLike<number>, range: ValueRange): Uint8Array {
  const toByte = toByteScale(range);
  const out = new Uint8Array(clip.length);
  for (let i = 0; i < clip.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(toByte(clip[i]))));
  return out;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function checkShape(n: number, shape: readonly number[], length: number): void {
  if (shape.length !== 5 || shape[4] !== 3 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`objectConsistency: expected shape [N, T, H, W, 3] of positive integers, got [${shape.join(', ')}]`);
  }
  if (n !== length) throw new Error(`objectConsistency: shape [${shape.join(', ')}] has ${n} elements, the array has ${length}`);
  if (shape[1] < 3) throw new Error(`objectConsistency: need at least 3 frames per clip (T >= 3) to measure acceleration, got T = ${shape[1]}`);
}

function resolve(opts: ConsistencyOptions): ConsistencyThresholds {
  const o = { ...CONSISTENCY_DEFAULTS };
  for (const k of Object.keys(CONSISTENCY_DEFAULTS) as (keyof ConsistencyThresholds)[]) {
    const v = opts[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`objectConsistency: option ${k} must be a finite number >= 0, got ${String(v)}`);
    o[k] = v;
  }
  if (!Number.isInteger(o.maxMissing)) throw new Error(`objectConsistency: option maxMissing must be an integer >= 0, got ${o.maxMissing}`);
  return o;
}

interface Region {
  area: number;
  cx: number;
  cy: number;
  /** 1 for the region's pixels (only when asked for). */
  members?: Uint8Array;
}

/** Largest 4-connected region of `mask` [H, W] (area, centroid in pixel coordinates, centres at i + 0.5). */
export function largestRegion(mask: Uint8Array, h: number, w: number): Region & { members: Uint8Array } {
  const label = new Int32Array(h * w).fill(-1);
  const queue = new Int32Array(h * w);
  let best: Region = { area: 0, cx: NaN, cy: NaN };
  let bestStart = -1;
  for (let start = 0; start < h * w; start++) {
    if (!mask[start] || label[start] >= 0) continue;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    label[start] = start;
    let sx = 0;
    let sy = 0;
    while (head < tail) {
      const p = queue[head++];
      const y = (p / w) | 0;
      const x = p - y * w;
      sx += x + 0.5;
      sy += y + 0.5;
      const nb = [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1];
      for (const q of nb) {
        if (q >= 0 && mask[q] && label[q] < 0) {
          label[q] = start;
          queue[tail++] = q;
        }
      }
    }
    if (tail > best.area) {
      best = { area: tail, cx: sx / tail, cy: sy / tail };
      bestStart = start;
    }
  }
  const members = new Uint8Array(h * w);
  if (bestStart >= 0) for (let p = 0; p < h * w; p++) members[p] = label[p] === bestStart ? 1 : 0;
  return { ...best, members };
}

/** 4-neighbour distance (in steps, up to `max`; max + 1 beyond) of every pixel from the region. */
function distanceFrom(members: Uint8Array, h: number, w: number, max: number): Uint8Array {
  const dist = new Uint8Array(h * w).fill(max + 1);
  const queue = new Int32Array(h * w);
  let tail = 0;
  for (let p = 0; p < h * w; p++) if (members[p]) {
    dist[p] = 0;
    queue[tail++] = p;
  }
  for (let head = 0; head < tail; head++) {
    const p = queue[head];
    if (dist[p] >= max) continue;
    const y = (p / w) | 0;
    const x = p - y * w;
    for (const q of [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1]) {
      if (q >= 0 && dist[q] > dist[p] + 1) {
        dist[q] = dist[p] + 1;
        queue[tail++] = q;
      }
    }
  }
  return dist;
}

type Thresholds = ConsistencyThresholds;

/** 3 x 3 box filter of every frame of [T, H, W, 3] (edges: mean over the pixels inside the frame). */
function boxFilter3(px: Float64Array, t: number, h: number, w: number): Float64Array {
  const out = new Float64Array(px.length);
  for (let f = 0; f < t; f++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let n = 0;
        let r = 0;
        let g = 0;
        let b = 0;
        for (let yy = Math.max(0, y - 1); yy <= Math.min(h - 1, y + 1); yy++) {
          for (let xx = Math.max(0, x - 1); xx <= Math.min(w - 1, x + 1); xx++) {
            const i = ((f * h + yy) * w + xx) * 3;
            r += px[i];
            g += px[i + 1];
            b += px[i + 2];
            n++;
          }
        }
        const o = ((f * h + y) * w + x) * 3;
        out[o] = r / n;
        out[o + 1] = g / n;
        out[o + 2] = b / n;
      }
    }
  }
  return out;
}

/** Candidate object colours: means of the RGB bins (8 per channel) of moving pixels' values, most frequent first. */
function candidateColours(px: Float64Array, t: number, h: number, w: number, th: Thresholds): [number, number, number][] {
  const hw = h * w;
  // Motion is judged on 3 x 3 box-filtered frames, so pixel noise does not count as motion.
  const sm = boxFilter3(px, t, h, w);
  // Per-pixel temporal median background.
  const bg = new Float64Array(hw * 3);
  const col: number[] = new Array<number>(t);
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      for (let f = 0; f < t; f++) col[f] = sm[(f * hw + p) * 3 + c];
      bg[p * 3 + c] = median(col);
    }
  }
  const bins = new Float64Array(512 * 4); // count, sum r, sum g, sum b
  const d2 = th.changeDistance * th.changeDistance;
  for (let p = 0; p < hw; p++) {
    let moving = false;
    for (let f = 0; f < t && !moving; f++) {
      const i = (f * hw + p) * 3;
      const dr = sm[i] - bg[p * 3];
      const dg = sm[i + 1] - bg[p * 3 + 1];
      const db = sm[i + 2] - bg[p * 3 + 2];
      moving = dr * dr + dg * dg + db * db > d2;
    }
    if (!moving) continue;
    for (let f = 0; f < t; f++) {
      const i = (f * hw + p) * 3;
      const q = (v: number): number => Math.min(7, Math.max(0, Math.floor(v / 32)));
      const b = (q(px[i]) * 64 + q(px[i + 1]) * 8 + q(px[i + 2])) * 4;
      bins[b] += 1;
      bins[b + 1] += px[i];
      bins[b + 2] += px[i + 1];
      bins[b + 3] += px[i + 2];
    }
  }
  const order: number[] = [];
  for (let b = 0; b < 512; b++) if (bins[b * 4] > 0) order.push(b);
  order.sort((a, b) => bins[b * 4] - bins[a * 4] || a - b);
  return order.map((b) => {
    const n = bins[b * 4];
    return [bins[b * 4 + 1] / n, bins[b * 4 + 2] / n, bins[b * 4 + 3] / n];
  });
}

interface Tracked extends Region {
  /** Median colour step across the region's outline over the contrast with its surroundings (NaN when not measurable). */
  edge: number;
  /** Coverage weight of every pixel of the frame (0 outside the region and its fringe); the outline's harmonics are read from it. */
  cover: Float64Array;
}

/**
 * Per frame: the largest region of pixels within `dist` of `colour`, measured with coverage weights
 * a = clamp(1 - |I - colour| / contrast) over the region and its 1-px fringe, where contrast is the
 * median colour distance from `colour` of the pixels 3 steps outside the region (the surroundings).
 */
function track(px: Float64Array, t: number, h: number, w: number, colour: readonly number[], dist: number): Tracked[] {
  const hw = h * w;
  const mask = new Uint8Array(hw);
  const d = new Float64Array(hw);
  const out: Tracked[] = [];
  for (let f = 0; f < t; f++) {
    for (let p = 0; p < hw; p++) {
      const i = (f * hw + p) * 3;
      d[p] = Math.hypot(px[i] - colour[0], px[i + 1] - colour[1], px[i + 2] - colour[2]);
      mask[p] = d[p] < dist ? 1 : 0;
    }
    const r = largestRegion(mask, h, w);
    if (r.area === 0) {
      out.push({ area: 0, cx: NaN, cy: NaN, edge: NaN, cover: new Float64Array(0) });
      continue;
    }
    const ring = distanceFrom(r.members, h, w, 3);
    const far: number[] = [];
    for (let p = 0; p < hw; p++) if (ring[p] === 3) far.push(d[p]);
    const contrast = median(far);
    const steps: number[] = [];
    const cover = new Float64Array(hw);
    let sa = 0;
    let sx = 0;
    let sy = 0;
    for (let p = 0; p < hw; p++) {
      if (ring[p] > 1) continue;
      const y = (p / w) | 0;
      const x = p - y * w;
      const a = contrast > dist ? Math.min(1, Math.max(0, 1 - d[p] / contrast)) : ring[p] === 0 ? 1 : 0;
      cover[p] = a;
      sa += a;
      sx += a * (x + 0.5);
      sy += a * (y + 0.5);
      if (ring[p] !== 0) continue;
      for (const q of [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1]) {
        if (q < 0 || ring[q] !== 1) continue;
        const i = (f * hw + p) * 3;
        const j = (f * hw + q) * 3;
        steps.push(Math.hypot(px[i] - px[j], px[i + 1] - px[j + 1], px[i + 2] - px[j + 2]));
      }
    }
    const cx = sx / sa;
    const cy = sy / sa;
    out.push({ area: sa, cx, cy, edge: far.length && steps.length ? median(steps) / contrast : NaN, cover });
  }
  return out;
}

const fmt = (x: number, d = 2): string => x.toFixed(d);

/** Judges one clip: `px` [T, H, W, 3] in [0, 255]. */
function judgeClip(px: Float64Array, t: number, h: number, w: number, th: Thresholds, scale: number): ClipConsistency {
  const hw = h * w;
  const minArea = th.minArea * scale * scale;
  const base = (reason: string): ClipConsistency => ({
    consistent: false, failed: 'object', reason, found: 0, frames: t, areaCv: NaN, accel: NaN, maxAccel: NaN, speed: NaN, edge: NaN, area: NaN, colour: null,
    outline: { a2: NaN, a3: NaN, a4: NaN }, kind: null,
    areas: new Array<number>(t).fill(0), centroids: Array.from({ length: t }, (): [number, number] => [NaN, NaN]),
  });
  let colour: [number, number, number] | null = null;
  let regions: Tracked[] = [];
  for (const c of candidateColours(px, t, h, w, th).slice(0, 8)) {
    const r = track(px, t, h, w, c, th.colourDistance);
    if (Math.max(...r.map((x) => x.area)) <= th.maxAreaFraction * hw) {
      colour = c;
      regions = r;
      break;
    }
  }
  if (!colour) return base('no moving object (no pixel changes by more than changeDistance, or only background-sized regions)');
  const isFound = regions.map((r) => r.area >= minArea);
  const areas = regions.map((r, i) => (isFound[i] ? r.area : 0));
  const centroids = regions.map((r, i): [number, number] => (isFound[i] ? [r.cx, r.cy] : [NaN, NaN]));
  const found = isFound.filter(Boolean).length;
  const fa = areas.filter((_, i) => isFound[i]);
  const mean = fa.reduce((s, a) => s + a, 0) / (fa.length || NaN);
  const sd = Math.sqrt(fa.reduce((s, a) => s + (a - mean) ** 2, 0) / (fa.length || NaN));
  const areaCv = sd / mean;
  const speeds: number[] = [];
  for (let f = 1; f < t; f++) {
    if (isFound[f] && isFound[f - 1]) speeds.push(Math.hypot(centroids[f][0] - centroids[f - 1][0], centroids[f][1] - centroids[f - 1][1]));
  }
  const acc: { a: number; f: number }[] = [];
  for (let f = 1; f < t - 1; f++) {
    if (!(isFound[f - 1] && isFound[f] && isFound[f + 1])) continue;
    const ax = centroids[f + 1][0] - 2 * centroids[f][0] + centroids[f - 1][0];
    const ay = centroids[f + 1][1] - 2 * centroids[f][1] + centroids[f - 1][1];
    acc.push({ a: Math.hypot(ax, ay), f });
  }
  const speed = median(speeds);
  const accel = median(acc.map((x) => x.a));
  const worst = acc.reduce((m, x) => (x.a > m.a ? x : m), { a: -Infinity, f: -1 });
  const edge = median(regions.filter((r, i) => isFound[i] && Number.isFinite(r.edge)).map((r) => r.edge));
  // Shape kind from the accepted object's found frames only (shape-kind.ts).
  const seen = regions.filter((_, i) => isFound[i]).map((r) => outlineHarmonics(r.cover, h, w, r.cx, r.cy));
  const harmonic = (k: keyof OutlineHarmonics): number => median(seen.map((o) => o[k]).filter(Number.isFinite));
  const outline = { a2: harmonic('a2'), a3: harmonic('a3'), a4: harmonic('a4') };
  const res: ClipConsistency = {
    consistent: false, failed: null, reason: 'ok', found, frames: t, areaCv, accel, maxAccel: acc.length ? worst.a : NaN, speed, edge, area: mean, colour,
    outline, kind: classifyOutline(outline), areas, centroids,
  };
  const jumpLimit = 2 * speed + th.jumpSlack * scale;
  const fail = (test: ConsistencyTest, reason: string): void => {
    res.failed = test;
    res.reason = reason;
  };
  if (t - found > th.maxMissing) fail('found', `object found in ${found}/${t} frames (at most ${th.maxMissing} may miss)`);
  else if (acc.length === 0) fail('found', 'object not found in 3 consecutive frames');
  else if (!(edge >= th.minEdge)) fail('edge', `edges not sharp: ${fmt(edge)} < ${fmt(th.minEdge)}`);
  else if (!(areaCv <= th.maxAreaCv)) fail('area', `area varies: cv ${fmt(areaCv)} > ${fmt(th.maxAreaCv)}`);
  else if (!(accel <= th.maxAccel * scale)) fail('velocity', `velocity not constant: median |accel| ${fmt(accel)} > ${fmt(th.maxAccel * scale)} px/frame^2`);
  else if (!(worst.a <= jumpLimit)) fail('jump', `jump at frame ${worst.f}: |accel| ${fmt(worst.a)} > 2 x speed + slack = ${fmt(jumpLimit)} px/frame^2`);
  else res.consistent = true;
  return res;
}

function rangeOf(clips: ArrayLike<number>, range: ValueRange | undefined): ValueRange {
  const r = range ?? (clips instanceof Uint8Array ? '[0, 255]' : '[-1, 1]');
  if (!VALUE_RANGES.includes(r)) throw new Error(`objectConsistency: range must be one of ${VALUE_RANGES.join(', ')}, got '${String(r)}'`);
  return r;
}

/** Judges `count` clips of [T, H, W, 3] stored one after another from `first` in `clips`. */
function judgeClips(clips: ArrayLike<number>, first: number, count: number, t: number, h: number, w: number, range: ValueRange, th: Thresholds): ClipConsistency[] {
  const toByte = toByteScale(range);
  const clipLen = t * h * w * 3;
  const px = new Float64Array(clipLen);
  const out: ClipConsistency[] = [];
  for (let i = 0; i < count; i++) {
    const off = (first + i) * clipLen;
    let outside = 0;
    for (let j = 0; j < clipLen; j++) {
      const v = clips[off + j];
      if (!Number.isFinite(v)) throw new Error(`objectConsistency: clip ${first + i} holds a non-finite value (${v}) at element ${j}`);
      const b = toByte(v);
      if (b < -25.5 || b > 280.5) outside++;
      px[j] = Math.min(255, Math.max(0, b)); // as the conversion to uint8 would clip
    }
    if (outside > 0.01 * clipLen) {
      throw new Error(
        `objectConsistency: clip ${first + i}: ${((100 * outside) / clipLen).toFixed(1)}% of its values lie more than 10% outside the range ${range}; ` +
          `pass the range the clips are in (one of ${VALUE_RANGES.join(', ')})`,
      );
    }
    out.push(judgeClip(px, t, h, w, th, Math.min(h, w) / 32));
  }
  return out;
}

/** One clip [T, H, W, 3] (flat, channels last, in `opts.range`). */
export function clipConsistency(clip: ArrayLike<number>, shape: readonly number[], opts: ConsistencyOptions = {}): ClipConsistency {
  if (shape.length !== 4) throw new Error(`clipConsistency: expected shape [T, H, W, 3], got [${shape.join(', ')}]`);
  const full = [1, ...shape];
  checkShape(full.reduce((p, d) => p * d, 1), full, clip.length);
  const [t, h, w] = shape;
  return judgeClips(clip, 0, 1, t, h, w, rangeOf(clip, opts.range), resolve(opts))[0];
}

/** Fraction, counts and first-failed tests of judged clips (e.g. clips judged one file row at a time). */
export function summarizeConsistency(perClip: ClipConsistency[], opts: ConsistencyOptions & { range: ValueRange; height: number; width: number }): ConsistencyResult {
  const failures = Object.fromEntries(CONSISTENCY_TESTS.map((k) => [k, 0])) as Record<ConsistencyTest, number>;
  for (const c of perClip) if (c.failed) failures[c.failed] += 1;
  const consistent = perClip.filter((c) => c.consistent).length;
  const kinds = Object.fromEntries(SHAPE_KINDS.map((k) => [k, 0])) as Record<ShapeKind, number>;
  const consistentKinds = { ...kinds };
  for (const c of perClip) {
    if (!c.kind) continue;
    kinds[c.kind] += 1;
    if (c.consistent) consistentKinds[c.kind] += 1;
  }
  return {
    fraction: perClip.length ? consistent / perClip.length : NaN,
    consistent,
    clips: perClip.length,
    perClip,
    failures,
    kinds,
    consistentKinds,
    consistentRegular: perClip.filter((c) => c.consistent && isRegularOutline(c.outline)).length,
    thresholds: { ...resolve(opts), range: opts.range, scale: Math.min(opts.height, opts.width) / 32 },
  };
}

/**
 * The fraction of clips whose object keeps a consistent shape and velocity.
 * `clips`: N clips [N, T, H, W, 3] flat, channels last, in `opts.range`.
 */
export function objectConsistency(clips: ArrayLike<number>, shape: readonly number[], opts: ConsistencyOptions = {}): ConsistencyResult {
  checkShape(shape.reduce((p, d) => p * d, 1), shape, clips.length);
  const range = rangeOf(clips, opts.range);
  const [count, t, h, w] = shape;
  const perClip = judgeClips(clips, 0, count, t, h, w, range, resolve(opts));
  return summarizeConsistency(perClip, { ...opts, range, height: h, width: w });
}
