// lib/nn/rng.ts: the seeded generator behind every random draw (init, data, noise, masks).
// Checks the xoshiro128** core against an independent BigInt implementation, determinism,
// checkpoint round trips, fork independence and the distributions of the derived samplers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, RngState } from '../lib/nn/rng';

/** Independent xoshiro128** (BigInt arithmetic, masked to 32 bits). */
function refXoshiro(state: RngState): () => number {
  const M = 0xffffffffn;
  const s = state.map((v) => BigInt(v >>> 0));
  const rotl = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M;
  return () => {
    const result = (rotl((s[1] * 5n) & M, 7n) * 9n) & M;
    const t = (s[1] << 9n) & M;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
    return Number(result);
  };
}

function draws(r: Rng, n: number): number[] {
  return Array.from({ length: n }, () => r.uniform());
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

test('nextU32 is xoshiro128** (hand-computed first values, then an independent BigInt reference)', () => {
  const r = Rng.fromState([1, 2, 3, 4]);
  // From the definition by hand: rotl(2*5, 7)*9 = 11520; then s1 = 0 -> 0; then rotl(1029*5, 7)*9.
  assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32()], [11520, 0, 5927040]);
  for (const seed of [0, 1, 42, 123456789, 2 ** 32 - 1]) {
    const a = new Rng(seed);
    const ref = refXoshiro(a.state());
    for (let i = 0; i < 2000; i++) assert.equal(a.nextU32(), ref(), `seed ${seed}, draw ${i}`);
  }
});

test('same seed gives the same stream; different seeds (incl. negative and >= 2^32) differ', () => {
  assert.deepEqual(draws(new Rng(7), 50), draws(new Rng(7), 50));
  const seeds = [...Array.from({ length: 200 }, (_, i) => i - 100), 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 3, -(2 ** 32)];
  const firsts = new Map<string, number>();
  for (const seed of seeds) {
    const r = new Rng(seed);
    const key = [r.nextU32(), r.nextU32(), r.nextU32()].join(',');
    const prev = firsts.get(key);
    assert.equal(prev, undefined, `seeds ${prev} and ${seed} produce the same stream`);
    firsts.set(key, seed);
  }
  assert.throws(() => new Rng(NaN), /finite/);
  assert.throws(() => new Rng(Infinity), /finite/);
});

test('state() / fromState() continue the identical stream, also through JSON', () => {
  const r = new Rng(2024);
  draws(r, 17);
  r.normalArray(5);
  const s = r.state();
  const expected = [...draws(r, 100), ...Array.from(r.normalArray(9)), r.int(0, 1000), ...r.permutation(10)];
  const s2 = JSON.parse(JSON.stringify(s)) as RngState;
  for (const q of [Rng.fromState(s), Rng.fromState(s2)]) {
    const got = [...draws(q, 100), ...Array.from(q.normalArray(9)), q.int(0, 1000), ...q.permutation(10)];
    assert.deepEqual(got, expected);
  }
  // state() is a copy: mutating it does not touch the generator.
  const r3 = new Rng(5);
  const st = r3.state();
  const before = r3.state();
  st[0] ^= 0xffff;
  assert.deepEqual(r3.state(), before);
  // setState replaces the stream.
  const r4 = new Rng(99);
  r4.setState(before);
  assert.deepEqual(draws(r4, 10), draws(Rng.fromState(before), 10));
  assert.throws(() => r4.setState([1, 2, 3] as unknown as RngState), /4 uint32/);
});

