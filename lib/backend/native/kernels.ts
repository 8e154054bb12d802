// tfjs kernels of the 'libtorch' backend: each one resolves tfjs's attributes (axes, paddings,
// convolution geometry, resize tables) in JS with tfjs's own helpers, then runs one generic native
// op (native/src/lvdm_torch.cc). Kernels not listed here are not registered: tfjs then throws
// "Kernel '<name>' not registered for backend 'libtorch'", naming it.
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, NativeBackend, RawOut, dtypeCode } from './backend';
import { FUSED_KERNELS } from '../fused';

type Inputs = tf.NamedTensorInfoMap;
type Attrs = tf.NamedAttrMap;
type Result = tf.TensorInfo | tf.TensorInfo[];
type Kernel = (b: NativeBackend, inputs: Inputs, attrs: Attrs, name: string) => Result;

/** The kernel's list inputs (Concat, Pack, AddN) in order. */
function list(inputs: Inputs): tf.TensorInfo[] {
  return Object.values(inputs).filter((t): t is tf.TensorInfo => t !== undefined && t !== null);
}

function req(inputs: Inputs, name: string, kernel: string): tf.TensorInfo {
  const t = inputs[name];
  if (t === undefined || t === null) throw new Error(`${kernel}: missing input '${name}'`);
  return t;
}

/** Length-prefixed list argument. */
const L = (v: readonly number[]): number[] => [v.length, ...v];

function attr<T>(attrs: Attrs, key: string): T {
  return attrs[key] as unknown as T;
}

function axes(a: number | number[] | undefined | null, shape: number[]): number[] {
  // null/undefined means every axis (as in tfjs's reductions).
  return tf.util.parseAxisParam(a as number[], shape).filter((_, i, all) => all.indexOf(all[i]) === i);
}

function one(b: NativeBackend, op: string, inputs: tf.TensorInfo[], args: number[], kernel: string): tf.TensorInfo {
  return b.run(op, inputs, args, kernel)[0];
}

// ---- elementwise ------------------------------------------------------------------------------

const UNARY = [
  'Abs', 'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'Ceil', 'Cos', 'Cosh', 'Elu', 'Erf', 'Exp', 'Expm1', 'Floor',
  'IsNan', 'IsInf', 'IsFinite', 'Log', 'Log1p', 'LogicalNot', 'Neg', 'Reciprocal', 'Relu', 'Relu6', 'Round', 'Rsqrt', 'Selu',
  'Sigmoid', 'Sign', 'Sin', 'Sinh', 'Softplus', 'Sqrt', 'Square', 'Tan', 'Tanh', 'ZerosLike', 'OnesLike',
] as const;

const BINARY = [
  'Add', 'Sub', 'Multiply', 'RealDiv', 'FloorDiv', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference', 'Mod', 'Atan2', 'Equal',
  'NotEqual', 'Less', 'LessEqual', 'Greater', 'GreaterEqual', 'LogicalAnd', 'LogicalOr',
] as const;

const KERNELS: Record<string, Kernel> = {};
for (const n of UNARY) KERNELS[n] = (b, i, _a, k) => one(b, n, [req(i, 'x', k)], [], k);
for (const n of BINARY) KERNELS[n] = (b, i, _a, k) => one(b, n, [req(i, 'a', k), req(i, 'b', k)], [], k);
KERNELS.Prelu = (b, i, _a, k) => one(b, 'Prelu', [req(i, 'x', k), req(i, 'alpha', k)], [], k);
// The engine clones every tensor a gradient saves through Identity (about 500 per UNet training
// step): share the data instead of a native call, as tfjs's cpu backend does.
KERNELS.Identity = (b, i, _a, k) => {
  const x = req(i, 'x', k);
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};
KERNELS.LeakyRelu = (b, i, a, k) => one(b, 'LeakyRelu', [req(i, 'x', k)], [attr<number>(a, 'alpha')], k);
KERNELS.Step = (b, i, a, k) => one(b, 'Step', [req(i, 'x', k)], [attr<number>(a, 'alpha') ?? 0], k);
KERNELS.ClipByValue = (b, i, a, k) => one(b, 'ClipByValue', [req(i, 'x', k)], [attr<number>(a, 'clipValueMin'), attr<number>(a, 'clipValueMax')], k);
KERNELS.Cast = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const dtype = attr<tf.DataType>(a, 'dtype');
  return one(b, dtype === x.dtype ? 'Identity' : 'Cast', [x], [dtypeCode(dtype, k)], k);
};
KERNELS.AddN = (b, i, _a, k) => one(b, 'AddN', list(i), [], k);
KERNELS.Select = (b, i, _a, k) => one(b, 'Select', [req(i, 'condition', k), req(i, 't', k), req(i, 'e', k)], [], k);

