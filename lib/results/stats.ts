/**
 * Small-sample statistics for results over seeds: mean, sample standard deviation, Student-t
 * quantiles and 95% t-intervals, and percentile bootstrap intervals (seeded).
 *
 * The t quantile inverts the Student-t CDF, written through the regularised incomplete beta
 * function: for x >= 0, F(x; nu) = 1 - I_{nu/(nu + x^2)}(nu/2, 1/2) / 2 (Abramowitz & Stegun
 * 26.7.1 with 26.5.27). I_x(a, b) is evaluated by its continued fraction (A&S 26.5.8) with the
 * modified Lentz method; log-gamma by the Lanczos approximation (g = 7, 9 terms).
 */
import { Rng } from '../nn/rng';

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation with ddof = 1 (NaN for fewer than two values). */
export function std(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  return Math.sqrt(ss / (xs.length - 1));
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** log Gamma(x) for x > 0 (Lanczos, g = 7; relative error ~1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x); // reflection
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (A&S 26.5.8), modified Lentz. */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    // even step
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    // odd step
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) return h;
  }
  return h;
}

/** Regularised incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0)) throw new Error(`incompleteBeta: a and b must be > 0, got a=${a}, b=${b}`);
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lbt = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  const bt = Math.exp(lbt);
  // the continued fraction converges fast for x < (a + 1) / (a + b + 2); use symmetry otherwise
  if (x < (a + 1) / (a + b + 2)) return (bt * betaContinuedFraction(a, b, x)) / a;
  return 1 - (bt * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Student-t CDF with `df` degrees of freedom (df > 0, not necessarily an integer). */
export function tCdf(x: number, df: number): number {
  if (!(df > 0)) throw new Error(`tCdf: degrees of freedom must be > 0, got ${df}`);
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return 1;
  if (x === -Infinity) return 0;
  const tail = 0.5 * incompleteBeta(df / (df + x * x), df / 2, 0.5); // P(T > |x|)
  return x >= 0 ? 1 - tail : tail;
}

/** Student-t quantile (inverse CDF): the q with P(T <= q) = p. */
export function tQuantile(p: number, df: number): number {
  if (!(df > 0)) throw new Error(`tQuantile: degrees of freedom must be > 0, got ${df}`);
  if (!(p > 0 && p < 1)) throw new Error(`tQuantile: p must be in (0, 1), got ${p}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  if (df === 1) return Math.tan(Math.PI * (p - 0.5)); // Cauchy, exact
  // upper tail probability, computed directly so p close to 1 keeps its precision
  const q = 1 - p;
  const upper = (x: number): number => 0.5 * incompleteBeta(df / (df + x * x), df / 2, 0.5);
  let lo = 0;
  let hi = 1;
  while (upper(hi) > q) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (upper(mid) > q) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

export interface Interval {
  lo: number;
  hi: number;
}

/** Mean and two-sided t-interval of the mean at `level` (default 0.95); NaN bounds for n < 2. */
export function tInterval(xs: readonly number[], level = 0.95): Interval & { mean: number; std: number; n: number; halfWidth: number } {
  if (!(level > 0 && level < 1)) throw new Error(`tInterval: level must be in (0, 1), got ${level}`);
  const n = xs.length;
  const m = mean(xs);
  const s = std(xs);
  const halfWidth = n < 2 ? NaN : (tQuantile(1 - (1 - level) / 2, n - 1) * s) / Math.sqrt(n);
  return { mean: m, std: s, n, halfWidth, lo: m - halfWidth, hi: m + halfWidth };
}

/** Quantile of sorted values with linear interpolation between order statistics (numpy's default). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i] + f * (sorted[i + 1] - sorted[i]) : sorted[i];
}

export interface BootstrapOptions {
  /** Resamples (default 10000). */
  B?: number;
  /** Seed of the resampling stream (lib/nn/rng.ts). */
  seed: number;
  /** Two-sided level (default 0.95). */
  level?: number;
}

/**
 * Percentile bootstrap interval of the mean of each column of `rows` (rows = resampling units,
 * e.g. seeds; columns = quantities measured on the same unit, e.g. overall metric and each
 * window). All columns share the same resampled rows, so per-window intervals are consistent.
 * NaN entries are left out of that column's mean. Returns one interval per column.
 */
export function bootstrapMeanColumns(rows: readonly (readonly number[])[], opts: BootstrapOptions): Interval[] {
  const B = opts.B ?? 10000;
  const level = opts.level ?? 0.95;
  if (!Number.isInteger(B) || B < 1) throw new Error(`bootstrap: B must be a positive integer, got ${B}`);
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap: level must be in (0, 1), got ${level}`);
  const n = rows.length;
  const k = n === 0 ? 0 : rows[0].length;
  if (n < 2) return Array.from({ length: k }, () => ({ lo: NaN, hi: NaN }));
  const rng = new Rng(opts.seed);
  const stats: number[][] = Array.from({ length: k }, () => new Array<number>(B));
  const sum = new Float64Array(k);
  const cnt = new Int32Array(k);
  for (let b = 0; b < B; b++) {
    sum.fill(0);
    cnt.fill(0);
    for (let i = 0; i < n; i++) {
      const row = rows[rng.int(0, n - 1)];
      for (let j = 0; j < k; j++) {
        const v = row[j];
        if (!Number.isNaN(v)) {
          sum[j] += v;
          cnt[j]++;
        }
      }
    }
    for (let j = 0; j < k; j++) stats[j][b] = cnt[j] > 0 ? sum[j] / cnt[j] : NaN;
  }
  const a = (1 - level) / 2;
  return stats.map((s) => {
    const finite = s.filter((v) => !Number.isNaN(v)).sort((x, y) => x - y);
    return { lo: quantileSorted(finite, a), hi: quantileSorted(finite, 1 - a) };
  });
}