test('fork(tag): reproducible, tag- and state-dependent, uncorrelated with parent and siblings', () => {
  const a1 = new Rng(3).fork('data');
  const a2 = new Rng(3).fork('data');
  assert.deepEqual(draws(a1, 20), draws(a2, 20));

  const parent = new Rng(3);
  const fa = parent.fork('a');
  const fb = parent.fork('b');
  const n = 20000;
  const pa = draws(parent, n);
  const xa = draws(fa, n);
  const xb = draws(fb, n);
  assert.notDeepEqual(xa.slice(0, 5), xb.slice(0, 5));
  assert.notDeepEqual(xa.slice(0, 5), pa.slice(0, 5));
  // Pearson correlation of independent uniforms: sd ~ 1/sqrt(n) = 0.007.
  for (const [name, u, v] of [['a/b', xa, xb], ['a/parent', xa, pa], ['b/parent', xb, pa]] as const) {
    const c = correlation(u, v);
    assert.ok(Math.abs(c) < 0.04, `${name} correlation ${c}`);
  }
  // A lagged correlation too (a fork must not be the parent's stream shifted by a few draws).
  for (let lag = 1; lag <= 4; lag++) {
    const c = correlation(xa.slice(lag), pa.slice(0, n - lag));
    assert.ok(Math.abs(c) < 0.04, `lag ${lag} correlation ${c}`);
  }
  // Forking at a different parent state gives a different stream.
  const later = new Rng(3);
  later.nextU32();
  assert.notDeepEqual(draws(later.fork('a'), 5), draws(new Rng(3).fork('a'), 5));
  // Same tag under different seeds differ.
  assert.notDeepEqual(draws(new Rng(4).fork('data'), 5), draws(new Rng(3).fork('data'), 5));
});

test('uniform() in [0, 1) with mean 1/2 and variance 1/12; uniformArray respects [lo, hi)', () => {
  const r = new Rng(11);
  const n = 100000;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    s += u;
    s2 += u * u;
  }
  const mean = s / n;
  const v = s2 / n - mean * mean;
  assert.ok(Math.abs(mean - 0.5) < 0.005, `mean ${mean}`); // sd 0.0009
  assert.ok(Math.abs(v - 1 / 12) < 0.002, `variance ${v}`);
  const a = r.uniformArray(20000, -3, 5);
  assert.equal(a.length, 20000);
  let m = 0;
  for (const x of a) {
    assert.ok(x >= -3 && x < 5, `${x} outside [-3, 5)`);
    m += x;
  }
  assert.ok(Math.abs(m / a.length - 1) < 0.1, `uniformArray mean ${m / a.length}`);
});

test('int(lo, hi) is inclusive, stays in range and is uniform (chi-square)', () => {
  const r = new Rng(5);
  const counts = new Array<number>(10).fill(0);
  const n = 100000;
  for (let i = 0; i < n; i++) {
    const k = r.int(0, 9);
    assert.ok(Number.isInteger(k) && k >= 0 && k <= 9, `int(0, 9) gave ${k}`);
    counts[k]++;
  }
  const e = n / 10;
  const chi2 = counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
  // df = 9: P(chi2 > 40) < 1e-5. A generator missing an endpoint would give chi2 ~ 1e4.
  assert.ok(chi2 < 40, `chi-square ${chi2}, counts ${counts}`);

  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const k = r.int(-3, 3);
    assert.ok(k >= -3 && k <= 3);
    seen.add(k);
  }
  assert.deepEqual([...seen].sort((x, y) => x - y), [-3, -2, -1, 0, 1, 2, 3]);
  for (let i = 0; i < 20; i++) assert.equal(r.int(4, 4), 4);
  assert.throws(() => r.int(3, 2), /empty range/);
  // Large ranges reach the top too.
  let maxSeen = 0;
  for (let i = 0; i < 5000; i++) maxSeen = Math.max(maxSeen, r.int(0, 2 ** 40));
  assert.ok(maxSeen > 0.99 * 2 ** 40);
});

function moments(a: ArrayLike<number>): { mean: number; variance: number; kurtosis: number; within1: number } {
  const n = a.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += a[i];
  m /= n;
  let m2 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = a[i] - m;
    m2 += d * d;
    m4 += d ** 4;
  }
  m2 /= n;
  m4 /= n;
  let within = 0;
  const sd = Math.sqrt(m2);
  for (let i = 0; i < n; i++) if (Math.abs(a[i] - m) < sd) within++;
  return { mean: m, variance: m2, kurtosis: m4 / (m2 * m2), within1: within / n };
}

