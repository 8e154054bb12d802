// Kernel benchmarks for the wasm backend: the replacement kernels of lib/backend/kernels vs the
// stock tfjs-backend-wasm kernels they replace (where a stock one exists and is cheap to time),
// at LVDM UNet / video-autoencoder sizes. GFLOP/s count one multiply-add as 2 FLOP. Run with
// LVDM_WASM_THREADS=2 to time the threaded-SIMD binary instead (extra.wasm_threads says which).
import * as tf from '@tensorflow/tfjs';
import { initBackend, wasmThreads } from '../lib/backend';
import { stockWasmKernels } from '../lib/backend/kernels';
import { BenchModule, BenchResult, timeMs } from './types';

type Attrs = Record<string, unknown>;

function runNew(name: string, inputs: tf.NamedTensorMap, attrs: Attrs): void {
  const out = tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
  out.dataSync();
  out.dispose();
}

function runStock(name: string, inputs: tf.NamedTensorMap, attrs: Attrs): void {
  const k = stockWasmKernels.get(name);
  if (k === undefined) throw new Error(`no stock wasm kernel ${name}`);
  const backend = tf.backend();
  const out = k.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  backend.readSync(out.dataId);
  backend.disposeData(out.dataId);
}

interface Case {
  name: string;
  kernel: string;
  inputs: () => tf.NamedTensorMap;
  attrs: Attrs;
  flop: number;
  /** Time the stock kernel too (false where it is missing or would take too long). */
  stock: boolean;
  note?: string;
}

async function measure(c: Case, quick: boolean): Promise<BenchResult> {
  const inputs = c.inputs();
  const reps = quick ? 1 : 5;
  const ms = await timeMs(() => runNew(c.kernel, inputs, c.attrs), reps, 1);
  const timings: Record<string, number> = { new_ms: ms };
  const extra: Record<string, number | string> = { kernel: c.kernel, wasm_threads: wasmThreads() };
  if (c.flop > 0) extra.gflops_per_s = +(c.flop / ms / 1e6).toFixed(2);
  if (c.stock && !quick && stockWasmKernels.has(c.kernel)) {
    const sms = await timeMs(() => runStock(c.kernel, inputs, c.attrs), 1, 0);
    timings.stock_ms = sms;
    if (c.flop > 0) extra.stock_gflops_per_s = +(c.flop / sms / 1e6).toFixed(2);
    extra.speedup = +(sms / ms).toFixed(2);
  }
  tf.dispose(Object.values(inputs));
  return { name: c.name, timings_ms: timings, extra, note: c.note };
}

const rnd = (shape: number[]) => tf.randomNormal(shape, 0, 1, 'float32', 7);

function convCases(): Case[] {
  const out: Case[] = [];
  const c2: { tag: string; x: number[]; w: number[]; s: number }[] = [
    { tag: 'unet-16x16x64', x: [32, 16, 16, 64], w: [3, 3, 64, 64], s: 1 },
    { tag: 'unet-8x8x128', x: [32, 8, 8, 128], w: [3, 3, 128, 128], s: 1 },
    { tag: 'unet-down-s2', x: [32, 16, 16, 64], w: [3, 3, 64, 64], s: 2 },
  ];
  for (const c of c2) {
    const ho = Math.ceil(c.x[1] / c.s);
    const wo = Math.ceil(c.x[2] / c.s);
    const dyShape = [c.x[0], ho, wo, c.w[3]];
    const flop = 2 * c.x[0] * ho * wo * c.w[3] * c.w[0] * c.w[1] * c.w[2];
    out.push({
      name: `kernel-conv2d-forward-${c.tag}`,
      kernel: 'Conv2D',
      inputs: () => ({ x: rnd(c.x), filter: rnd(c.w) }),
      attrs: { strides: c.s, pad: 'same', dataFormat: 'NHWC', dilations: 1 },
      flop,
      stock: false,
      note: 'stock XNNPACK kernel (reference point)',
    });
    out.push({
      name: `kernel-conv2d-backprop-input-${c.tag}`,
      kernel: 'Conv2DBackpropInput',
      inputs: () => ({ dy: rnd(dyShape), filter: rnd(c.w) }),
      attrs: { strides: c.s, pad: 'same', dataFormat: 'NHWC', inputShape: c.x },
      flop,
      stock: true,
    });
    out.push({
      name: `kernel-conv2d-backprop-filter-${c.tag}`,
      kernel: 'Conv2DBackpropFilter',
      inputs: () => ({ x: rnd(c.x), dy: rnd(dyShape) }),
      attrs: { strides: c.s, pad: 'same', dataFormat: 'NHWC', filterShape: c.w },
      flop,
      stock: false,
      note: 'missing in stock tfjs-backend-wasm',
    });
  }
  const c3: { tag: string; x: number[]; w: number[]; s: number[]; stock: boolean }[] = [
    { tag: 'ae-8x32x32x32-k3', x: [1, 8, 32, 32, 32], w: [3, 3, 3, 32, 32], s: [1, 1, 1], stock: true },
    { tag: 'ae-down-k4-s2', x: [1, 8, 32, 32, 64], w: [4, 4, 4, 64, 128], s: [2, 2, 2], stock: false },
    { tag: 'ae-1x1x1', x: [1, 8, 32, 32, 64], w: [1, 1, 1, 64, 64], s: [1, 1, 1], stock: false },
  ];
  for (const c of c3) {
    const o = [c.x[0], Math.ceil(c.x[1] / c.s[0]), Math.ceil(c.x[2] / c.s[1]), Math.ceil(c.x[3] / c.s[2]), c.w[4]];
    const flop = 2 * o[0] * o[1] * o[2] * o[3] * o[4] * c.w[0] * c.w[1] * c.w[2] * c.w[3];
    out.push({
      name: `kernel-conv3d-forward-${c.tag}`,
      kernel: 'Conv3D',
      inputs: () => ({ x: rnd(c.x), filter: rnd(c.w) }),
      attrs: { strides: c.s, pad: 'same', dataFormat: 'NDHWC', dilations: 1 },
      flop,
      stock: c.stock,
    });
    out.push({
      name: `kernel-conv3d-backprop-input-${c.tag}`,
      kernel: 'Conv3DBackpropInputV2',
      inputs: () => ({ dy: rnd(o), filter: rnd(c.w) }),
      attrs: { strides: c.s, pad: 'same', inputShape: c.x },
      flop,
      stock: c.stock,
      note: 'also the forward of conv3dTranspose',
    });
    out.push({
      name: `kernel-conv3d-backprop-filter-${c.tag}`,
      kernel: 'Conv3DBackpropFilterV2',
      inputs: () => ({ x: rnd(c.x), dy: rnd(o) }),
      attrs: { strides: c.s, pad: 'same', filterShape: c.w },
      flop,
      stock: c.stock,
    });
  }
  return out;
}

