// Fast / missing wasm kernels for training (see shared/reference/tfjs-wasm-performance.md).
// Registered for backend 'wasm' by registerWasmKernels (idempotent). Nested work runs directly on
// the backend's buffers (no engine tensors); every intermediate is freed before returning.
import * as tf from '@tensorflow/tfjs';
import { backpropInput3d, conv3dFilterGrad, conv3dForward, filterGradValid, stackFrames } from './conv-core';
import { batchMatMulInfo } from './matmul';
import { avgPool3dForward, maxPool3dForward } from './pool3d';
import { transposeInfo } from './transpose';
import { alias, asWasm, free, sizeOf, zeros } from './wasm-util';

type Inputs = tf.NamedTensorInfoMap;

function input(inputs: Inputs, name: string, kernel: string): tf.TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new Error(`${kernel}: missing input '${name}'`);
  return t;
}

function float32(t: tf.TensorInfo, kernel: string): void {
  if (t.dtype !== 'float32') throw new Error(`${kernel} (lvdm wasm kernel): expected float32, got ${t.dtype}`);
}

function nhwc(format: string | undefined, kernel: string): void {
  if (format !== undefined && format !== 'NHWC' && format !== 'NDHWC' && format !== 'channelsLast') {
    throw new Error(`${kernel} (lvdm wasm kernel): only channels-last data format is supported, got ${format}`);
  }
}

const conv2DBackpropFilter: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = asWasm(backend);
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const x = input(inputs, 'x', 'Conv2DBackpropFilter');
  const dy = input(inputs, 'dy', 'Conv2DBackpropFilter');
  float32(x, 'Conv2DBackpropFilter');
  nhwc(a.dataFormat, 'Conv2DBackpropFilter');
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
  const [N, H, W, Ci] = x.shape;
  const { outHeight: Ho, outWidth: Wo, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  if (sizeOf(x.shape) === 0 || sizeOf(dy.shape) === 0) return zeros(b, a.filterShape.slice());
  if (dy.shape[1] !== Ho || dy.shape[2] !== Wo) throw new Error(`Conv2DBackpropFilter: dy [${dy.shape}] does not match output ${Ho}x${Wo}`);
  const hLen = (Ho - 1) * sh + kh;
  const wLen = (Wo - 1) * sw + kw;
  const { top, left } = info.padInfo;
  const exact = top === 0 && left === 0 && hLen === H && wLen === W;
  const s = exact
    ? x
    : stackFrames(b, alias(x, [N, 1, H, W, Ci]), { start: 0, count: 1, stride: 1, taps: 1, dil: 1 }, { start: -top, len: hLen }, { start: -left, len: wLen });
  const out = filterGradValid(b, s, dy, kh, kw, sh, sw);
  if (!exact) free(b, s);
  return out;
};

const conv2DBackpropInput: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = asWasm(backend);
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const dy = input(inputs, 'dy', 'Conv2DBackpropInput');
  const filter = input(inputs, 'filter', 'Conv2DBackpropInput');
  float32(dy, 'Conv2DBackpropInput');
  nhwc(a.dataFormat, 'Conv2DBackpropInput');
  const info = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
  const [N, H, W, Ci] = a.inputShape;
  const [kh, kw, , Co] = filter.shape;
  const [, Ho, Wo] = dy.shape;
  if (sizeOf(a.inputShape) === 0 || sizeOf(dy.shape) === 0 || sizeOf(filter.shape) === 0) return zeros(b, a.inputShape.slice());
  const dx = backpropInput3d(
    b,
    alias(dy, [N, 1, Ho, Wo, Co]),
    alias(filter, [1, kh, kw, Ci, Co]),
    [N, 1, H, W, Ci],
    [1, info.strideHeight, info.strideWidth],
    [0, info.padInfo.top, info.padInfo.left],
  );
  return alias(dx, [N, H, W, Ci]);
};

function conv3dInfo(xShape: number[], filterShape: number[], strides: [number, number, number] | number, dilations: [number, number, number] | number, pad: 'valid' | 'same') {
  return tf.backend_util.computeConv3DInfo(
    xShape as [number, number, number, number, number],
    filterShape as [number, number, number, number, number],
    strides,
    dilations,
    pad,
  );
}

const conv3D: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = asWasm(backend);
  const a = attrs as unknown as tf.Conv3DAttrs;
  const x = input(inputs, 'x', 'Conv3D');
  const filter = input(inputs, 'filter', 'Conv3D');
  float32(x, 'Conv3D');
  float32(filter, 'Conv3D');
  nhwc(a.dataFormat, 'Conv3D');
  const info = conv3dInfo(x.shape, filter.shape, a.strides, a.dilations, a.pad);
  if (sizeOf(x.shape) === 0 || sizeOf(filter.shape) === 0) return zeros(b, info.outShape.slice());
  return conv3dForward(b, x, filter, info);
};

const conv3DBackpropFilterV2: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = asWasm(backend);
  const a = attrs as unknown as tf.Conv3DBackpropFilterV2Attrs;
  const x = input(inputs, 'x', 'Conv3DBackpropFilterV2');
  const dy = input(inputs, 'dy', 'Conv3DBackpropFilterV2');
  float32(x, 'Conv3DBackpropFilterV2');
  if (sizeOf(x.shape) === 0 || sizeOf(dy.shape) === 0) return zeros(b, a.filterShape.slice());
  return conv3dFilterGrad(b, x, dy, conv3dInfo(x.shape, a.filterShape, a.strides, 1, a.pad));
};

