/**
 * Frechet distance between two Gaussians fitted to feature sets (FID/FVD; Heusel et al. 2017,
 * Unterthiner et al. 2019):
 *
 *   FD = ||mu_x - mu_y||^2 + tr(Sx) + tr(Sy) - 2 tr sqrt(Sx Sy)
 *
 * computed in float64. tr sqrt(Sx Sy) is the nuclear norm (sum of singular values) of Fx Fy^T
 * for any factors with Fx^T Fx = Sx and Fy^T Fy = Sy, because the non-zero eigenvalues of
 * Sx Sy = Fx^T (Fx Fy^T Fy) equal those of (Fx Fy^T)(Fx Fy^T)^T. The factors are:
 *   - n <= d (rank-deficient, n - 1 < d): the centred, scaled data itself, P = (X - mu) / sqrt(n - ddof);
 *   - n > d: the Cholesky factor U of S (U^T U = S) when S is comfortably positive definite,
 *     otherwise the R of a Householder QR of P (R^T R = P^T P = S, never forming a square root).
 * No square root of a non-symmetric matrix, and no square root of tiny (noisy) eigenvalues, is
 * taken: the singular values of K = Fx Fy^T come from its Householder bidiagonal form (no
 * squaring), accurate to rounding relative to ||K|| even for singular values near 0.
 *
 * Covariance conventions: 'unbiased' divides by n - 1 (TF-GAN, TATS, LVDM; the default),
 * 'biased' by n (StyleGAN-V `FeatureStats.get_mean_cov`).
 */
import { FeatureMatrix, columnMeans } from './features';
import { choleskyUpper, gemmNT, householderR, singularValues, symmetricEigen, transpose } from './linalg';

export type CovarianceConvention = 'unbiased' | 'biased';

export interface FrechetOptions {
  /** 'unbiased' (n - 1, default) or 'biased' (n). */
  covariance?: CovarianceConvention;
}

export interface FrechetResult {
  /** The Frechet distance. Can be a tiny negative number for (near) identical sets, from rounding. */
  fd: number;
  /** ||mu_x - mu_y||^2 */
  meanTerm: number;
  /** tr(Sx), tr(Sy) */
  traceX: number;
  traceY: number;
  /** tr sqrt(Sx Sy) */
  traceSqrtProduct: number;
  /** Which factor was used for each set: 'data' | 'cholesky' | 'qr' | 'eigen'. */
  factors: [string, string];
  covariance: CovarianceConvention;
}

interface Factor {
  /** rows x d, row-major. */
  f: Float64Array;
  rows: number;
  trace: number;
  mu: Float64Array;
  kind: string;
}

function ddofOf(c: CovarianceConvention): number {
  if (c !== 'unbiased' && c !== 'biased') throw new Error(`covariance convention must be 'unbiased' or 'biased', got '${String(c)}'`);
  return c === 'unbiased' ? 1 : 0;
}

/** Smallest eigenvalue of U^T U estimated by inverse iteration with triangular solves. */
function lambdaMinEstimate(u: Float64Array, d: number): number {
  let x = new Float64Array(d);
  for (let i = 0; i < d; i++) x[i] = 1 + ((i * 7919) % 13) / 13; // fixed, generic start
  let lambda = Infinity;
  for (let it = 0; it < 12; it++) {
    let norm = 0;
    for (let i = 0; i < d; i++) norm += x[i] * x[i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < d; i++) x[i] /= norm;
    // y = U^{-T} x (forward substitution with U^T lower), then z = U^{-1} y.
    const y = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      let s = x[i];
      for (let k = 0; k < i; k++) s -= u[k * d + i] * y[k];
      y[i] = s / u[i * d + i];
    }
    const z = new Float64Array(d);
    for (let i = d - 1; i >= 0; i--) {
      let s = y[i];
      const r = i * d;
      for (let k = i + 1; k < d; k++) s -= u[r + k] * z[k];
      z[i] = s / u[r + i];
    }
    // Rayleigh quotient of (U^T U)^{-1} at x is x.z; lambda_min estimate = 1 / that.
    let xz = 0;
    for (let i = 0; i < d; i++) xz += x[i] * z[i];
    lambda = 1 / xz;
    x = z;
  }
  return lambda;
}

