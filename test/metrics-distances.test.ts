import { test } from 'node:test';
import assert from 'node:assert/strict';
import { featureMatrix, readFeatures, selectRows } from '../metrics/features';
import { frechetDistance, frechetDistanceFromStats, meanCov, nuclearNorm } from '../metrics/frechet';
import { kvd, kvdSubsetIndices, kvdSubsets, polyKernel } from '../metrics/kvd';
import { bidiagonalize, choleskyUpper, gemmNT, householderR, jacobiEigen, singularValues, symmetricEigen, transpose } from '../metrics/linalg';
import { FIXTURES, features, lcg, reference } from './metrics-helpers';
import * as path from 'node:path';

const ref = reference();

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function randomSym(n: number, seed: number): Float64Array {
  const x = lcg(seed, n * (n + 3));
  return gemmNT(x, n, x, n, n + 3, true);
}

test('gemmNT matches a naive product, symmetric mode included, odd sizes', () => {
  for (const [ra, rb, k] of [[1, 1, 1], [5, 3, 7], [9, 6, 600], [260, 7, 3]]) {
    const a = lcg(ra * 10 + k, ra * k);
    const b = lcg(rb * 10 + k + 1, rb * k);
    const c = gemmNT(a, ra, b, rb, k);
    const naive = new Float64Array(ra * rb);
    for (let i = 0; i < ra; i++) for (let j = 0; j < rb; j++) for (let t = 0; t < k; t++) naive[i * rb + j] += a[i * k + t] * b[j * k + t];
    assert.ok(maxAbs(c, naive) < 1e-12, `${ra}x${rb}x${k}`);
    const s = gemmNT(a, ra, a, ra, k, true);
    const sn = gemmNT(a, ra, a, ra, k, false);
    assert.ok(maxAbs(s, sn) < 1e-12);
  }
});

test('symmetricEigen: A = V diag(l) V^T, V orthonormal, agrees with Jacobi and with numpy eigvalsh', () => {
  for (const n of [1, 2, 3, 17, 60]) {
    const a = randomSym(n, 100 + n);
    const { values, vectors } = symmetricEigen(a, n);
    const v = vectors!;
    let recon = 0;
    let orth = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        let o = 0;
        for (let k = 0; k < n; k++) {
          s += v[k * n + i] * values[k] * v[k * n + j];
          o += v[i * n + k] * v[j * n + k];
        }
        recon = Math.max(recon, Math.abs(s - a[i * n + j]));
        orth = Math.max(orth, Math.abs(o - (i === j ? 1 : 0)));
      }
    const scale = Math.max(...Array.from(values, Math.abs));
    assert.ok(recon < 1e-12 * scale * n, `n=${n} reconstruction ${recon}`);
    assert.ok(orth < 1e-12 * n, `n=${n} orthogonality ${orth}`);
    for (let i = 1; i < n; i++) assert.ok(values[i] >= values[i - 1], 'ascending');
    const jac = jacobiEigen(a, n);
    assert.ok(maxAbs(jac.values, values) < 1e-11 * scale, `n=${n} vs Jacobi`);
  }
  // Against numpy.linalg.eigvalsh (fixture).
  const e = ref.eigen;
  const x = features({ seed: e.seed, n: e.n, d: e.d, rank: e.d, shift: 0 });
  const s = gemmNT(transpose(x.data, e.n, e.d), e.d, transpose(x.data, e.n, e.d), e.d, e.n, true);
  const got = symmetricEigen(s, e.d, false).values;
  const scale = Math.max(...e.values.map(Math.abs));
  assert.ok(maxAbs(got, e.values) < 1e-12 * scale, `vs numpy ${maxAbs(got, e.values)}`);
  // Exactly singular and repeated eigenvalues.
  const diag = Float64Array.from([2, 0, 0, 0, 2, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(symmetricEigen(diag, 3).values), [0, 2, 2]);
  assert.throws(() => symmetricEigen(new Float64Array(3), 2), /expected an 2x2 matrix/);
  assert.throws(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 1]), 2), /non-finite entry/);
});