// ---- reductions -------------------------------------------------------------------------------

const REDUCE: [string, string][] = [
  ['Sum', 'axis'],
  ['Mean', 'axis'],
  ['Max', 'reductionIndices'],
  ['Min', 'axis'],
  ['Prod', 'axis'],
  ['All', 'axis'],
  ['Any', 'axis'],
];
for (const [n, key] of REDUCE) {
  KERNELS[n] = (b, i, a, k) => {
    const x = req(i, 'x', k);
    return one(b, n, [x], [...L(axes(attr<number | number[]>(a, key), x.shape)), attr<boolean>(a, 'keepDims') ? 1 : 0], k);
  };
}
for (const n of ['ArgMax', 'ArgMin']) {
  KERNELS[n] = (b, i, a, k) => {
    const x = req(i, 'x', k);
    return one(b, n, [x], [axes(attr<number | number[]>(a, 'axis'), x.shape)[0] ?? 0], k);
  };
}
KERNELS.Softmax = (b, i, a, k) => {
  const x = req(i, 'logits', k);
  return one(b, 'Softmax', [x], [axes(attr<number>(a, 'dim') ?? -1, x.shape)[0]], k);
};
KERNELS.EluGrad = (b, i, _a, k) => one(b, 'EluGrad', [req(i, 'dy', k), req(i, 'y', k)], [], k);
KERNELS.Cumsum = (b, i, a, k) => {
  const x = req(i, 'x', k);
  return one(b, 'Cumsum', [x], [axes(attr<number>(a, 'axis'), x.shape)[0], attr<boolean>(a, 'exclusive') ? 1 : 0, attr<boolean>(a, 'reverse') ? 1 : 0], k);
};

// ---- shapes -----------------------------------------------------------------------------------

