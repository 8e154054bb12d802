/**
 * Kernel Video Distance (KVD; Unterthiner et al. 2019), as TATS and LVDM compute it: the
 * unbiased MMD^2 estimate (Gretton et al. 2012, Lemma 6) with the polynomial kernel
 * k(a, b) = (a.b / d + 1)^3 (sklearn polynomial_kernel defaults: degree 3, gamma 1/d, coef0 1):
 *
 *   MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
 *             - 2 sum_{i, j} k(x_i, y_j) / (m n)
 *
 * over the full sets, in float64 (the reference code's float32 kernel loses digits to the
 * cancellation between the three terms). The estimate of identical sets is not 0.
 * `kvdSubsets` is the KID-style variant (MMD-GAN / StyleGAN-V KID): the same estimator on random
 * equal-size subsets drawn without replacement, averaged.
 */
import { Rng } from '../lib/nn/rng';
import { FeatureMatrix } from './features';
import { gemmNT } from './linalg';

/** The polynomial kernel value for a dot product g in dimension d. */
export function polyKernel(g: number, d: number): number {
  const t = g / d + 1;
  return t * t * t;
}

const ROW_BLOCK = 256;

/** sum_{i != j} k(x_i, x_j) over a set (lower triangle doubled). */
function sumWithin(x: FeatureMatrix): number {
  const { n, d, data } = x;
  let total = 0;
  for (let i0 = 0; i0 < n; i0 += ROW_BLOCK) {
    const i1 = Math.min(n, i0 + ROW_BLOCK);
    // rows i0..i1 against rows 0..i1; keep j < i.
    const g = gemmNT(data.subarray(i0 * d, i1 * d), i1 - i0, data, i1, d);
    for (let i = i0; i < i1; i++) {
      let row = 0;
      const r = (i - i0) * i1;
      for (let j = 0; j < i; j++) row += polyKernel(g[r + j], d);
      total += row;
    }
  }
  return 2 * total;
}

/** sum_{i, j} k(x_i, y_j). */
function sumBetween(x: FeatureMatrix, y: FeatureMatrix): number {
  const { d } = x;
  let total = 0;
  for (let i0 = 0; i0 < x.n; i0 += ROW_BLOCK) {
    const i1 = Math.min(x.n, i0 + ROW_BLOCK);
    const g = gemmNT(x.data.subarray(i0 * d, i1 * d), i1 - i0, y.data, y.n, d);
    for (let i = 0; i < i1 - i0; i++) {
      let row = 0;
      const r = i * y.n;
      for (let j = 0; j < y.n; j++) row += polyKernel(g[r + j], d);
      total += row;
    }
  }
  return total;
}

function checkPair(x: FeatureMatrix, y: FeatureMatrix, what: string): void {
  if (x.d !== y.d) throw new Error(`${what}: feature dimensions differ (${x.d} vs ${y.d})`);
  if (x.n < 2 || y.n < 2) throw new Error(`${what}: the unbiased estimator needs at least 2 samples per set (got ${x.n} and ${y.n})`);
}

/** Unbiased MMD^2 with the cubic polynomial kernel over the full sets (TATS/LVDM KVD). */
export function kvd(x: FeatureMatrix, y: FeatureMatrix): number {
  checkPair(x, y, 'kvd');
  const m = x.n;
  const n = y.n;
  return sumWithin(x) / (m * (m - 1)) + sumWithin(y) / (n * (n - 1)) - (2 * sumBetween(x, y)) / (m * n);
}

export interface KvdSubsetOptions {
  /** Number of random subsets (MMD-GAN default 50, StyleGAN-V KID 100). */
  subsets: number;
  /** Subset size; default min(m, n, 1000). */
  subsetSize?: number;
  seed: number;
}

export interface KvdSubsetResult {
  mean: number;
  /** Population standard deviation (numpy std, ddof 0) over subsets. */
  std: number;
  values: number[];
  subsets: number;
  subsetSize: number;
  seed: number;
}

