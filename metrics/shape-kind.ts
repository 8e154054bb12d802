/**
 * Shape kind of a tracked object (issue 12: "recognisable shapes"): disc, square or triangle, read
 * from the object's outline in polar form about its centroid.
 *
 * The object's coverage (object-consistency.ts: a = clamp(1 - |I - c| / contrast) over its region
 * and 1-px fringe) is split into K angular sectors about the centroid (each pixel supersampled
 * 4 x 4, so small objects still spread over the sectors); a sector of angle 2 pi / K holding area
 * S_k has an equivalent radius r_k = sqrt(S_k K / pi). A disc has flat r(theta); an equilateral
 * triangle's r(theta) has three lobes (the corners are twice as far as the edge midpoints), a
 * square's four. The reading is the relative amplitude of those angular harmonics,
 * a_m = |sum_k r_k e^{-i m theta_k}| / sum_k r_k for m = 3 and 4 (a Fourier shape descriptor,
 * invariant to rotation and size). Thresholds are calibrated on real clips of known kind
 * (metrics/OBJECT-CONSISTENCY.md).
 *
 * A disc, a square and an equilateral triangle have no 2-fold harmonic (their r(theta) repeats
 * every 120 or 90 degrees, or is flat), an elongated or lumpy blob has one: a2 reads how far an
 * outline is from every kind of the family (`isRegularOutline`).
 */

export type ShapeKind = 'disc' | 'square' | 'triangle';
export const SHAPE_KINDS: readonly ShapeKind[] = ['disc', 'square', 'triangle'];

/** A kind with corners: what the polygons reading ("recognisable shapes") counts. */
export function isPolygon(kind: ShapeKind | null): boolean {
  return kind === 'square' || kind === 'triangle';
}

/** Angular sectors of the polar outline. */
export const OUTLINE_SECTORS = 24;

export interface OutlineHarmonics {
  /** Relative amplitude of the 2-fold harmonic of r(theta) (elongation: 0 for a disc, a square and a triangle). */
  a2: number;
  /** Relative amplitude of the 3-fold harmonic of r(theta) (triangles). */
  a3: number;
  /** Relative amplitude of the 4-fold harmonic (squares). */
  a4: number;
}

/** Thresholds of `classifyOutline` (calibrated: metrics/OBJECT-CONSISTENCY.md, "Shape kind"). */
export interface ShapeKindThresholds {
  /** a3 at or above which the outline is a triangle. */
  triangle: number;
  /** a4 at or above which (and a3 below `triangle`) the outline is a square. */
  square: number;
  /** a2 at or above which the outline is not a regular shape of the family (an elongated or lumpy blob). */
  elongation: number;
}

export const SHAPE_KIND_DEFAULTS: Readonly<ShapeKindThresholds> = { triangle: 0.05, square: 0.03, elongation: 0.03 };

/**
 * a2, a3 and a4 of the coverage map `cover` [H, W] (weights in [0, 1], zero outside the object) about
 * the centroid (cx, cy) in pixel coordinates (pixel centres at i + 0.5). NaN when the map is empty.
 */
export function outlineHarmonics(cover: ArrayLike<number>, h: number, w: number, cx: number, cy: number, sectors = OUTLINE_SECTORS): OutlineHarmonics {
  const area = new Float64Array(sectors);
  const sub = 4;
  const step = (2 * Math.PI) / sectors;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const a = cover[y * w + x];
      if (!(a > 0)) continue;
      for (let i = 0; i < sub; i++) {
        for (let j = 0; j < sub; j++) {
          const th = Math.atan2(y + (i + 0.5) / sub - cy, x + (j + 0.5) / sub - cx);
          const k = Math.min(sectors - 1, Math.floor((th + Math.PI) / step));
          area[k] += a / (sub * sub);
        }
      }
    }
  }
  let sum = 0;
  const orders = [2, 3, 4];
  const re = [0, 0, 0];
  const im = [0, 0, 0];
  for (let k = 0; k < sectors; k++) {
    const r = Math.sqrt((area[k] * sectors) / Math.PI);
    const th = -Math.PI + (k + 0.5) * step;
    sum += r;
    orders.forEach((m, n) => {
      re[n] += r * Math.cos(m * th);
      im[n] -= r * Math.sin(m * th);
    });
  }
  if (!(sum > 0)) return { a2: NaN, a3: NaN, a4: NaN };
  const [a2, a3, a4] = orders.map((_, n) => Math.hypot(re[n], im[n]) / sum);
  return { a2, a3, a4 };
}

/**
 * Whether an outline is a regular shape of the family (a disc, a square or a triangle rather than
 * an elongated or lumpy blob): a2 below `th.elongation`. False when a2 is not finite.
 */
export function isRegularOutline(h: Pick<OutlineHarmonics, 'a2'>, th: Pick<ShapeKindThresholds, 'elongation'> = SHAPE_KIND_DEFAULTS): boolean {
  return Number.isFinite(h.a2) && h.a2 < th.elongation;
}

/** The kind an outline's harmonics indicate (null when they are not finite). */
export function classifyOutline(h: Pick<OutlineHarmonics, 'a3' | 'a4'>, th: Pick<ShapeKindThresholds, 'triangle' | 'square'> = SHAPE_KIND_DEFAULTS): ShapeKind | null {
  if (!Number.isFinite(h.a3) || !Number.isFinite(h.a4)) return null;
  if (h.a3 >= th.triangle) return 'triangle';
  if (h.a4 >= th.square) return 'square';
  return 'disc';
}