KERNELS.Reshape = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const shape = tf.util.inferFromImplicitShape(attr<number[]>(a, 'shape').slice(), tf.util.sizeFromShape(x.shape));
  return one(b, 'Reshape', [x], L(shape), k);
};
KERNELS.Transpose = (b, i, a, k) => one(b, 'Transpose', [req(i, 'x', k)], L(attr<number[]>(a, 'perm')), k);
KERNELS.Slice = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const [begin, size] = tf.slice_util.parseSliceParams(x, attr<number[]>(a, 'begin'), attr<number[]>(a, 'size'));
  tf.slice_util.assertParamsValid(x, begin, size);
  return one(b, 'Slice', [x], [...L(begin), ...L(size)], k);
};
KERNELS.StridedSlice = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const s = tf.slice_util.sliceInfo(
    x.shape,
    attr<number[]>(a, 'begin'),
    attr<number[]>(a, 'end'),
    attr<number[]>(a, 'strides'),
    attr<number>(a, 'beginMask'),
    attr<number>(a, 'endMask'),
    attr<number>(a, 'ellipsisMask'),
    attr<number>(a, 'newAxisMask'),
    attr<number>(a, 'shrinkAxisMask'),
  );
  if (s.isIdentity) return one(b, 'Reshape', [x], L(s.finalShape), k);
  return one(b, 'StridedSlice', [x], [...L(s.begin), ...L(s.end), ...L(s.strides), ...L(s.finalShape)], k);
};
KERNELS.Concat = (b, i, a, k) => {
  const xs = list(i);
  const axis = axes(attr<number>(a, 'axis'), xs[0].shape)[0];
  return one(b, 'Concat', xs, [axis], k);
};
KERNELS.Pack = (b, i, a, k) => {
  const xs = list(i);
  const axis = axes(attr<number>(a, 'axis'), [...xs[0].shape, 1])[0];
  return one(b, 'Pack', xs, [axis], k);
};
KERNELS.Unpack = (b, i, a, k) => {
  const x = req(i, 'value', k);
  return b.run('Unpack', [x], [axes(attr<number>(a, 'axis'), x.shape)[0]], k);
};
KERNELS.SplitV = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const axis = axes(attr<number>(a, 'axis'), x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x, attr<number[] | number>(a, 'numOrSizeSplits'), axis);
  return b.run('SplitV', [x], [...L(sizes), axis], k);
};
KERNELS.Tile = (b, i, a, k) => one(b, 'Tile', [req(i, 'x', k)], L(attr<number[]>(a, 'reps')), k);
KERNELS.PadV2 = (b, i, a, k) => {
  const p = attr<[number, number][]>(a, 'paddings');
  return one(b, 'PadV2', [req(i, 'x', k)], [...L(p.map((q) => q[0])), ...L(p.map((q) => q[1])), attr<number>(a, 'constantValue') ?? 0], k);
};
KERNELS.MirrorPad = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const p = attr<[number, number][]>(a, 'paddings');
  const off = attr<string>(a, 'mode') === 'reflect' ? 1 : 0;
  let cur: RawOut = { handle: b.handle(x, k), dtype: x.dtype, shape: x.shape };
  let owned = false;
  p.forEach(([lo, hi], axis) => {
    if (lo === 0 && hi === 0) return;
    const n = x.shape[axis];
    const idx: number[] = [];
    for (let j = -lo; j < n + hi; j++) idx.push(j < 0 ? -j - 1 + off : j >= n ? 2 * n - 1 - j - off : j);
    const next = b.runRaw('GatherList', [cur.handle], [axis, ...L(idx)])[0];
    if (owned) b.free(cur);
    cur = next;
    owned = true;
  });
  return owned ? b.info(cur) : one(b, 'Identity', [x], [], k);
};
KERNELS.Reverse = (b, i, a, k) => {
  const x = req(i, 'x', k);
  return one(b, 'Reverse', [x], L(axes(attr<number | number[]>(a, 'dims'), x.shape)), k);
};
KERNELS.GatherV2 = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const idx = req(i, 'indices', k);
  if ((attr<number>(a, 'batchDims') ?? 0) !== 0) throw new Error(`${k}: batchDims > 0 is not supported by the ${NATIVE_BACKEND} backend`);
  const axis = axes(attr<number>(a, 'axis'), x.shape)[0];
  const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  return one(b, 'Gather', [x, idx], [axis, ...L(shape)], k);
};
KERNELS.UnsortedSegmentSum = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const ids = req(i, 'segmentIds', k);
  return one(b, 'SegmentSum', [x, ids], [attr<number>(a, 'numSegments')], k);
};
KERNELS.Fill = (b, _i, a, k) => one(b, 'Fill', [], [...L(attr<number[]>(a, 'shape')), Number(attr<number>(a, 'value')), dtypeCode(attr<tf.DataType>(a, 'dtype'), k)], k);
KERNELS.OneHot = (b, i, a, k) => {
  const x = req(i, 'indices', k);
  return one(b, 'OneHot', [x], [attr<number>(a, 'depth'), attr<number>(a, 'onValue') ?? 1, attr<number>(a, 'offValue') ?? 0, dtypeCode(attr<tf.DataType>(a, 'dtype') ?? 'int32', k)], k);
};
KERNELS.Range = (b, _i, a) => {
  const start = attr<number>(a, 'start');
  const stop = attr<number>(a, 'stop');
  const step = attr<number>(a, 'step');
  const dtype = attr<'float32' | 'int32'>(a, 'dtype');
  const n = Math.max(Math.ceil((stop - start) / step), 0);
  const v = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let j = 0; j < n; j++) v[j] = start + j * step;
  return b.makeTensorInfo([n], dtype, v);
};