/** Random `k` of [0, n) without replacement (partial Fisher-Yates on the seeded Rng). */
export function sampleWithoutReplacement(rng: Rng, n: number, k: number): number[] {
  if (k > n) throw new Error(`cannot draw ${k} of ${n} without replacement`);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = rng.int(i, n - 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p.slice(0, k);
}

/**
 * KID-style KVD: the unbiased estimate on `subsets` pairs of random subsets of size
 * `subsetSize` (drawn independently from x and from y), averaged. Kernel matrices are computed
 * once when they fit in about 256 MB, otherwise per subset.
 */
export function kvdSubsets(x: FeatureMatrix, y: FeatureMatrix, opts: KvdSubsetOptions): KvdSubsetResult {
  checkPair(x, y, 'kvdSubsets');
  const size = opts.subsetSize ?? Math.min(x.n, y.n, 1000);
  if (!Number.isInteger(opts.subsets) || opts.subsets < 1) throw new Error(`kvdSubsets: subsets must be a positive integer, got ${opts.subsets}`);
  if (!Number.isInteger(size) || size < 2 || size > x.n || size > y.n)
    throw new Error(`kvdSubsets: subset size ${size} must be an integer in [2, min(${x.n}, ${y.n})]`);
  const rng = new Rng(opts.seed);
  const { d } = x;
  const m = x.n;
  const n = y.n;
  const precompute = (m * m + n * n + m * n) * 8 <= 256 * 2 ** 20;
  let kxx: Float64Array | null = null;
  let kyy: Float64Array | null = null;
  let kxy: Float64Array | null = null;
  if (precompute) {
    kxx = gemmNT(x.data, m, x.data, m, d, true);
    kyy = gemmNT(y.data, n, y.data, n, d, true);
    kxy = gemmNT(x.data, m, y.data, n, d);
    for (const k of [kxx, kyy, kxy]) for (let i = 0; i < k.length; i++) k[i] = polyKernel(k[i], d);
  }
  const values: number[] = [];
  for (let s = 0; s < opts.subsets; s++) {
    const ix = sampleWithoutReplacement(rng, m, size);
    const iy = sampleWithoutReplacement(rng, n, size);
    if (precompute) {
      let sxx = 0;
      let syy = 0;
      let sxy = 0;
      for (let a = 0; a < size; a++) {
        const ra = ix[a] * m;
        const rb = iy[a] * n;
        const rc = ix[a] * n;
        for (let b = 0; b < size; b++) {
          if (a !== b) {
            sxx += kxx![ra + ix[b]];
            syy += kyy![rb + iy[b]];
          }
          sxy += kxy![rc + iy[b]];
        }
      }
      values.push(sxx / (size * (size - 1)) + syy / (size * (size - 1)) - (2 * sxy) / (size * size));
    } else {
      values.push(kvd(pick(x, ix), pick(y, iy)));
    }
  }
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { mean, std, values, subsets: opts.subsets, subsetSize: size, seed: opts.seed };
}

function pick(x: FeatureMatrix, idx: number[]): FeatureMatrix {
  const out = new Float64Array(idx.length * x.d);
  idx.forEach((r, k) => out.set(x.data.subarray(r * x.d, (r + 1) * x.d), k * x.d));
  return { n: idx.length, d: x.d, data: out };
}

/** The subsets `kvdSubsets` draws for a seed (for audits and tests). */
export function kvdSubsetIndices(m: number, n: number, subsets: number, subsetSize: number, seed: number): { x: number[]; y: number[] }[] {
  const rng = new Rng(seed);
  const out: { x: number[]; y: number[] }[] = [];
  for (let s = 0; s < subsets; s++) out.push({ x: sampleWithoutReplacement(rng, m, subsetSize), y: sampleWithoutReplacement(rng, n, subsetSize) });
  return out;
}
