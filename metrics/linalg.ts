/**
 * Dense float64 linear algebra for the metrics (no tfjs: everything here must be exact to
 * double precision). Matrices are row-major Float64Arrays with explicit sizes.
 *
 * - `gemmNT`: C = A B^T (rows of both contiguous), the one product every distance uses.
 * - `symmetricEigen`: Householder tridiagonalisation + implicit shifted QL
 *   (Golub & Van Loan, Matrix Computations, 4th ed., Alg. 8.3.1 and Sec. 8.3.4).
 * - `jacobiEigen`: cyclic Jacobi (Golub & Van Loan Alg. 8.5.3), slow but simple; used to
 *   cross-check `symmetricEigen` and for tiny matrices.
 * - `choleskyUpper`: S = U^T U for symmetric positive definite S.
 * - `householderR`: the R of a Householder QR of a tall matrix (R^T R = P^T P).
 */

/**
 * C[i][j] = sum_t A[i][t] * B[j][t]; A is ra x k, B is rb x k (row-major, so both operands are
 * read along contiguous rows). With `symmetric` (A and B the same matrix), only j <= i is
 * computed, then mirrored. Blocked over B's rows and k, 4 x 2 register tile.
 */
export function gemmNT(a: Float64Array, ra: number, b: Float64Array, rb: number, k: number, symmetric = false): Float64Array {
  if (a.length < ra * k || b.length < rb * k) throw new Error(`gemmNT: operands too small for ${ra}x${k} and ${rb}x${k}`);
  if (symmetric && ra !== rb) throw new Error('gemmNT: symmetric product needs ra === rb');
  const c = new Float64Array(ra * rb);
  const JB = 256;
  const KB = 512;
  for (let j0 = 0; j0 < rb; j0 += JB) {
    const j1 = Math.min(rb, j0 + JB);
    for (let k0 = 0; k0 < k; k0 += KB) {
      const k1 = Math.min(k, k0 + KB);
      let i = symmetric ? j0 : 0;
      for (; i + 3 < ra; i += 4) {
        const a0 = i * k;
        const a1 = a0 + k;
        const a2 = a1 + k;
        const a3 = a2 + k;
        const jEnd = symmetric ? Math.min(j1, i + 4) : j1;
        let j = j0;
        for (; j + 1 < jEnd; j += 2) {
          const b0 = j * k;
          const b1 = b0 + k;
          let s00 = 0;
          let s01 = 0;
          let s10 = 0;
          let s11 = 0;
          let s20 = 0;
          let s21 = 0;
          let s30 = 0;
          let s31 = 0;
          for (let t = k0; t < k1; t++) {
            const y0 = b[b0 + t];
            const y1 = b[b1 + t];
            const x0 = a[a0 + t];
            const x1 = a[a1 + t];
            const x2 = a[a2 + t];
            const x3 = a[a3 + t];
            s00 += x0 * y0;
            s01 += x0 * y1;
            s10 += x1 * y0;
            s11 += x1 * y1;
            s20 += x2 * y0;
            s21 += x2 * y1;
            s30 += x3 * y0;
            s31 += x3 * y1;
          }
          const c0 = i * rb + j;
          c[c0] += s00;
          c[c0 + 1] += s01;
          c[c0 + rb] += s10;
          c[c0 + rb + 1] += s11;
          c[c0 + 2 * rb] += s20;
          c[c0 + 2 * rb + 1] += s21;
          c[c0 + 3 * rb] += s30;
          c[c0 + 3 * rb + 1] += s31;
        }
        for (; j < jEnd; j++) {
          const b0 = j * k;
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0;
          for (let t = k0; t < k1; t++) {
            const y = b[b0 + t];
            s0 += a[a0 + t] * y;
            s1 += a[a1 + t] * y;
            s2 += a[a2 + t] * y;
            s3 += a[a3 + t] * y;
          }
          c[i * rb + j] += s0;
          c[(i + 1) * rb + j] += s1;
          c[(i + 2) * rb + j] += s2;
          c[(i + 3) * rb + j] += s3;
        }
      }
      for (; i < ra; i++) {
        const a0 = i * k;
        const jEnd = symmetric ? Math.min(j1, i + 1) : j1;
        for (let j = j0; j < jEnd; j++) {
          const b0 = j * k;
          let s = 0;
          for (let t = k0; t < k1; t++) s += a[a0 + t] * b[b0 + t];
          c[i * rb + j] += s;
        }
      }
    }
  }
  if (symmetric) {
    // Entries with j > i computed inside a tile are overwritten by their mirror (same value).
    for (let r = 0; r < ra; r++) for (let q = r + 1; q < rb; q++) c[r * rb + q] = c[q * rb + r];
  }
  return c;
}

/** Transpose of a rows x cols row-major matrix. */
export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * rows + i] = a[i * cols + j];
    }
  }
  return out;
}