// ---- linear algebra ---------------------------------------------------------------------------

KERNELS.BatchMatMul = (b, i, a, k) =>
  one(b, 'BatchMatMul', [req(i, 'a', k), req(i, 'b', k)], [attr<boolean>(a, 'transposeA') ? 1 : 0, attr<boolean>(a, 'transposeB') ? 1 : 0], k);

const ACTIVATION: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, elu: 4, leakyrelu: 5 };

/** Applies a fused activation that has no native code (prelu) on a raw result. */
function withActivation(b: NativeBackend, raw: RawOut, act: string, inputs: Inputs, k: string): tf.TensorInfo {
  if (act !== 'prelu') return b.info(raw);
  const alpha = req(inputs, 'preluActivationWeights', k);
  const out = b.runRaw('Prelu', [raw.handle, b.handle(alpha, k)], [])[0];
  b.free(raw);
  return b.info(out);
}

function activationCode(act: string, k: string): number {
  if (act === 'prelu') return 0;
  const c = ACTIVATION[act];
  if (c === undefined) throw new Error(`${k}: activation '${act}' is not supported by the ${NATIVE_BACKEND} backend`);
  return c;
}

KERNELS._FusedMatMul = (b, i, a, k) => {
  const act = attr<string>(a, 'activation') ?? 'linear';
  const bias = i.bias;
  const hs = [b.handle(req(i, 'a', k), k), b.handle(req(i, 'b', k), k), ...(bias ? [b.handle(bias, k)] : [])];
  const raw = b.runRaw('FusedMatMul', hs, [
    attr<boolean>(a, 'transposeA') ? 1 : 0,
    attr<boolean>(a, 'transposeB') ? 1 : 0,
    bias ? 1 : 0,
    activationCode(act, k),
    attr<number>(a, 'leakyreluAlpha') ?? 0.2,
  ])[0];
  return withActivation(b, raw, act, i, k);
};

// ---- convolutions and pooling -----------------------------------------------------------------

type Conv2DInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;
type Conv3DInfo = ReturnType<typeof tf.backend_util.computeConv3DInfo>;

function channelsLast(format: string | undefined, k: string): void {
  if (format !== undefined && format !== 'NHWC' && format !== 'NDHWC' && format !== 'channelsLast') {
    throw new Error(`${k}: data format ${format} is not supported by the ${NATIVE_BACKEND} backend (channels-last only)`);
  }
}

/** Geometry arguments: strides, dilations, padding before/after per spatial axis, groups. */
function geom2d(c: Conv2DInfo, groups = 1): number[] {
  const p = c.padInfo;
  return [...L([c.strideHeight, c.strideWidth]), ...L([c.dilationHeight, c.dilationWidth]), ...L([p.top, p.left]), ...L([p.bottom, p.right]), groups];
}

function geom3d(c: Conv3DInfo): number[] {
  const p = c.padInfo;
  return [
    ...L([c.strideDepth, c.strideHeight, c.strideWidth]),
    ...L([c.dilationDepth, c.dilationHeight, c.dilationWidth]),
    ...L([p.front, p.top, p.left]),
    ...L([p.back, p.bottom, p.right]),
    1,
  ];
}

type Pad2D = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];
type Shape5 = [number, number, number, number, number];

