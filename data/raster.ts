/**
 * Tiny anti-aliased rasteriser and lattice noise for the synthetic video families.
 *
 * Frames are RGB uint8 `[H, W, 3]` views into a larger clip buffer. Shapes are drawn from
 * signed distances in pixel units with a one-pixel soft edge (coverage = clamp(0.5 - d)).
 */

export type Rgb = readonly [number, number, number];

export interface Frame {
  data: Uint8Array;
  /** Byte offset of pixel (0, 0) in `data`. */
  offset: number;
  width: number;
  height: number;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

function blendPixel(f: Frame, x: number, y: number, c: Rgb, a: number): void {
  const i = f.offset + (y * f.width + x) * 3;
  const d = f.data;
  if (a >= 1) {
    d[i] = c[0];
    d[i + 1] = c[1];
    d[i + 2] = c[2];
  } else {
    d[i] = d[i] + (c[0] - d[i]) * a + 0.5;
    d[i + 1] = d[i + 1] + (c[1] - d[i + 1]) * a + 0.5;
    d[i + 2] = d[i + 2] + (c[2] - d[i + 2]) * a + 0.5;
  }
}

/** Bounding box (pixel indices, inclusive) clipped to the frame; null when empty. */
function bbox(f: Frame, x0: number, y0: number, x1: number, y1: number): [number, number, number, number] | null {
  const ax = Math.max(0, Math.floor(x0 - 1));
  const ay = Math.max(0, Math.floor(y0 - 1));
  const bx = Math.min(f.width - 1, Math.ceil(x1 + 1));
  const by = Math.min(f.height - 1, Math.ceil(y1 + 1));
  return ax > bx || ay > by ? null : [ax, ay, bx, by];
}

/** Disc of radius r (pixels) centred at (cx, cy) in pixel coordinates (pixel centres at i + 0.5). */
export function fillCircle(f: Frame, cx: number, cy: number, r: number, c: Rgb, alpha = 1): void {
  const b = bbox(f, cx - r, cy - r, cx + r, cy + r);
  if (!b) return;
  for (let y = b[1]; y <= b[3]; y++) {
    const dy = y + 0.5 - cy;
    for (let x = b[0]; x <= b[2]; x++) {
      const dx = x + 0.5 - cx;
      const a = clamp01(r - Math.sqrt(dx * dx + dy * dy) + 0.5) * alpha;
      if (a > 0) blendPixel(f, x, y, c, a);
    }
  }
}

/** Capsule (thick segment) from (x0, y0) to (x1, y1) with radius r, pixel coordinates. */
export function fillCapsule(f: Frame, x0: number, y0: number, x1: number, y1: number, r: number, c: Rgb): void {
  const b = bbox(f, Math.min(x0, x1) - r, Math.min(y0, y1) - r, Math.max(x0, x1) + r, Math.max(y0, y1) + r);
  if (!b) return;
  const ex = x1 - x0;
  const ey = y1 - y0;
  const ee = ex * ex + ey * ey || 1e-12;
  for (let y = b[1]; y <= b[3]; y++) {
    const py = y + 0.5 - y0;
    for (let x = b[0]; x <= b[2]; x++) {
      const px = x + 0.5 - x0;
      const h = clamp01((px * ex + py * ey) / ee);
      const dx = px - ex * h;
      const dy = py - ey * h;
      const a = clamp01(r - Math.sqrt(dx * dx + dy * dy) + 0.5);
      if (a > 0) blendPixel(f, x, y, c, a);
    }
  }
}

/**
 * Convex polygon, vertices in pixel coordinates in either winding. Coverage from the largest
 * signed distance to the edge lines (exact inside, a close bound outside).
 */
export function fillConvex(f: Frame, xs: readonly number[], ys: readonly number[], c: Rgb, alpha = 1): void {
  const n = xs.length;
  let area = 0;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    area += xs[i] * ys[j] - xs[j] * ys[i];
  }
  const sgn = area >= 0 ? 1 : -1;
  // Edge lines as outward unit normals: d = nx * px + ny * py - k.
  const nx: number[] = [];
  const ny: number[] = [];
  const k: number[] = [];
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    const ex = xs[j] - xs[i];
    const ey = ys[j] - ys[i];
    const len = Math.sqrt(ex * ex + ey * ey) || 1e-12;
    const ox = (sgn * ey) / len;
    const oy = (-sgn * ex) / len;
    nx.push(ox);
    ny.push(oy);
    k.push(ox * xs[i] + oy * ys[i]);
    minX = Math.min(minX, xs[i]);
    maxX = Math.max(maxX, xs[i]);
    minY = Math.min(minY, ys[i]);
    maxY = Math.max(maxY, ys[i]);
  }
  const b = bbox(f, minX, minY, maxX, maxY);
  if (!b) return;
  for (let y = b[1]; y <= b[3]; y++) {
    const py = y + 0.5;
    for (let x = b[0]; x <= b[2]; x++) {
      const px = x + 0.5;
      let d = -Infinity;
      for (let e = 0; e < n; e++) {
        const v = nx[e] * px + ny[e] * py - k[e];
        if (v > d) d = v;
      }
      const a = clamp01(0.5 - d) * alpha;
      if (a > 0) blendPixel(f, x, y, c, a);
    }
  }
}