test('choleskyUpper and householderR give U^T U = S and R^T R = P^T P; Cholesky refuses singular matrices', () => {
  const n = 12;
  const p = lcg(5, 30 * n);
  const pt = transpose(p, 30, n);
  const s = gemmNT(pt, n, pt, n, 30, true);
  const { u } = choleskyUpper(s, n)!;
  const ut = transpose(u, n, n);
  assert.ok(maxAbs(gemmNT(ut, n, ut, n, n), s) < 1e-13);
  const r = householderR(p, 30, n);
  const rt = transpose(r, n, n);
  assert.ok(maxAbs(gemmNT(rt, n, rt, n, n), s) < 1e-13);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) assert.equal(r[i * n + j], 0, 'R is upper triangular');
  assert.equal(choleskyUpper(Float64Array.from([1, 1, 1, 1]), 2), null);
});

test('singularValues matches numpy.linalg.svd (full rank and rank 3), in both orientations; bidiagonal form keeps the Frobenius norm', () => {
  for (const c of ref.svd) {
    const x = features(c.x);
    const scale = c.values[0];
    for (const [a, r, k] of [
      [x.data, x.n, x.d],
      [transpose(x.data, x.n, x.d), x.d, x.n],
    ] as const) {
      const sv = singularValues(a, r, k);
      assert.equal(sv.length, c.values.length);
      assert.ok(maxAbs(sv, c.values) < 1e-13 * scale, `seed ${c.x.seed}: ${maxAbs(sv, c.values)}`);
    }
    const { d, e } = bidiagonalize(x.data, x.n, x.d);
    let fb = 0;
    for (const v of [...d, ...e]) fb += v * v;
    let fa = 0;
    for (const v of x.data) fa += v * v;
    assert.ok(Math.abs(fb - fa) < 1e-12 * fa);
  }
  const rank3 = singularValues(features(ref.svd[1].x).data, 25, 15);
  for (let i = 3; i < 15; i++) assert.ok(rank3[i] < 1e-14 * rank3[0], `zero singular value ${i}: ${rank3[i]}`);
  assert.throws(() => bidiagonalize(new Float64Array(6), 2, 3), /needs rows >= cols/);
});

test('nuclearNorm equals the sum of singular values (diagonal, rank-deficient, wide and tall)', () => {
  const d = Float64Array.from([3, 0, 0, 0, -4, 0]); // 2x3, singular values 3, 4
  assert.ok(Math.abs(nuclearNorm(d, 2, 3) - 7) < 1e-14);
  assert.ok(Math.abs(nuclearNorm(transpose(d, 2, 3), 3, 2) - 7) < 1e-14);
  const rank1 = Float64Array.from([1, 2, 3, 2, 4, 6]); // u v^T, sigma = |u| |v|
  assert.ok(Math.abs(nuclearNorm(rank1, 2, 3) - Math.sqrt(5) * Math.sqrt(14)) < 1e-13);
});

for (const c of ref.fd) {
  test(`Frechet distance matches the Python reference: ${c.name}`, () => {
    const x = features(c.x);
    const y = features(c.y);
    for (const conv of ['unbiased', 'biased'] as const) {
      const r = frechetDistance(x, y, { covariance: conv });
      const e = c[conv];
      if (c.name === 'identical') {
        assert.ok(Math.abs(r.fd) < 1e-9, `${conv}: identical sets give ${r.fd}`);
        continue;
      }
      if (c.well_conditioned) {
        assert.ok(Math.abs(r.fd - e.fd) <= 1e-9 * Math.abs(e.fd), `${conv}: ${r.fd} vs ${e.fd}`);
      } else {
        assert.ok(Math.abs(r.fd - e.fd) <= 1e-6, `${conv}: ${r.fd} vs ${e.fd}`);
      }
      assert.ok(Math.abs(r.meanTerm - e.mean_term) <= 1e-9 * Math.max(1, e.mean_term));
      assert.ok(Math.abs(r.traceX - e.trace_x) <= 1e-9 * e.trace_x);
      assert.ok(Math.abs(r.traceY - e.trace_y) <= 1e-9 * e.trace_y);
      assert.ok(Math.abs(r.traceSqrtProduct - e.trace_sqrt) <= 1e-9 * e.trace_sqrt + 1e-7);
    }
  });
}