function conv2dInfo(xShape: number[], wShape: number[], a: Attrs, dilations: number | [number, number] = 1): Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as Shape4,
    wShape as Shape4,
    attr<[number, number]>(a, 'strides'),
    dilations,
    attr<Pad2D>(a, 'pad'),
    attr<'floor' | 'round' | 'ceil'>(a, 'dimRoundingMode'),
    false,
    'channelsLast',
  );
}

function conv3dInfo(xShape: number[], wShape: number[], a: Attrs, dilations: number | [number, number, number] = 1): Conv3DInfo {
  return tf.backend_util.computeConv3DInfo(xShape as Shape5, wShape as Shape5, attr<[number, number, number]>(a, 'strides'), dilations, attr<'valid' | 'same'>(a, 'pad'));
}

/** Zeros of `shape` (a convolution or pooling with nothing to sum: libtorch rejects those). */
function zeros(b: NativeBackend, shape: number[], k: string): tf.TensorInfo {
  return one(b, 'Fill', [], [...L(shape), 0, 0], k);
}

const empty = (...shapes: number[][]): boolean => shapes.some((s) => tf.util.sizeFromShape(s) === 0);

KERNELS.Conv2D = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const w = req(i, 'filter', k);
  channelsLast(attr<string>(a, 'dataFormat'), k);
  const info = conv2dInfo(x.shape, w.shape, a, attr<[number, number]>(a, 'dilations') ?? 1);
  if (empty(x.shape, w.shape, info.outShape)) return zeros(b, info.outShape, k);
  return one(b, 'Conv', [x, w], [2, ...geom2d(info)], k);
};
KERNELS.FusedConv2D = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const w = req(i, 'filter', k);
  channelsLast(attr<string>(a, 'dataFormat'), k);
  const act = attr<string>(a, 'activation') ?? 'linear';
  const info = conv2dInfo(x.shape, w.shape, a, attr<[number, number]>(a, 'dilations') ?? 1);
  const isEmpty = empty(x.shape, w.shape, info.outShape);
  // A bias of one value per output channel goes into the convolution itself.
  const convBias = !isEmpty && i.bias !== undefined && i.bias !== null && i.bias.shape.length === 1 && i.bias.shape[0] === info.outChannels;
  let raw = isEmpty
    ? b.runRaw('Fill', [], [...L(info.outShape), 0, 0])[0]
    : convBias
      ? b.runRaw('ConvBias', [b.handle(x, k), b.handle(w, k), b.handle(i.bias as tf.TensorInfo, k)], [2, ...geom2d(info)])[0]
      : b.runRaw('Conv', [b.handle(x, k), b.handle(w, k)], [2, ...geom2d(info)])[0];
  const step = (op: string, extra: number[], args: number[]): void => {
    const next = b.runRaw(op, [raw.handle, ...extra], args)[0];
    b.free(raw);
    raw = next;
  };
  if (i.bias && !convBias) step('Add', [b.handle(i.bias, k)], []);
  if (act === 'relu') step('Relu', [], []);
  else if (act === 'relu6') step('Relu6', [], []);
  else if (act === 'sigmoid') step('Sigmoid', [], []);
  else if (act === 'elu') step('Elu', [], []);
  else if (act === 'leakyrelu') step('LeakyRelu', [], [attr<number>(a, 'leakyreluAlpha') ?? 0.2]);
  else if (act !== 'linear' && act !== 'prelu') activationCode(act, k);
  return withActivation(b, raw, act, i, k);
};
KERNELS.Conv2DBackpropInput = (b, i, a, k) => {
  const dy = req(i, 'dy', k);
  const w = req(i, 'filter', k);
  channelsLast(attr<string>(a, 'dataFormat'), k);
  const inShape = attr<number[]>(a, 'inputShape');
  if (empty(dy.shape, w.shape, inShape)) return zeros(b, inShape, k);
  return one(b, 'ConvBackpropInput', [dy, w], [2, ...geom2d(conv2dInfo(inShape, w.shape, a)), ...L(inShape)], k);
};
KERNELS.Conv2DBackpropFilter = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const dy = req(i, 'dy', k);
  channelsLast(attr<string>(a, 'dataFormat'), k);
  const fShape = attr<number[]>(a, 'filterShape');
  if (empty(x.shape, dy.shape, fShape)) return zeros(b, fShape, k);
  return one(b, 'ConvBackpropFilter', [x, dy], [2, ...geom2d(conv2dInfo(x.shape, fShape, a)), ...L(fShape)], k);
};
KERNELS[FUSED_KERNELS.conv2dGrad] = (b, i, a, k) => {
  const dy = req(i, 'dy', k);
  const x = req(i, 'x', k);
  const w = req(i, 'filter', k);
  const hasBias = attr<boolean>(a, 'hasBias');
  if (empty(x.shape, w.shape, dy.shape)) return [zeros(b, x.shape, k), zeros(b, w.shape, k), ...(hasBias ? [zeros(b, [w.shape[3]], k)] : [])];
  return b.run('ConvGrad', [dy, x, w], [2, ...geom2d(conv2dInfo(x.shape, w.shape, a)), flag(hasBias)], k);
};
KERNELS.Conv3D = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const w = req(i, 'filter', k);
  channelsLast(attr<string>(a, 'dataFormat'), k);
  const info = conv3dInfo(x.shape, w.shape, a, attr<[number, number, number]>(a, 'dilations') ?? 1);
  if (empty(x.shape, w.shape, info.outShape)) return zeros(b, info.outShape, k);
  return one(b, 'Conv', [x, w], [3, ...geom3d(info)], k);
};
KERNELS.Conv3DBackpropInputV2 = (b, i, a, k) => {
  const dy = req(i, 'dy', k);
  const w = req(i, 'filter', k);
  const inShape = attr<number[]>(a, 'inputShape');
  if (empty(dy.shape, w.shape, inShape)) return zeros(b, inShape, k);
  return one(b, 'ConvBackpropInput', [dy, w], [3, ...geom3d(conv3dInfo(inShape, w.shape, a)), ...L(inShape)], k);
};
KERNELS.Conv3DBackpropFilterV2 = (b, i, a, k) => {
  const x = req(i, 'x', k);
  const dy = req(i, 'dy', k);
  const fShape = attr<number[]>(a, 'filterShape');
  if (empty(x.shape, dy.shape, fShape)) return zeros(b, fShape, k);
  return one(b, 'ConvBackpropFilter', [x, dy], [3, ...geom3d(conv3dInfo(x.shape, fShape, a)), ...L(fShape)], k);
};