test('normalArray(n, mean, std): moments of N(mean, std^2), odd n, uncorrelated pairs', () => {
  const r = new Rng(13);
  const n = 100001; // odd: the last value comes from a half-used pair
  const a = r.normalArray(n, 2, 3);
  assert.equal(a.length, n);
  assert.ok(a.every(Number.isFinite));
  assert.notEqual(a[n - 1], 0);
  const st = moments(a);
  // sd of the mean 3/sqrt(n) = 0.0095; sd of the variance 9*sqrt(2/n) = 0.04.
  assert.ok(Math.abs(st.mean - 2) < 0.05, `mean ${st.mean}`);
  assert.ok(Math.abs(st.variance - 9) < 0.25, `variance ${st.variance}`);
  assert.ok(Math.abs(st.kurtosis - 3) < 0.1, `kurtosis ${st.kurtosis}`); // uniform would be 1.8
  assert.ok(Math.abs(st.within1 - 0.6827) < 0.01, `P(|x - mu| < sd) = ${st.within1}`);
  // The cos and sin halves of each Box-Muller pair are uncorrelated.
  const ev = new Float64Array((n - 1) / 2);
  const od = new Float64Array((n - 1) / 2);
  for (let i = 0; i < ev.length; i++) {
    ev[i] = a[2 * i];
    od[i] = a[2 * i + 1];
  }
  assert.ok(Math.abs(correlation(ev, od)) < 0.03);
  // Defaults are N(0, 1).
  const b = moments(new Rng(1).normalArray(50000));
  assert.ok(Math.abs(b.mean) < 0.03 && Math.abs(b.variance - 1) < 0.04, `default moments ${b.mean} ${b.variance}`);
});

test('normal(): standard normal moments', () => {
  const r = new Rng(17);
  const a = Float64Array.from({ length: 50000 }, () => r.normal());
  const st = moments(a);
  assert.ok(Math.abs(st.mean) < 0.03, `mean ${st.mean}`);
  assert.ok(Math.abs(st.variance - 1) < 0.04, `variance ${st.variance}`);
  assert.ok(Math.abs(st.kurtosis - 3) < 0.15, `kurtosis ${st.kurtosis}`);
});

test('permutation(n) is a permutation, reproducible, and uniform over orders (n = 3)', () => {
  const r = new Rng(21);
  for (const n of [0, 1, 2, 5, 100]) {
    const p = r.permutation(n);
    assert.equal(p.length, n);
    assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
  }
  assert.deepEqual(new Rng(8).permutation(50), new Rng(8).permutation(50));
  assert.notDeepEqual(new Rng(8).permutation(50), new Rng(9).permutation(50));
  const counts = new Map<string, number>();
  const trials = 60000;
  for (let i = 0; i < trials; i++) {
    const k = r.permutation(3).join('');
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  assert.equal(counts.size, 6);
  const e = trials / 6;
  const chi2 = [...counts.values()].reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
  assert.ok(chi2 < 30, `chi-square ${chi2} over ${JSON.stringify([...counts])}`); // df = 5
  // Every element lands in every position (n = 10) roughly equally often.
  const pos = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  for (let i = 0; i < 10000; i++) r.permutation(10).forEach((v, j) => pos[v][j]++);
  for (const row of pos) for (const c of row) assert.ok(c > 850 && c < 1150, `position count ${c}`);
});

test('choice picks every element and rejects an empty list', () => {
  const r = new Rng(31);
  const items = ['a', 'b', 'c', 'd'] as const;
  const seen = new Set<string>();
  for (let i = 0; i < 400; i++) seen.add(r.choice(items));
  assert.deepEqual([...seen].sort(), ['a', 'b', 'c', 'd']);
  assert.throws(() => r.choice([]), /empty/);
});
