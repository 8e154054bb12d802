/**
 * Feature matrices: N samples x D features, row-major float64. FVD/KVD inputs are the 400-d
 * I3D logits (or another extractor's features) of each clip.
 */
import { NpyArray, int64ToNumbers, readNpy, readNpz } from '../lib/io/npy';

export interface FeatureMatrix {
  /** Number of samples (rows). */
  n: number;
  /** Feature dimension (columns). */
  d: number;
  /** n * d values, row-major. */
  data: Float64Array;
}

/** Wraps or converts (float32 -> float64) row-major data as a FeatureMatrix, checking sizes and finiteness. */
export function featureMatrix(data: ArrayLike<number>, n: number, d: number, source = 'features'): FeatureMatrix {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 1 || d < 1) throw new Error(`${source}: invalid feature shape [${n}, ${d}]`);
  if (data.length !== n * d) throw new Error(`${source}: ${data.length} values do not make a ${n} x ${d} feature matrix`);
  const out = data instanceof Float64Array ? data : Float64Array.from(data);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw new Error(`${source}: non-finite feature value at row ${Math.floor(i / d)}, column ${i % d}`);
  }
  return { n, d, data: out };
}

/** A FeatureMatrix from a 2-D float32/float64 npy array (N x D). */
export function featuresFromNpy(arr: NpyArray, source: string): FeatureMatrix {
  if (arr.shape.length !== 2)
    throw new Error(`${source}: expected a 2-D feature array N x D, got shape [${arr.shape.join(', ')}] (${arr.dtype})`);
  if (arr.dtype !== 'float32' && arr.dtype !== 'float64')
    throw new Error(`${source}: expected float32 or float64 features, got ${arr.dtype}`);
  const [n, d] = arr.shape;
  const data = arr.data instanceof BigInt64Array ? int64ToNumbers(arr.data, source) : arr.data;
  return featureMatrix(data, n, d, source);
}

/**
 * Reads features from a .npy (N x D) or .npz file. In a .npz, `key` picks the array; without it
 * the archive must hold exactly one 2-D float array (or one named 'features').
 */
export function readFeatures(file: string, key?: string): FeatureMatrix {
  const lower = file.toLowerCase();
  if (lower.endsWith('.npy')) return featuresFromNpy(readNpy(file), file);
  if (!lower.endsWith('.npz')) throw new Error(`${file}: feature files must be .npy or .npz`);
  const arrays = readNpz(file);
  if (key !== undefined) {
    const a = arrays.get(key);
    if (!a) throw new Error(`${file}: no array '${key}' (has: ${[...arrays.keys()].join(', ')})`);
    return featuresFromNpy(a, `${file}:${key}`);
  }
  if (arrays.has('features')) return featuresFromNpy(arrays.get('features')!, `${file}:features`);
  const cands = [...arrays.entries()].filter(([, a]) => a.shape.length === 2 && (a.dtype === 'float32' || a.dtype === 'float64'));
  if (cands.length !== 1)
    throw new Error(`${file}: expected exactly one 2-D float array (or one named 'features'); found ${[...arrays.entries()].map(([k, a]) => `${k} [${a.shape.join(', ')}] ${a.dtype}`).join('; ') || 'none'}`);
  return featuresFromNpy(cands[0][1], `${file}:${cands[0][0]}`);
}

/** Rows `idx` of a feature matrix, in that order. */
export function selectRows(x: FeatureMatrix, idx: readonly number[]): FeatureMatrix {
  const out = new Float64Array(idx.length * x.d);
  idx.forEach((r, k) => {
    if (!Number.isInteger(r) || r < 0 || r >= x.n) throw new Error(`selectRows: row ${r} out of range [0, ${x.n})`);
    out.set(x.data.subarray(r * x.d, (r + 1) * x.d), k * x.d);
  });
  return { n: idx.length, d: x.d, data: out };
}

/** Column means (float64, two-pass friendly). */
export function columnMeans(x: FeatureMatrix): Float64Array {
  const mu = new Float64Array(x.d);
  for (let i = 0; i < x.n; i++) {
    const r = i * x.d;
    for (let j = 0; j < x.d; j++) mu[j] += x.data[r + j];
  }
  for (let j = 0; j < x.d; j++) mu[j] /= x.n;
  // Second pass: add back the mean of the residuals (corrects rounding of the first sum).
  const corr = new Float64Array(x.d);
  for (let i = 0; i < x.n; i++) {
    const r = i * x.d;
    for (let j = 0; j < x.d; j++) corr[j] += x.data[r + j] - mu[j];
  }
  for (let j = 0; j < x.d; j++) mu[j] += corr[j] / x.n;
  return mu;
}