function pool2dArgs(isMax: boolean, xShape: number[], a: Attrs): { args: number[]; outShape: number[] } {
  const c = tf.backend_util.computePool2DInfo(
    xShape as Shape4,
    attr<[number, number]>(a, 'filterSize'),
    attr<[number, number]>(a, 'strides'),
    1,
    attr<Pad2D>(a, 'pad'),
    attr<'floor' | 'round' | 'ceil'>(a, 'dimRoundingMode'),
  );
  return { args: [isMax ? 1 : 0, 2, ...L([c.filterHeight, c.filterWidth]), ...geom2d(c)], outShape: c.outShape };
}

function pool3dArgs(isMax: boolean, xShape: number[], a: Attrs): { args: number[]; outShape: number[] } {
  const c = tf.backend_util.computePool3DInfo(
    xShape as Shape5,
    attr<[number, number, number]>(a, 'filterSize'),
    attr<[number, number, number]>(a, 'strides'),
    1,
    attr<'valid' | 'same'>(a, 'pad'),
    attr<'floor' | 'round' | 'ceil'>(a, 'dimRoundingMode'),
  );
  return { args: [isMax ? 1 : 0, 3, ...L([c.filterDepth, c.filterHeight, c.filterWidth]), ...geom3d(c)], outShape: c.outShape };
}