function matmulCases(): Case[] {
  const cases: { tag: string; a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
    { tag: 'qkv-grad-tb', a: [8192, 64], b: [192, 64], ta: false, tb: true },
    { tag: 'weight-grad-ta', a: [8192, 64], b: [8192, 192], ta: true, tb: false },
    { tag: 'attn-scores-b32-tb', a: [32, 256, 64], b: [32, 256, 64], ta: false, tb: true },
    { tag: 'attn-values-b32', a: [32, 256, 256], b: [32, 256, 64], ta: false, tb: false },
    { tag: 'attn-grad-b32-ta', a: [32, 256, 256], b: [32, 256, 64], ta: true, tb: false },
    { tag: 'temporal-attn-b2048-tb', a: [2048, 8, 64], b: [2048, 8, 64], ta: false, tb: true },
  ];
  return cases.map((c) => {
    const m = c.ta ? c.a[c.a.length - 1] : c.a[c.a.length - 2];
    const k = c.ta ? c.a[c.a.length - 2] : c.a[c.a.length - 1];
    const n = c.tb ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
    const batch = c.a.slice(0, -2).reduce((x, y) => x * y, 1);
    return {
      name: `kernel-batchmatmul-${c.tag}`,
      kernel: 'BatchMatMul',
      inputs: () => ({ a: rnd(c.a), b: rnd(c.b) }),
      attrs: { transposeA: c.ta, transposeB: c.tb },
      flop: 2 * batch * m * k * n,
      stock: true,
    };
  });
}

function transposeCases(): Case[] {
  const cases: { tag: string; x: number[]; perm: number[] }[] = [
    { tag: 'frames-to-time-major', x: [4, 8, 16, 16, 64], perm: [0, 2, 3, 1, 4] },
    { tag: 'batch-time-swap', x: [4, 8, 16, 16, 64], perm: [1, 0, 2, 3, 4] },
    { tag: 'heads-split', x: [4, 8, 256, 4, 16], perm: [0, 3, 1, 2, 4] },
    { tag: 'reverse-rank5', x: [4, 8, 16, 16, 64], perm: [4, 3, 2, 1, 0] },
    { tag: 'rank6', x: [2, 4, 8, 16, 16, 32], perm: [5, 1, 3, 0, 2, 4] },
  ];
  return cases.map((c) => ({
    name: `kernel-transpose-${c.tag}`,
    kernel: 'Transpose',
    inputs: () => ({ x: rnd(c.x) }),
    attrs: { perm: c.perm },
    flop: 0,
    stock: true,
    note: `[${c.x}] perm [${c.perm}]`,
  }));
}

function poolCases(): Case[] {
  return [
    {
      name: 'kernel-maxpool3d-i3d-1x3x3-s122',
      kernel: 'MaxPool3D',
      inputs: () => ({ x: rnd([1, 16, 56, 56, 64]) }),
      attrs: { filterSize: [1, 3, 3], strides: [1, 2, 2], pad: 'same', dataFormat: 'NDHWC' },
      flop: 0,
      stock: true,
    },
    {
      name: 'kernel-maxpool3d-i3d-3x3x3',
      kernel: 'MaxPool3D',
      inputs: () => ({ x: rnd([1, 8, 28, 28, 192]) }),
      attrs: { filterSize: [3, 3, 3], strides: [1, 1, 1], pad: 'same', dataFormat: 'NDHWC' },
      flop: 0,
      stock: true,
    },
  ];
}

export const run: BenchModule = async (opts) => {
  await initBackend({ quiet: true });
  if (tf.getBackend() !== 'wasm') {
    return [{ name: 'kernel-benchmarks', timings_ms: {}, note: `skipped: backend is ${tf.getBackend()}, not wasm` }];
  }
  const results: BenchResult[] = [];
  const cases = [...convCases(), ...matmulCases(), ...transposeCases(), ...poolCases()];
  for (const c of opts.quick ? cases.filter((_, i) => i % 3 === 1) : cases) results.push(await measure(c, opts.quick));
  return results;
};