function factorOf(x: FeatureMatrix, ddof: number, label: string): Factor {
  const { n, d } = x;
  if (n - ddof < 1) throw new Error(`${label}: ${n} sample(s) are too few for a ${ddof ? 'unbiased (n - 1)' : 'biased (n)'} covariance`);
  const mu = columnMeans(x);
  const scale = 1 / Math.sqrt(n - ddof);
  const p = new Float64Array(n * d);
  let trace = 0;
  for (let i = 0; i < n; i++) {
    const r = i * d;
    for (let j = 0; j < d; j++) {
      const v = (x.data[r + j] - mu[j]) * scale;
      p[r + j] = v;
      trace += v * v;
    }
  }
  if (n <= d) return { f: p, rows: n, trace, mu, kind: 'data' };
  const pt = transpose(p, n, d);
  const s = gemmNT(pt, d, pt, d, n, true); // S = P^T P, d x d
  const chol = choleskyUpper(s, d);
  if (chol !== null) {
    let maxDiag = 0;
    for (let i = 0; i < d; i++) maxDiag = Math.max(maxDiag, s[i * d + i]);
    if (chol.pivotRatio > 1e-9 && lambdaMinEstimate(chol.u, d) > 1e-9 * maxDiag) return { f: chol.u, rows: d, trace, mu, kind: 'cholesky' };
  }
  return { f: householderR(p, n, d), rows: d, trace, mu, kind: 'qr' };
}

/** Sum of singular values of the r1 x r2 matrix K (row-major). */
export function nuclearNorm(k: Float64Array, r1: number, r2: number): number {
  const sv = singularValues(k, r1, r2);
  let sum = 0;
  for (let i = 0; i < sv.length; i++) sum += sv[i];
  return sum;
}

function combine(fx: Factor, fy: Factor, d: number, covariance: CovarianceConvention): FrechetResult {
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (fx.mu[j] - fy.mu[j]) ** 2;
  const k = gemmNT(fx.f, fx.rows, fy.f, fy.rows, d); // Fx Fy^T
  const traceSqrtProduct = nuclearNorm(k, fx.rows, fy.rows);
  const fd = meanTerm + fx.trace + fy.trace - 2 * traceSqrtProduct;
  return { fd, meanTerm, traceX: fx.trace, traceY: fy.trace, traceSqrtProduct, factors: [fx.kind, fy.kind], covariance };
}

/** Frechet distance between feature sets x (n x d) and y (m x d), in float64. */
export function frechetDistance(x: FeatureMatrix, y: FeatureMatrix, opts: FrechetOptions = {}): FrechetResult {
  const covariance = opts.covariance ?? 'unbiased';
  const ddof = ddofOf(covariance);
  if (x.d !== y.d) throw new Error(`frechetDistance: feature dimensions differ (${x.d} vs ${y.d})`);
  return combine(factorOf(x, ddof, 'first feature set'), factorOf(y, ddof, 'second feature set'), x.d, covariance);
}

/** Mean and covariance (d x d, row-major) of a feature set under a covariance convention. */
export function meanCov(x: FeatureMatrix, covariance: CovarianceConvention = 'unbiased'): { mu: Float64Array; cov: Float64Array } {
  const ddof = ddofOf(covariance);
  if (x.n - ddof < 1) throw new Error(`meanCov: ${x.n} sample(s) are too few`);
  const mu = columnMeans(x);
  const { n, d } = x;
  const pt = new Float64Array(n * d); // transposed, centred
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) pt[j * n + i] = x.data[i * d + j] - mu[j];
  const cov = gemmNT(pt, d, pt, d, n, true);
  for (let i = 0; i < cov.length; i++) cov[i] /= n - ddof;
  return { mu, cov };
}

function statsFactor(mu: Float64Array, cov: Float64Array, d: number, label: string): Factor {
  if (mu.length !== d || cov.length !== d * d) throw new Error(`${label}: expected mean of length ${d} and a ${d}x${d} covariance`);
  let trace = 0;
  for (let i = 0; i < d; i++) trace += cov[i * d + i];
  const chol = choleskyUpper(cov, d);
  if (chol !== null && chol.pivotRatio > 1e-9) return { f: chol.u, rows: d, trace, mu, kind: 'cholesky' };
  // Positive semi-definite fallback: F = diag(sqrt(max(lambda, 0))) V^T.
  const { values, vectors } = symmetricEigen(cov, d, true);
  const f = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const s = Math.sqrt(Math.max(values[i], 0));
    for (let j = 0; j < d; j++) f[i * d + j] = s * vectors![i * d + j];
  }
  return { f, rows: d, trace, mu, kind: 'eigen' };
}

/**
 * Frechet distance from precomputed statistics (mean and covariance). Exact for positive
 * definite covariances; for singular ones it falls back to eigenvalue square roots, which lose
 * accuracy (about sqrt(machine eps) relative) - prefer `frechetDistance` on the features.
 */
export function frechetDistanceFromStats(
  muX: Float64Array,
  covX: Float64Array,
  muY: Float64Array,
  covY: Float64Array,
  covariance: CovarianceConvention = 'unbiased',
): FrechetResult {
  const d = muX.length;
  return combine(statsFactor(muX, covX, d, 'first statistics'), statsFactor(muY, covY, d, 'second statistics'), d, covariance);
}