for (const [n, isMax, three] of [
  ['MaxPool', true, false],
  ['AvgPool', false, false],
  ['MaxPool3D', true, true],
  ['AvgPool3D', false, true],
] as const) {
  KERNELS[n] = (b, i, a, k) => {
    const x = req(i, 'x', k);
    channelsLast(attr<string>(a, 'dataFormat'), k);
    const p = three ? pool3dArgs(isMax, x.shape, a) : pool2dArgs(isMax, x.shape, a);
    if (empty(x.shape, p.outShape)) return zeros(b, p.outShape, k);
    return one(b, 'Pool', [x], p.args, k);
  };
  KERNELS[`${n}Grad`] = (b, i, a, k) => {
    const dy = req(i, 'dy', k);
    const x = req(i, 'input', k);
    if (empty(x.shape, dy.shape)) return zeros(b, x.shape, k);
    return one(b, 'PoolGrad', [dy, x], (three ? pool3dArgs(isMax, x.shape, a) : pool2dArgs(isMax, x.shape, a)).args, k);
  };
}

// ---- resizing (tfjs-backend-cpu's index conventions, as separable tables) ----------------------

interface Table {
  i0: number[];
  i1: number[];
  w: number[];
}

function resizeTable(inSize: number, outSize: number, alignCorners: boolean, halfPixel: boolean, nearest: boolean): Table {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const scale = effIn / effOut;
  const t: Table = { i0: [], i1: [], w: [] };
  for (let o = 0; o < outSize; o++) {
    if (nearest) {
      const src = halfPixel ? scale * (o + 0.5) : scale * o;
      let j = Math.min(inSize - 1, alignCorners ? Math.round(src) : Math.floor(src));
      if (halfPixel) j = Math.max(0, j);
      t.i0.push(j);
      t.i1.push(j);
      t.w.push(0);
    } else {
      const src = halfPixel ? scale * (o + 0.5) - 0.5 : scale * o;
      const lo = Math.max(0, Math.floor(src));
      const hi = Math.min(inSize - 1, Math.ceil(src));
      t.i0.push(lo);
      t.i1.push(hi);
      t.w.push(lo === hi ? 0 : src - lo);
    }
  }
  return t;
}

function resizeArgs(inShape: number[], outH: number, outW: number, a: Attrs, nearest: boolean): number[] {
  const ac = attr<boolean>(a, 'alignCorners') === true;
  const hp = attr<boolean>(a, 'halfPixelCenters') === true;
  const th = resizeTable(inShape[1], outH, ac, hp, nearest);
  const tw = resizeTable(inShape[2], outW, ac, hp, nearest);
  return [...L(th.i0), ...L(th.i1), ...L(th.w), ...L(tw.i0), ...L(tw.i1), ...L(tw.w)];
}

for (const [n, nearest] of [
  ['ResizeBilinear', false],
  ['ResizeNearestNeighbor', true],
] as const) {
  KERNELS[n] = (b, i, a, k) => {
    const x = req(i, 'images', k);
    const [h, w] = attr<[number, number]>(a, 'size');
    return one(b, 'Resize', [x], resizeArgs(x.shape, h, w, a, nearest), k);
  };
  // The exact adjoint of the forward tables (tfjs-backend-cpu's versions ignore halfPixelCenters).
  KERNELS[`${n}Grad`] = (b, i, a, k) => {
    const x = req(i, 'images', k);
    const dy = req(i, 'dy', k);
    return one(b, 'ResizeGrad', [dy], [...resizeArgs(x.shape, dy.shape[1], dy.shape[2], a, nearest), ...L(x.shape)], k);
  };
}

