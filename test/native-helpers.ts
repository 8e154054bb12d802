// Shared helpers for the libtorch backend tests: the backend must be built (CI's set-up builds it);
// a missing addon fails these tests loudly with the build's reason.
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, initBackend, nativeMemory } from '../lib/backend';

/** Initialises the libtorch backend (throws, naming native/build/REASON, when it is not built). */
export async function setupNative(): Promise<void> {
  await initBackend({ prefer: 'native', quiet: true });
  if (tf.getBackend() !== NATIVE_BACKEND) throw new Error(`expected backend ${NATIVE_BACKEND}, got ${tf.getBackend()}`);
}

/** tfjs tensor count, backend data ids and native bytes/handles, for leak assertions. */
export function nativeSnapshot(): { tensors: number; dataIds: number; bytes: number; handles: number } {
  const m = nativeMemory();
  return { tensors: tf.memory().numTensors, dataIds: tf.engine().backend.numDataIds(), bytes: m.bytes, handles: m.handles };
}

export interface Outputs {
  values: Float64Array[];
  shapes: string[];
  dtypes: string[];
}

/** Runs `fn` on `backend` and returns its outputs' values, shapes and dtypes; restores the backend. */
export async function outputsOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<Outputs> {
  const prev = tf.getBackend();
  await tf.setBackend(backend);
  try {
    const out = tf.tidy(() => {
      const r = fn();
      return Array.isArray(r) ? r : [r];
    });
    const res: Outputs = {
      values: out.map((t) => Float64Array.from(t.dataSync() as ArrayLike<number>)),
      shapes: out.map((t) => t.shape.join('x')),
      dtypes: out.map((t) => t.dtype),
    };
    tf.dispose(out);
    return res;
  } finally {
    await tf.setBackend(prev);
  }
}

/** Worst |a - b| / max(|b|_max, 1): NaN/Inf positions must agree. */
export function worstDiff(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let m = 1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return Infinity;
      continue;
    }
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      if (x !== y) return Infinity;
      continue;
    }
    d = Math.max(d, Math.abs(x - y));
    m = Math.max(m, Math.abs(y));
  }
  return d / m;
}

/** Compares two runs output by output; returns a description of the first mismatch or ''. */
export function compareOutputs(a: Outputs, b: Outputs, tol: number): string {
  if (a.values.length !== b.values.length) return `${a.values.length} outputs vs ${b.values.length}`;
  for (let i = 0; i < a.values.length; i++) {
    if (a.shapes[i] !== b.shapes[i]) return `output ${i}: shape ${a.shapes[i]} vs ${b.shapes[i]}`;
    if (a.dtypes[i] !== b.dtypes[i]) return `output ${i}: dtype ${a.dtypes[i]} vs ${b.dtypes[i]}`;
    const e = worstDiff(a.values[i], b.values[i]);
    if (!(e <= tol)) return `output ${i}: relative difference ${e} > ${tol}`;
  }
  return '';
}

/** Collects the names of kernels run on the libtorch backend while `fn` runs. */
export async function kernelsRun<T>(fn: () => Promise<T>, into: Set<string>): Promise<T> {
  const eng = tf.engine() as unknown as { runKernel: (n: string, i: tf.NamedTensorMap, a: tf.NamedAttrMap) => tf.Tensor | tf.Tensor[] };
  const orig = eng.runKernel;
  eng.runKernel = function (n, i, a) {
    if (tf.getBackend() === NATIVE_BACKEND) into.add(n);
    return orig.call(this, n, i, a);
  };
  try {
    return await fn();
  } finally {
    eng.runKernel = orig;
  }
}
