// Low-level access to the tfjs wasm backend for the replacement kernels: heap buffers as TensorInfo,
// zero-copy views, and direct calls into the backend's XNNPACK-based C++ kernels.
// Everything here works on TensorInfo (not engine Tensors): intermediates are freed with `free`.
import * as tf from '@tensorflow/tfjs';

/** The parts of the Emscripten module of @tensorflow/tfjs-backend-wasm used here. */
export interface WasmModule {
  cwrap(name: string, ret: null, args: string[]): (...args: (number | boolean | Uint8Array)[]) => void;
  HEAPF32: Float32Array;
  HEAPU8: Uint8Array;
  /** Present in the threaded build (shared memory). */
  wasmMemory?: { buffer: ArrayBufferLike };
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

interface TensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

/** The parts of BackendWasm used here (typed locally: the package's types reach into Emscripten's). */
export interface WasmBackend {
  wasm: WasmModule;
  dataIdNextNumber: number;
  dataIdMap: {
    get(dataId: object): TensorData;
    set(dataId: object, d: TensorData): void;
    has(dataId: object): boolean;
    delete(dataId: object): boolean;
  };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
  numDataIds(): number;
}

export function asWasm(backend: unknown): WasmBackend {
  const b = backend as WasmBackend;
  if (b === null || typeof b !== 'object' || b.wasm === undefined || b.dataIdMap === undefined) {
    throw new Error('lvdm wasm kernels: expected the tfjs wasm backend');
  }
  return b;
}

/**
 * Float32 view of the whole wasm heap. Read it afresh after any allocation: the heap may have
 * grown (with shared memory in the threaded build the module's cached view can lag behind).
 */
export function heapF32(b: WasmBackend): Float32Array {
  const mem = b.wasm.wasmMemory;
  if (mem !== undefined && b.wasm.HEAPF32.buffer !== mem.buffer) return new Float32Array(mem.buffer);
  return b.wasm.HEAPF32;
}

export function heapU8(b: WasmBackend): Uint8Array {
  const mem = b.wasm.wasmMemory;
  if (mem !== undefined && b.wasm.HEAPU8.buffer !== mem.buffer) return new Uint8Array(mem.buffer);
  return b.wasm.HEAPU8;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Uninitialised float32 buffer of `shape` on the wasm heap. */
export function alloc(b: WasmBackend, shape: number[], dtype: tf.DataType = 'float32'): tf.TensorInfo {
  return b.makeOutput(shape, dtype);
}

/** Zero-filled float32 buffer. */
export function zeros(b: WasmBackend, shape: number[]): tf.TensorInfo {
  const t = b.makeOutput(shape, 'float32');
  const off = offsetOf(b, t);
  heapF32(b).fill(0, off, off + sizeOf(shape));
  return t;
}

/** Releases a buffer created here (or returned by a kernel). Views must use `releaseView`. */
export function free(b: WasmBackend, t: tf.TensorInfo): void {
  b.disposeData(t.dataId);
}

/** Same buffer, different shape (no refcount change: the alias replaces the original handle). */
export function alias(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  if (sizeOf(shape) !== sizeOf(t.shape)) throw new Error(`alias: cannot view [${t.shape}] as [${shape}]`);
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** Float32 element offset of a tensor in HEAPF32 (read HEAPF32 afresh after any allocation). */
export function offsetOf(b: WasmBackend, t: tf.TensorInfo): number {
  const off = b.dataIdMap.get(t.dataId).memoryOffset;
  if (off % 4 !== 0) throw new Error('lvdm wasm kernels: misaligned float32 buffer');
  return off / 4;
}

export function idOf(b: WasmBackend, t: tf.TensorInfo): number {
  return b.dataIdMap.get(t.dataId).id;
}

/**
 * A tensor aliasing `count(shape)` float32 elements of `base` starting at element `start`, without
 * copying. Release with `releaseView` (never `free`: the memory belongs to `base`).
 */
export function view(b: WasmBackend, base: tf.TensorInfo, start: number, shape: number[]): tf.TensorInfo {
  const d = b.dataIdMap.get(base.dataId);
  const n = sizeOf(shape);
  if (start < 0 || start + n > sizeOf(d.shape)) throw new Error('view: out of range');
  const id = b.dataIdNextNumber++;
  const dataId = { id };
  const memoryOffset = d.memoryOffset + start * 4;
  b.dataIdMap.set(dataId, { id, memoryOffset, shape, dtype: 'float32', refCount: 1 });
  b.wasm.tfjs.registerTensor(id, n, memoryOffset);
  return { dataId, shape, dtype: 'float32' };
}

export function releaseView(b: WasmBackend, v: tf.TensorInfo): void {
  const d = b.dataIdMap.get(v.dataId);
  b.wasm.tfjs.disposeData(d.id);
  b.dataIdMap.delete(v.dataId);
}

// ---- direct C++ kernels ---------------------------------------------------------------------

interface Natives {
  conv2d: (...a: (number | boolean | Uint8Array)[]) => void;
  batchMatMul: (...a: (number | boolean | Uint8Array)[]) => void;
  transpose: (...a: (number | boolean | Uint8Array)[]) => void;
}

const nativeCache = new WeakMap<WasmModule, Natives>();

function natives(b: WasmBackend): Natives {
  let n = nativeCache.get(b.wasm);
  if (n === undefined) {
    const num = (k: number) => new Array<string>(k).fill('number');
    n = {
      conv2d: b.wasm.cwrap('Conv2D', null, num(19)),
      batchMatMul: b.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']),
      transpose: b.wasm.cwrap('Transpose', null, ['number', 'array', 'number', 'number', 'number', 'array', 'number']),
    };
    nativeCache.set(b.wasm, n);
  }
  return n;
}

const bytes = (a: number[]) => new Uint8Array(new Int32Array(a).buffer);

export interface Conv2DParams {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** Explicit zero padding top, bottom, left, right. */
  pad: [number, number, number, number];
}

export function conv2dOutSize(x: readonly number[], p: Conv2DParams): [number, number] {
  const ho = Math.floor((x[1] + p.pad[0] + p.pad[1] - (p.kh - 1) * p.dh - 1) / p.sh) + 1;
  const wo = Math.floor((x[2] + p.pad[2] + p.pad[3] - (p.kw - 1) * p.dw - 1) / p.sw) + 1;
  return [ho, wo];
}

/**
 * XNNPACK conv2d (NHWC, filter [kh, kw, ci, co]) writing into `out` (a buffer or a view of shape
 * [n, ho, wo, co]).
 */
export function conv2dInto(b: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, p: Conv2DParams, out: tf.TensorInfo): void {
  const [n, h, w, ci] = x.shape;
  const co = filter.shape[3];
  if (filter.shape[2] !== ci || filter.shape[0] !== p.kh || filter.shape[1] !== p.kw) {
    throw new Error(`conv2d: filter [${filter.shape}] does not match input [${x.shape}]`);
  }
  const [ho, wo] = conv2dOutSize(x.shape, p);
  if (out.shape[0] !== n || out.shape[1] !== ho || out.shape[2] !== wo || out.shape[3] !== co) {
    throw new Error(`conv2d: output [${out.shape}] expected [${[n, ho, wo, co]}]`);
  }
  const [pt, pb, pl, pr] = p.pad;
  natives(b).conv2d(idOf(b, x), n, h, w, idOf(b, filter), p.kh, p.kw, pt, pr, pb, pl, 0, p.dh, p.dw, p.sh, p.sw, ci, co, idOf(b, out));
}

export function conv2d(b: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, p: Conv2DParams): tf.TensorInfo {
  const [ho, wo] = conv2dOutSize(x.shape, p);
  const out = alloc(b, [x.shape[0], ho, wo, filter.shape[3]]);
  conv2dInto(b, x, filter, p, out);
  return out;
}

/** out[m, n] = a[m, k] * w[k, n] through XNNPACK (single batch, no transposes: the fast path). */
export function matmulInto(b: WasmBackend, a: tf.TensorInfo, w: tf.TensorInfo, m: number, k: number, n: number, out: tf.TensorInfo): void {
  natives(b).batchMatMul(idOf(b, a), bytes([1, m, k]), 3, idOf(b, w), bytes([1, k, n]), 3, false, false, idOf(b, out));
}

/** Stock C++ transpose (fast for rank <= 4, and rank 5 with perm[0] = 0). */
export function nativeTransposeInto(b: WasmBackend, x: tf.TensorInfo, shape: number[], perm: number[], out: tf.TensorInfo): void {
  const dt = x.dtype === 'float32' ? 0 : x.dtype === 'int32' ? 1 : x.dtype === 'bool' ? 2 : -1;
  if (dt < 0) throw new Error(`transpose: unsupported dtype ${x.dtype}`);
  natives(b).transpose(idOf(b, x), bytes(shape), shape.length, dt, idOf(b, out), bytes(perm), perm.length);
}