KERNELS.FusedBatchNorm = (b, i, a, k) => {
  const xs = [req(i, 'x', k), req(i, 'mean', k), req(i, 'variance', k), ...(i.offset ? [i.offset] : []), ...(i.scale ? [i.scale] : [])];
  return one(b, 'FusedBatchNorm', xs, [attr<number>(a, 'varianceEpsilon') ?? 0.001, i.offset ? 1 : 0, i.scale ? 1 : 0], k);
};

// ---- fused kernels (lib/backend/fused.ts states their inputs and attributes) -----------------

const flag = (v: unknown): number => (v ? 1 : 0);

KERNELS[FUSED_KERNELS.adaGroupNorm] = (b, i, a, k) => {
  const xs = [req(i, 'x', k), req(i, 'gamma', k), req(i, 'beta', k), ...(i.scale ? [i.scale] : []), ...(i.shift ? [i.shift] : [])];
  return b.run('AdaGroupNorm', xs, [attr<number>(a, 'groups'), attr<number>(a, 'eps'), flag(i.scale), flag(i.shift), flag(attr<boolean>(a, 'silu'))], k);
};
KERNELS[FUSED_KERNELS.adaGroupNormGrad] = (b, i, a, k) => {
  const names = ['dy', 'x', 'gamma', 'beta', 'mean', 'rstd'];
  const xs = [...names.map((n) => req(i, n, k)), ...(i.scale ? [i.scale] : []), ...(i.shift ? [i.shift] : [])];
  return b.run('AdaGroupNormGrad', xs, [attr<number>(a, 'groups'), flag(i.scale), flag(i.shift), flag(attr<boolean>(a, 'silu'))], k);
};
KERNELS[FUSED_KERNELS.adamStep] = (b, i, a, k) => {
  const keys = ['k', 'beta1', 'beta2', 'eps', 'stepSize', 'c2', 'decoupled', 'l2'];
  return b.run('AdamStep', list(i), keys.map((key) => attr<number>(a, key)), k);
};
KERNELS[FUSED_KERNELS.emaUpdate] = (b, i, a, k) => b.run('EmaUpdate', list(i), [attr<number>(a, 'k'), attr<number>(a, 'decay')], k);
KERNELS[FUSED_KERNELS.sumSquares] = (b, i, _a, k) => one(b, 'SumSquares', list(i), [], k);
const attentionArgs = (i: Inputs, a: tf.NamedAttrMap): number[] => [
  attr<number>(a, 'groups'), attr<number>(a, 'seqLen'), attr<number>(a, 'heads'), flag(i.relKey), attr<number>(a, 'maxDistance'),
  flag(attr<boolean>(a, 'keyTransposed')), attr<number>(a, 'keyScale'),
];
const relTables = (i: Inputs): tf.TensorInfo[] => (i.relKey ? [i.relKey, req(i, 'relValue', FUSED_KERNELS.selfAttention)] : []);
KERNELS[FUSED_KERNELS.selfAttention] = (b, i, a, k) => b.run('SelfAttention', [req(i, 'y', k), ...relTables(i)], attentionArgs(i, a), k);
KERNELS[FUSED_KERNELS.selfAttentionGrad] = (b, i, a, k) =>
  b.run('SelfAttentionGrad', [req(i, 'dOut', k), req(i, 'y', k), req(i, 'attn', k), ...relTables(i)], attentionArgs(i, a), k);

/** Names of every kernel the backend provides. */
export const NATIVE_KERNEL_NAMES: readonly string[] = Object.keys(KERNELS).sort();

/** Registers every kernel for backend 'libtorch' (idempotent). */
export function registerNativeKernels(): void {
  for (const [name, fn] of Object.entries(KERNELS)) {
    if (tf.getKernel(name, NATIVE_BACKEND) !== undefined) continue;
    tf.registerKernel({
      kernelName: name,
      backendName: NATIVE_BACKEND,
      kernelFunc: ({ inputs, attrs, backend }) => fn(backend as NativeBackend, inputs, attrs ?? {}, name),
    });
  }
}