/** uint32 hash of integer lattice coordinates and a seed (a murmur3-style finaliser). */
export function hash3(ix: number, iy: number, iz: number, seed: number): number {
  let h = (seed ^ Math.imul(ix, 0x27d4eb2d) ^ Math.imul(iy, 0x165667b1) ^ Math.imul(iz, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function lattice(ix: number, iy: number, iz: number, seed: number): number {
  return hash3(ix, iy, iz, seed) / 4294967296;
}

function fade(t: number): number {
  return t * t * (3 - 2 * t);
}

/** Smooth value noise in [0, 1) on an integer lattice (2D). */
export function valueNoise2(x: number, y: number, seed: number): number {
  const ix = Math.floor(x);
  const iy = Math.floor(y);
  const fx = fade(x - ix);
  const fy = fade(y - iy);
  const a = lattice(ix, iy, 0, seed);
  const b = lattice(ix + 1, iy, 0, seed);
  const c = lattice(ix, iy + 1, 0, seed);
  const d = lattice(ix + 1, iy + 1, 0, seed);
  const top = a + (b - a) * fx;
  const bot = c + (d - c) * fx;
  return top + (bot - top) * fy;
}

/** Smooth value noise in [0, 1) on an integer lattice (3D: x, y and time). */
export function valueNoise3(x: number, y: number, z: number, seed: number): number {
  const ix = Math.floor(x);
  const iy = Math.floor(y);
  const iz = Math.floor(z);
  const fx = fade(x - ix);
  const fy = fade(y - iy);
  const fz = fade(z - iz);
  const l00 = lattice(ix, iy, iz, seed);
  const l10 = lattice(ix + 1, iy, iz, seed);
  const l01 = lattice(ix, iy + 1, iz, seed);
  const l11 = lattice(ix + 1, iy + 1, iz, seed);
  const u00 = lattice(ix, iy, iz + 1, seed);
  const u10 = lattice(ix + 1, iy, iz + 1, seed);
  const u01 = lattice(ix, iy + 1, iz + 1, seed);
  const u11 = lattice(ix + 1, iy + 1, iz + 1, seed);
  const l0 = l00 + (l10 - l00) * fx;
  const l1 = l01 + (l11 - l01) * fx;
  const u0 = u00 + (u10 - u00) * fx;
  const u1 = u01 + (u11 - u01) * fx;
  const l = l0 + (l1 - l0) * fy;
  const u = u0 + (u1 - u0) * fy;
  return l + (u - l) * fz;
}

/** Triangle wave bouncing p between lo and hi (a ball reflected by two walls), O(1) in p. */
export function bounce(p: number, lo: number, hi: number): number {
  const len = hi - lo;
  if (len <= 0) return (lo + hi) / 2;
  let m = (p - lo) % (2 * len);
  if (m < 0) m += 2 * len;
  return lo + (m < len ? m : 2 * len - m);
}

export function mixRgb(a: Rgb, b: Rgb, t: number): [number, number, number] {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}