const conv3DBackpropInputV2: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = asWasm(backend);
  const a = attrs as unknown as tf.Conv3DBackpropInputV2Attrs;
  const dy = input(inputs, 'dy', 'Conv3DBackpropInputV2');
  const filter = input(inputs, 'filter', 'Conv3DBackpropInputV2');
  float32(dy, 'Conv3DBackpropInputV2');
  const info = conv3dInfo(a.inputShape, filter.shape, a.strides, 1, a.pad);
  if (sizeOf(a.inputShape) === 0 || sizeOf(dy.shape) === 0 || sizeOf(filter.shape) === 0) return zeros(b, a.inputShape.slice());
  return backpropInput3d(
    b,
    dy,
    filter,
    a.inputShape.slice(),
    [info.strideDepth, info.strideHeight, info.strideWidth],
    [info.padInfo.front, info.padInfo.top, info.padInfo.left],
  );
};

/** Per-batch m*k*n below which the stock BatchMatMul loop beats per-batch XNNPACK calls. */
const SMALL_MATMUL = 5000;

function batchMatMulKernel(stock: tf.KernelFunc | null): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const a = input(inputs, 'a', 'BatchMatMul');
    const bm = input(inputs, 'b', 'BatchMatMul');
    if ((a.dtype !== 'float32' || bm.dtype !== 'float32') && stock !== null) return stock({ inputs, backend, attrs });
    float32(a, 'BatchMatMul');
    float32(bm, 'BatchMatMul');
    const at = attrs as unknown as tf.BatchMatMulAttrs;
    const ta = at.transposeA === true;
    const tb = at.transposeB === true;
    // Tiny per-batch products (e.g. temporal attention over 8 frames): XNNPACK's per-call setup
    // (about 5 us) costs more than the stock scalar loop; measured break-even m*k*n ~ 5000.
    const ar = a.shape.length;
    const br = bm.shape.length;
    const mkn = (ta ? a.shape[ar - 1] : a.shape[ar - 2]) * (ta ? a.shape[ar - 2] : a.shape[ar - 1]) * (tb ? bm.shape[br - 2] : bm.shape[br - 1]);
    const sameOuter = ar === br && a.shape.slice(0, -2).every((d, i) => d === bm.shape[i]);
    if (stock !== null && sameOuter && ar > 2 && mkn < SMALL_MATMUL && a.shape.slice(0, -2).some((d) => d > 1)) {
      return stock({ inputs, backend, attrs });
    }
    return batchMatMulInfo(asWasm(backend), a, bm, ta, tb);
  };
}

function transposeKernel(stock: tf.KernelFunc | null): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const x = input(inputs, 'x', 'Transpose');
    const perm = (attrs as unknown as tf.TransposeAttrs).perm;
    if (x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool') {
      if (stock === null) throw new Error(`Transpose: unsupported dtype ${x.dtype}`);
      return stock({ inputs, backend, attrs });
    }
    return transposeInfo(asWasm(backend), x, perm);
  };
}

const maxPool3D: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const x = input(inputs, 'x', 'MaxPool3D');
  float32(x, 'MaxPool3D');
  const a = attrs as unknown as tf.MaxPool3DAttrs;
  nhwc(a.dataFormat, 'MaxPool3D');
  return maxPool3dForward(asWasm(backend), x, a);
};

const avgPool3D: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const x = input(inputs, 'x', 'AvgPool3D');
  float32(x, 'AvgPool3D');
  const a = attrs as unknown as tf.AvgPool3DAttrs;
  nhwc(a.dataFormat, 'AvgPool3D');
  return avgPool3dForward(asWasm(backend), x, a);
};

const REGISTERED = Symbol.for('lvdm.backend.wasmKernels');

/** Stock kernel configs that were replaced (kept for fallbacks and for benchmarks). */
export const stockWasmKernels = new Map<string, tf.KernelConfig>();

function replace(name: string, make: (stock: tf.KernelFunc | null) => tf.KernelFunc): void {
  const stock = tf.getKernel(name, 'wasm');
  if (stock !== undefined) {
    stockWasmKernels.set(name, stock);
    tf.unregisterKernel(name, 'wasm');
  }
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: make(stock === undefined ? null : stock.kernelFunc),
    // Keep the stock setup so the stock kernel stays usable as a fallback.
    setupFunc: stock?.setupFunc,
    disposeFunc: stock?.disposeFunc,
  });
}

/** Kernels replaced or added for backend 'wasm'. */
export const WASM_KERNEL_NAMES = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'BatchMatMul',
  'Transpose',
  'Conv3D',
  'Conv3DBackpropInputV2',
  'Conv3DBackpropFilterV2',
  'MaxPool3D',
  'AvgPool3D',
] as const;

/** Registers the replacement kernels for backend 'wasm' (idempotent). */
export function registerWasmKernels(): void {
  const g = globalThis as unknown as Record<symbol, boolean | undefined>;
  if (g[REGISTERED] === true) return;
  g[REGISTERED] = true;
  replace('Conv2DBackpropFilter', () => conv2DBackpropFilter);
  replace('Conv2DBackpropInput', () => conv2DBackpropInput);
  replace('BatchMatMul', batchMatMulKernel);
  replace('Transpose', transposeKernel);
  replace('Conv3D', () => conv3D);
  replace('Conv3DBackpropInputV2', () => conv3DBackpropInputV2);
  replace('Conv3DBackpropFilterV2', () => conv3DBackpropFilterV2);
  replace('MaxPool3D', () => maxPool3D);
  replace('AvgPool3D', () => avgPool3D);
}