export interface EigenResult {
  /** Eigenvalues in ascending order. */
  values: Float64Array;
  /** Row i is the unit eigenvector of values[i] (n x n, row-major); null when not requested. */
  vectors: Float64Array | null;
}

function pythag(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  if (x > y) return x * Math.sqrt(1 + (y / x) * (y / x));
  return y === 0 ? 0 : y * Math.sqrt(1 + (x / y) * (x / y));
}

function checkSquare(a: Float64Array, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || a.length !== n * n) throw new Error(`${what}: expected an ${n}x${n} matrix (${n * n} values), got ${a.length}`);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new Error(`${what}: matrix has a non-finite entry at (${Math.floor(i / n)}, ${i % n})`);
}

/**
 * Eigen-decomposition of a symmetric matrix (only the lower triangle is read).
 * Householder reduction to tridiagonal form T = Q^T A Q, then implicit QL iterations with a
 * Wilkinson-type shift; the Givens rotations are accumulated into the rows of Q^T.
 */
export function symmetricEigen(input: Float64Array, n: number, wantVectors = true): EigenResult {
  checkSquare(input, n, 'symmetricEigen');
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      a[i * n + j] = input[i * n + j];
      a[j * n + i] = input[i * n + j];
    }
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] couples i and i+1
  let qt: Float64Array | null = null;
  if (wantVectors) {
    qt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) qt[i * n + i] = 1;
  }
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  const w = new Float64Array(n);
  // 1. Householder tridiagonalisation: step k zeroes A[k+2.., k].
  for (let k = 0; k < n - 2; k++) {
    let norm2 = 0;
    for (let i = k + 1; i < n; i++) norm2 += a[i * n + k] * a[i * n + k];
    const x0 = a[(k + 1) * n + k];
    if (norm2 === x0 * x0) {
      e[k] = x0; // already tridiagonal in this column
      continue;
    }
    const norm = Math.sqrt(norm2);
    const alpha = x0 > 0 ? -norm : norm;
    v[k + 1] = x0 - alpha;
    for (let i = k + 2; i < n; i++) v[i] = a[i * n + k];
    const beta = 1 / (norm2 - x0 * alpha); // 2 / (v.v)
    // p = beta * B v over the trailing block B = A[k+1.., k+1..]
    let pv = 0;
    for (let i = k + 1; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let j = k + 1; j < n; j++) s += a[row + j] * v[j];
      p[i] = beta * s;
      pv += p[i] * v[i];
    }
    const K = 0.5 * beta * pv;
    for (let i = k + 1; i < n; i++) w[i] = p[i] - K * v[i];
    // B -= v w^T + w v^T
    for (let i = k + 1; i < n; i++) {
      const vi = v[i];
      const wi = w[i];
      const row = i * n;
      for (let j = k + 1; j < n; j++) a[row + j] -= vi * w[j] + wi * v[j];
    }
    e[k] = alpha;
    for (let i = k + 2; i < n; i++) {
      a[i * n + k] = 0;
      a[k * n + i] = 0;
    }
    if (qt !== null) {
      // Q^T <- H Q^T: rows k+1.. of Q^T change by -beta v (v^T Q^T).
      w.fill(0);
      for (let i = k + 1; i < n; i++) {
        const vi = v[i];
        const row = i * n;
        for (let c = 0; c < n; c++) w[c] += vi * qt[row + c];
      }
      for (let i = k + 1; i < n; i++) {
        const f = beta * v[i];
        const row = i * n;
        for (let c = 0; c < n; c++) qt[row + c] -= f * w[c];
      }
    }
  }
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  if (n >= 2) e[n - 2] = a[(n - 1) * n + n - 2];
  if (n >= 1) e[n - 1] = 0;

  // 2. Implicit QL on the tridiagonal (d, e).
  tridiagonalQL(d, e, qt, n);
  return sortEigen(d, qt, n);
}

/**
 * Implicit QL with Wilkinson-type shifts on the symmetric tridiagonal (d, e), e[i] coupling i and
 * i + 1 (e[n - 1] unused). Eigenvalues replace d (unsorted); each Givens rotation is applied to
 * rows i, i + 1 of `qt` when given. Off-diagonals below 1e-3 eps ||T|| count as zero.
 */
