/**
 * Shared by the metrics tests: the deterministic feature generator of
 * metrics/fixtures/make_fixtures.py (Park-Miller minimal standard generator; integer arithmetic
 * is exact in float64, and the accumulation order matches the script, so the matrices are
 * bit-identical to the ones the Python references were computed on).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FeatureMatrix } from '../metrics/features';

const M = 2147483647;

export function lcg(seed: number, count: number): Float64Array {
  const out = new Float64Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (16807 * s) % M;
    out[i] = s / M - 0.5;
  }
  return out;
}

export interface FeatureSpec {
  seed: number;
  n: number;
  d: number;
  rank: number;
  shift: number;
}

const memo = new Map<string, FeatureMatrix>();

/** X = Z A + shift * m, summed over k in the same order as the Python script (memoised; do not mutate). */
export function features(spec: FeatureSpec): FeatureMatrix {
  const key = `${spec.seed}/${spec.n}/${spec.d}/${spec.rank}/${spec.shift}`;
  const hit = memo.get(key);
  if (hit) return hit;
  const out = generate(spec);
  memo.set(key, out);
  return out;
}

function generate(spec: FeatureSpec): FeatureMatrix {
  const { seed, n, d, rank, shift } = spec;
  const z = lcg(seed, n * rank);
  const a = lcg(seed + 7919, rank * d);
  const m = lcg(seed + 104729, d);
  const x = new Float64Array(n * d);
  for (let k = 0; k < rank; k++) {
    for (let i = 0; i < n; i++) {
      const zik = z[i * rank + k];
      for (let j = 0; j < d; j++) x[i * d + j] += zik * a[k * d + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = x[i * d + j] + shift * m[j];
  return { n, d, data: x };
}

export const FIXTURES = path.join(__dirname, '..', 'metrics', 'fixtures');

export interface FdRef {
  fd: number;
  mean_term: number;
  trace_x: number;
  trace_y: number;
  trace_sqrt: number;
}

export interface Reference {
  fd: { name: string; x: FeatureSpec; y: FeatureSpec; well_conditioned: boolean; unbiased: FdRef; biased: FdRef }[];
  kvd: { name: string; x: FeatureSpec; y: FeatureSpec; kvd: number }[];
  resize: { seed: number; in: [number, number]; out: [number, number]; input: number[]; tf1_legacy: number[]; half_pixel: number[] }[];
  eigen: { seed: number; n: number; d: number; values: number[] };
  svd: { x: FeatureSpec; values: number[] }[];
}

export function reference(): Reference {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference.json'), 'utf8')) as Reference;
}