test('FD paths: n <= d uses the data, rank-deficient n > d falls back to QR, conventions differ by the n/(n-1) scaling', () => {
  const byName = new Map(ref.fd.map((c) => [c.name, c]));
  const rd = byName.get('rank_deficient_n_lt_d')!;
  assert.deepEqual(frechetDistance(features(rd.x), features(rd.y)).factors, ['data', 'data']);
  const dg = byName.get('degenerate_n_gt_d')!;
  assert.deepEqual(frechetDistance(features(dg.x), features(dg.y)).factors, ['qr', 'qr']);
  const wc = byName.get('well_conditioned')!;
  const x = features(wc.x);
  const y = features(wc.y);
  const u = frechetDistance(x, y, { covariance: 'unbiased' });
  const b = frechetDistance(x, y, { covariance: 'biased' });
  assert.deepEqual(u.factors, ['cholesky', 'cholesky']);
  assert.ok(Math.abs(b.traceX - (u.traceX * (x.n - 1)) / x.n) < 1e-12 * u.traceX);
  assert.ok(Math.abs(b.meanTerm - u.meanTerm) < 1e-15);
  // FD is symmetric in its arguments.
  assert.ok(Math.abs(frechetDistance(y, x).fd - u.fd) < 1e-12 * u.fd);
  // From statistics (positive definite): the same value.
  const sx = meanCov(x);
  const sy = meanCov(y);
  assert.ok(Math.abs(frechetDistanceFromStats(sx.mu, sx.cov, sy.mu, sy.cov).fd - u.fd) < 1e-9 * u.fd);
});

test('FD errors: dimension mismatch, too few samples, bad convention, non-finite features', () => {
  const x = features({ seed: 3, n: 10, d: 4, rank: 4, shift: 0 });
  const y = features({ seed: 4, n: 10, d: 5, rank: 5, shift: 0 });
  assert.throws(() => frechetDistance(x, y), /feature dimensions differ \(4 vs 5\)/);
  assert.throws(() => frechetDistance(selectRows(x, [0]), x), /1 sample\(s\) are too few for a unbiased/);
  assert.doesNotThrow(() => frechetDistance(selectRows(x, [0]), x, { covariance: 'biased' }));
  assert.throws(() => frechetDistance(x, x, { covariance: 'weird' as 'biased' }), /'unbiased' or 'biased'/);
  assert.throws(() => featureMatrix([1, NaN], 1, 2, 'f.npy'), /f\.npy: non-finite feature value at row 0, column 1/);
  assert.throws(() => featureMatrix([1, 2, 3], 2, 2, 'g.npy'), /g\.npy: 3 values do not make a 2 x 2/);
});

test('FD of d = 400, n = 2048 (I3D-sized) takes the fast exact path', () => {
  const c = ref.fd.find((q) => q.name === 'large_d400')!;
  // Checked against the reference in the per-case test above; here: the factor path.
  const x = features(c.x);
  const y = features(c.y);
  const r = frechetDistance(selectRows(x, Array.from({ length: 500 }, (_, i) => i)), selectRows(y, Array.from({ length: 450 }, (_, i) => i)));
  assert.deepEqual(r.factors, ['cholesky', 'cholesky']);
});

for (const c of ref.kvd) {
  test(`KVD matches the Python float64 reference: ${c.name}`, () => {
    const v = kvd(features(c.x), features(c.y));
    assert.ok(Math.abs(v - c.kvd) <= 1e-9 * Math.abs(c.kvd), `${v} vs ${c.kvd}`);
  });
}