function tridiagonalQL(d: Float64Array, e: Float64Array, qt: Float64Array | null, n: number): void {
  let anorm = 0;
  for (let i = 0; i < n; i++) anorm = Math.max(anorm, Math.abs(d[i]) + (i < n - 1 ? Math.abs(e[i]) : 0) + (i > 0 ? Math.abs(e[i - 1]) : 0));
  const floor = 1e-3 * 2.220446049250313e-16 * anorm;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) + dd === dd || Math.abs(e[m]) <= floor) break;
      }
      if (m === l) break;
      if (++iter > 200) throw new Error(`tridiagonal QL did not converge (index ${l})`);
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = pythag(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let pp = 0;
      let split = false;
      for (let i = m - 1; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = pythag(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= pp;
          e[m] = 0;
          split = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - pp;
        r = (d[i] - g) * s + 2 * c * b;
        pp = s * r;
        d[i + 1] = g + pp;
        g = c * r - b;
        if (qt !== null) {
          const ri = i * n;
          const rj = (i + 1) * n;
          for (let k2 = 0; k2 < n; k2++) {
            const zi = qt[ri + k2];
            const zj = qt[rj + k2];
            qt[rj + k2] = s * zi + c * zj;
            qt[ri + k2] = c * zi - s * zj;
          }
        }
      }
      if (split) continue;
      d[l] -= pp;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/**
 * Householder bidiagonalisation (Golub & Van Loan Alg. 5.4.2) of an m x n matrix with m >= n:
 * U^T A V = B, B upper bidiagonal with diagonal `d` (n) and superdiagonal `e` (n - 1).
 */
export function bidiagonalize(input: Float64Array, m: number, n: number): { d: Float64Array; e: Float64Array } {
  if (m < n) throw new Error(`bidiagonalize: needs rows >= cols, got ${m} x ${n}`);
  if (input.length !== m * n) throw new Error(`bidiagonalize: expected ${m * n} values, got ${input.length}`);
  const a = Float64Array.from(input);
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(n - 1, 0));
  const v = new Float64Array(Math.max(m, n));
  const w = new Float64Array(Math.max(m, n));
  for (let j = 0; j < n; j++) {
    // Left reflector: zero A[j+1.., j].
    let norm2 = 0;
    for (let i = j; i < m; i++) norm2 += a[i * n + j] * a[i * n + j];
    const x0 = a[j * n + j];
    if (norm2 > x0 * x0) {
      const norm = Math.sqrt(norm2);
      const alpha = x0 > 0 ? -norm : norm;
      const beta = 1 / (norm2 - x0 * alpha); // 2 / (v.v)
      v[j] = x0 - alpha;
      for (let i = j + 1; i < m; i++) v[i] = a[i * n + j];
      // w = v^T A[j.., j+1..] (row-wise accumulation), then A -= beta v w^T.
      w.fill(0, j + 1, n);
      for (let i = j; i < m; i++) {
        const vi = v[i];
        const r = i * n;
        for (let c = j + 1; c < n; c++) w[c] += vi * a[r + c];
      }
      for (let i = j; i < m; i++) {
        const f = beta * v[i];
        const r = i * n;
        for (let c = j + 1; c < n; c++) a[r + c] -= f * w[c];
      }
      d[j] = alpha;
    } else {
      d[j] = x0;
    }
    if (j >= n - 1) break;
    // Right reflector: zero A[j, j+2..].
    const rj = j * n;
    let rn2 = 0;
    for (let c = j + 1; c < n; c++) rn2 += a[rj + c] * a[rj + c];
    const y0 = a[rj + j + 1];
    if (j < n - 2 && rn2 > y0 * y0) {
      const norm = Math.sqrt(rn2);
      const alpha = y0 > 0 ? -norm : norm;
      const beta = 1 / (rn2 - y0 * alpha);
      v[j + 1] = y0 - alpha;
      for (let c = j + 2; c < n; c++) v[c] = a[rj + c];
      for (let i = j + 1; i < m; i++) {
        const r = i * n;
        let t = 0;
        for (let c = j + 1; c < n; c++) t += a[r + c] * v[c];
        t *= beta;
        for (let c = j + 1; c < n; c++) a[r + c] -= t * v[c];
      }
      e[j] = alpha;
    } else {
      e[j] = y0;
    }
  }
  return { d, e };
}

/**
 * Singular values of a rows x cols matrix (descending), from its bidiagonal form B via the
 * eigenvalues +-sigma of the 2n x 2n Golub-Kahan tridiagonal [[0, B^T], [B, 0]] (zero diagonal,
 * off-diagonal d0, e0, d1, e1, ...). No squaring: absolute accuracy about eps ||A|| for every
 * singular value, including the ones near zero.
 */
export function singularValues(a: Float64Array, rows: number, cols: number): Float64Array {
  let m = rows;
  let n = cols;
  let x = a;
  if (m < n) {
    x = transpose(a, rows, cols);
    m = cols;
    n = rows;
  }
  if (n === 0) return new Float64Array(0);
  const { d, e } = bidiagonalize(x, m, n);
  const size = 2 * n;
  const td = new Float64Array(size);
  const te = new Float64Array(size);
  for (let i = 0; i < n; i++) {
    te[2 * i] = d[i];
    if (i < n - 1) te[2 * i + 1] = e[i];
  }
  tridiagonalQL(td, te, null, size);
  const ev = Array.from(td).sort((p, q) => q - p);
  // Eigenvalues pair as +-sigma: take the n largest, clamped at 0 (noise on zero singular values).
  return Float64Array.from(ev.slice(0, n), (v) => Math.max(v, 0));
}

function sortEigen(d: Float64Array, vt: Float64Array | null, n: number): EigenResult {
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  const values = new Float64Array(n);
  let vectors: Float64Array | null = null;
  if (vt !== null) vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src];
    if (vectors !== null && vt !== null) vectors.set(vt.subarray(src * n, src * n + n), dst * n);
  });
  return { values, vectors };
}