test('KVD of identical sets follows the unbiased estimator (negative, not zero)', () => {
  const x = features({ seed: 9, n: 40, d: 6, rank: 6, shift: 0.1 });
  const v = kvd(x, x);
  // Direct evaluation of the estimator: 2 (S - tr) / (m (m - 1)) - 2 S / m^2.
  let sAll = 0;
  let tr = 0;
  for (let i = 0; i < x.n; i++)
    for (let j = 0; j < x.n; j++) {
      let g = 0;
      for (let k = 0; k < x.d; k++) g += x.data[i * x.d + k] * x.data[j * x.d + k];
      const kv = polyKernel(g, x.d);
      sAll += kv;
      if (i === j) tr += kv;
    }
  const m = x.n;
  const expect = (2 * (sAll - tr)) / (m * (m - 1)) - (2 * sAll) / (m * m);
  assert.ok(v < 0);
  assert.ok(Math.abs(v - expect) < 1e-12 * Math.abs(expect));
});

test('KID-style subset KVD averages the estimator over the seeded subsets it reports', () => {
  const x = features({ seed: 21, n: 60, d: 8, rank: 8, shift: 0.2 });
  const y = features({ seed: 22, n: 50, d: 8, rank: 8, shift: 0 });
  const r = kvdSubsets(x, y, { subsets: 7, subsetSize: 20, seed: 5 });
  const idx = kvdSubsetIndices(60, 50, 7, 20, 5);
  const manual = idx.map((s) => kvd(selectRows(x, s.x), selectRows(y, s.y)));
  for (let i = 0; i < 7; i++) assert.ok(Math.abs(r.values[i] - manual[i]) < 1e-12 * Math.max(1, Math.abs(manual[i])));
  const mean = manual.reduce((a, b) => a + b, 0) / 7;
  assert.ok(Math.abs(r.mean - mean) < 1e-12);
  for (const s of idx) assert.equal(new Set(s.x).size, 20, 'without replacement');
  assert.deepEqual(kvdSubsets(x, y, { subsets: 7, subsetSize: 20, seed: 5 }).values, r.values, 'seeded');
  assert.notDeepEqual(kvdSubsets(x, y, { subsets: 7, subsetSize: 20, seed: 6 }).values, r.values);
  assert.equal(kvdSubsets(x, y, { subsets: 2, seed: 1 }).subsetSize, 50, 'default size min(m, n, 1000)');
  assert.throws(() => kvdSubsets(x, y, { subsets: 2, subsetSize: 51, seed: 1 }), /subset size 51/);
  assert.throws(() => kvd(selectRows(x, [0]), y), /at least 2 samples per set/);
});

test('readFeatures: .npy float32/float64 and .npz inputs; wrong arrays are clear errors', () => {
  const npy = path.join(FIXTURES, 'npy');
  const f32 = readFeatures(path.join(npy, 'f32.npy'));
  assert.deepEqual([f32.n, f32.d], [5, 3]);
  assert.ok(f32.data instanceof Float64Array);
  const f64 = readFeatures(path.join(npy, 'f64.npy'));
  assert.deepEqual([f64.n, f64.d], [4, 6]);
  assert.deepEqual([readFeatures(path.join(npy, 'stored.npz')).n], [5], "picks the array named 'features'");
  assert.deepEqual(readFeatures(path.join(npy, 'compressed.npz'), 'features').d, 6);
  assert.throws(() => readFeatures(path.join(npy, 'u8_video.npy')), /u8_video\.npy: expected a 2-D feature array N x D, got shape \[2, 3, 4, 5, 3\]/);
  assert.throws(() => readFeatures(path.join(npy, 'i32.npy')), /expected float32 or float64 features, got int32/);
  assert.throws(() => readFeatures(path.join(npy, 'stored.npz'), 'videos'), /stored\.npz:videos: expected a 2-D feature array/);
});