/** Cyclic Jacobi eigen-decomposition of a symmetric matrix; O(n^3) per sweep. */
export function jacobiEigen(input: Float64Array, n: number, maxSweeps = 100): EigenResult {
  checkSquare(input, n, 'jacobiEigen');
  const a = Float64Array.from(input);
  const vt = new Float64Array(n * n); // row i = eigenvector i
  for (let i = 0; i < n; i++) vt[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    if (off <= 1e-32 * scale || off === 0) return sortEigen(diag(a, n), vt, n);
    for (let pI = 0; pI < n - 1; pI++) {
      for (let q = pI + 1; q < n; q++) {
        const apq = a[pI * n + q];
        if (apq === 0) continue;
        const theta = (a[q * n + q] - a[pI * n + pI]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A <- J^T A J with J the rotation in the (p, q) plane.
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + pI];
          const akq = a[k * n + q];
          a[k * n + pI] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[pI * n + k];
          const aqk = a[q * n + k];
          a[pI * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vp = vt[pI * n + k];
          const vq = vt[q * n + k];
          vt[pI * n + k] = c * vp - s * vq;
          vt[q * n + k] = s * vp + c * vq;
        }
      }
    }
  }
  throw new Error(`jacobiEigen: no convergence in ${maxSweeps} sweeps`);
}

function diag(a: Float64Array, n: number): Float64Array {
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  return d;
}

export interface CholeskyResult {
  /** Upper-triangular U (n x n, row-major) with U^T U = S. */
  u: Float64Array;
  /** min_j U[j][j]^2 / max_j S[j][j]: a cheap conditioning indicator (0 when it failed). */
  pivotRatio: number;
}

/** Cholesky factor S = U^T U, or null when S is not (numerically) positive definite. */
export function choleskyUpper(s: Float64Array, n: number): CholeskyResult | null {
  // Row-oriented lower factor L (L L^T = S): dot products run over contiguous row prefixes.
  const l = new Float64Array(n * n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, s[i * n + i]);
  let minPivot = Infinity;
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let sum = s[ri + j];
      for (let k = 0; k < j; k++) sum -= l[ri + k] * l[rj + k];
      if (i === j) {
        if (!(sum > 0)) return null;
        l[ri + i] = Math.sqrt(sum);
        minPivot = Math.min(minPivot, sum);
      } else {
        l[ri + j] = sum / l[rj + j];
      }
    }
  }
  return { u: transpose(l, n, n), pivotRatio: maxDiag > 0 ? minPivot / maxDiag : 0 };
}

/**
 * R factor (min(rows, cols) x cols, row-major, upper trapezoidal) of a Householder QR of the
 * rows x cols matrix P, so that R^T R = P^T P to rounding (signs of R's rows are arbitrary).
 */
export function householderR(pm: Float64Array, rows: number, cols: number): Float64Array {
  const colMajor = transpose(pm, rows, cols); // column c at [c * rows, (c + 1) * rows)
  const kmax = Math.min(rows, cols);
  const r = new Float64Array(kmax * cols);
  const v = new Float64Array(rows);
  for (let j = 0; j < kmax; j++) {
    const cj = j * rows;
    let norm2 = 0;
    for (let i = j; i < rows; i++) norm2 += colMajor[cj + i] * colMajor[cj + i];
    const x0 = colMajor[cj + j];
    const norm = Math.sqrt(norm2);
    const alpha = x0 > 0 ? -norm : norm;
    const denom = norm2 - x0 * alpha; // (v.v) / 2
    if (denom > 0) {
      v[j] = x0 - alpha;
      for (let i = j + 1; i < rows; i++) v[i] = colMajor[cj + i];
      for (let c = j + 1; c < cols; c++) {
        const cc = c * rows;
        let t = 0;
        for (let i = j; i < rows; i++) t += v[i] * colMajor[cc + i];
        t /= denom;
        for (let i = j; i < rows; i++) colMajor[cc + i] -= t * v[i];
      }
      r[j * cols + j] = alpha;
    } else {
      r[j * cols + j] = x0;
    }
    for (let c = j + 1; c < cols; c++) r[j * cols + c] = colMajor[c * rows + j];
  }
  return r;
}
