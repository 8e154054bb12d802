/**
 * Building blocks shared by the autoencoder, the 3D UNet and the metric networks.
 * Layout is channels-last throughout: images [N, H, W, C], videos [B, T, H, W, C].
 * Weight layouts are tfjs': conv2d [kh, kw, Cin, Cout], conv3d [kt, kh, kw, Cin, Cout],
 * linear [Cin, Cout].
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, fusedWithGrad, hasKernel } from '../backend/fused';
import { Scope, init, Initializer } from './params';

export type Triple = [number, number, number];

/** tf.customGrad's parameter type (its callback is typed variadically). */
type CustomGradFn = Parameters<typeof tf.customGrad>[0];

function triple(v: number | Triple): Triple {
  return typeof v === 'number' ? [v, v, v] : v;
}

/** SiLU / swish: x * sigmoid(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T);
}

/** Runs a per-image op on every frame: [B, T, H, W, C] -> fold time into batch -> unfold. */
export function perFrame(x: tf.Tensor5D, fn: (x4: tf.Tensor4D) => tf.Tensor4D): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, t, h, w, c] = x.shape;
    const y = fn(tf.reshape(x, [b * t, h, w, c])); // [B*T, H', W', C']
    const [, h2, w2, c2] = y.shape;
    return tf.reshape(y, [b, t, h2, w2, c2]);
  });
}

/** [d0, ..., dn] viewed as [prod(d<axis), d_axis, prod(d>axis)]. */
function view3(shape: readonly number[], axis: number): [number, number, number] {
  const a = shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const b = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  return [a, shape[axis], b];
}

/**
 * Slice along one axis through a rank-3 view. The wasm backend slices (and splits, in concat's
 * gradient) rank-5 tensors with a per-element loop ~100x slower than its rank <= 4 path.
 */
export function sliceAxis<T extends tf.Tensor>(x: T, axis: number, begin: number, size: number): T {
  return tf.tidy(() => {
    const [a, , b] = view3(x.shape, axis);
    const shape = x.shape.slice();
    shape[axis] = size;
    return tf.reshape(tf.slice(tf.reshape(x, view3(x.shape, axis)), [0, begin, 0], [a, size, b]), shape) as T;
  });
}

/** Concatenation along one axis through rank-3 views (fast gradient on wasm, see sliceAxis). */
export function concatAxis<T extends tf.Tensor>(xs: T[], axis: number): T {
  return tf.tidy(() => {
    if (xs.length === 1) return xs[0].clone();
    const shape = xs[0].shape.slice();
    shape[axis] = xs.reduce((n, x) => n + x.shape[axis], 0);
    return tf.reshape(tf.concat(xs.map((x) => tf.reshape(x, view3(x.shape, axis))), 1), shape) as T;
  });
}

/** Stacks equal-shaped tensors on a new axis inserted at `axis` (tf.stack without its slow wasm gradient). */
export function stackAxis<T extends tf.Tensor>(xs: T[], axis: number): tf.Tensor {
  return tf.tidy(() => {
    const shape = xs[0].shape.slice();
    shape.splice(axis, 0, 1);
    return concatAxis(xs.map((x) => tf.reshape(x, shape)), axis);
  });
}

/**
 * Replicate ("edge") padding of the leading spatial/temporal axes. `pads[i]` = [front, back] for
 * axis i (channels and batch are never padded here). Differentiable (slices + concat).
 */
export function replicatePad<T extends tf.Tensor>(x: T, pads: [number, number][]): T {
  return tf.tidy(() => {
    let y: tf.Tensor = x;
    pads.forEach(([front, back], axis) => {
      if (front === 0 && back === 0) return;
      const n = y.shape[axis];
      const first = sliceAxis(y, axis, 0, 1);
      const last = sliceAxis(y, axis, n - 1, 1);
      const parts: tf.Tensor[] = [];
      for (let i = 0; i < front; i++) parts.push(first);
      parts.push(y);
      for (let i = 0; i < back; i++) parts.push(last);
      y = concatAxis(parts, axis);
    });
    return y as T;
  });
}

/** TATS/LVDM "same" padding for a strided conv: total k - s, front gets the larger half. */
export function samePads(kernel: Triple, stride: Triple): [number, number][] {
  return kernel.map((k, i) => {
    const p = Math.max(k - stride[i], 0);
    return [Math.ceil(p / 2), Math.floor(p / 2)] as [number, number];
  });
}

export interface LinearOptions {
  bias?: boolean;
  weightInit?: Initializer;
  biasInit?: Initializer;
}

export class Linear {
  readonly weight: tf.Variable; // [Cin, Cout]
  readonly bias: tf.Variable | null; // [Cout]

  constructor(scope: Scope, readonly cin: number, readonly cout: number, opts: LinearOptions = {}) {
    this.weight = scope.param('weight', [cin, cout], opts.weightInit ?? init.torchDefault(cin));
    this.bias = opts.bias === false ? null : scope.param('bias', [cout], opts.biasInit ?? init.torchDefault(cin));
  }

  /** x: [..., Cin] -> [..., Cout] */
  apply<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const lead = x.shape.slice(0, -1);
      let y = tf.matMul(tf.reshape(x, [-1, this.cin]) as tf.Tensor2D, this.weight as tf.Tensor2D); // [N, Cout]
      if (this.bias) y = addBias(y, this.bias);
      return tf.reshape(y, [...lead, this.cout]) as T;
    });
  }
}

export interface Conv2dOptions {
  stride?: number;
  /** Symmetric zero padding (PyTorch style); default k // 2. */
  padding?: number;
  bias?: boolean;
  weightInit?: Initializer;
  biasInit?: Initializer;
}

/** 2D convolution on [N, H, W, C]; `applyVideo` runs it per frame (1 x k x k in LVDM's 3D UNet). */
export class Conv2d {
  readonly weight: tf.Variable; // [k, k, Cin, Cout]
  readonly bias: tf.Variable | null;
  readonly stride: number;
  readonly padding: number;

  constructor(scope: Scope, readonly cin: number, readonly cout: number, readonly kernel: number, opts: Conv2dOptions = {}) {
    const fanIn = cin * kernel * kernel;
    this.weight = scope.param('weight', [kernel, kernel, cin, cout], opts.weightInit ?? init.torchDefault(fanIn));
    this.bias = opts.bias === false ? null : scope.param('bias', [cout], opts.biasInit ?? init.torchDefault(fanIn));
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? Math.floor(kernel / 2);
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const xp = this.padding > 0 ? tf.pad(x, [[0, 0], [this.padding, this.padding], [this.padding, this.padding], [0, 0]]) : x;
      let y = tf.conv2d(xp as tf.Tensor4D, this.weight as tf.Tensor4D, this.stride, 'valid');
      if (this.bias) y = addBias(y, this.bias);
      return y;
    });
  }

  applyVideo(x: tf.Tensor5D): tf.Tensor5D {
    return perFrame(x, (x4) => this.apply(x4));
  }
}

export interface Conv3dOptions {
  stride?: number | Triple;
  /** 'replicate' (LVDM autoencoder: temporal shift-equivariance) or 'zeros'. */
  padMode?: 'replicate' | 'zeros';
  bias?: boolean;
  weightInit?: Initializer;
}

/** Weight, bias, kernel, stride and padding mode shared by Conv3d and ConvTranspose3d. */
abstract class Conv3dParams {
  readonly weight: tf.Variable; // [kt, kh, kw, Cin, Cout]
  readonly bias: tf.Variable | null;
  readonly kernel: Triple;
  readonly stride: Triple;
  readonly padMode: 'replicate' | 'zeros';

  /** `fanChannels`: channels counted in the fan-in of PyTorch's default init (Cin for conv, Cout for transposed conv). */
  protected constructor(scope: Scope, readonly cin: number, readonly cout: number, kernel: number | Triple, defaultStride: number, fanChannels: number, opts: Conv3dOptions) {
    this.kernel = triple(kernel);
    this.stride = triple(opts.stride ?? defaultStride);
    this.padMode = opts.padMode ?? 'replicate';
    const fanIn = fanChannels * this.kernel[0] * this.kernel[1] * this.kernel[2];
    this.weight = scope.param('weight', [...this.kernel, cin, cout], opts.weightInit ?? init.torchDefault(fanIn));
    this.bias = opts.bias === false ? null : scope.param('bias', [cout], init.torchDefault(fanIn));
  }
}

/** Full 3D convolution with TATS/LVDM "same" padding (total k - s per axis). */
export class Conv3d extends Conv3dParams {
  constructor(scope: Scope, cin: number, cout: number, kernel: number | Triple, opts: Conv3dOptions = {}) {
    super(scope, cin, cout, kernel, 1, cin, opts);
  }

  /** x: [B, T, H, W, Cin] -> [B, T/st, H/sh, W/sw, Cout]; `weight` substitutes the layer's own (for gradients w.r.t. it). */
  apply(x: tf.Tensor5D, weight: tf.Tensor = this.weight): tf.Tensor5D {
    return tf.tidy(() => {
      const pads = samePads(this.kernel, this.stride);
      const xp = pad5(x, pads, this.padMode);
      let y = tf.conv3d(xp, weight as tf.Tensor5D, this.stride, 'valid');
      if (this.bias) y = addBias(y, this.bias);
      return y;
    });
  }
}

function pad5(x: tf.Tensor5D, pads: [number, number][], mode: 'replicate' | 'zeros'): tf.Tensor5D {
  if (pads.every(([a, b]) => a === 0 && b === 0)) return x;
  if (mode === 'replicate') return replicatePad(x, [[0, 0], ...pads]);
  return tf.pad(x, [[0, 0], ...pads, [0, 0]]);
}

/**
 * Transposed 3D convolution as in TATS/LVDM's SamePadConvTranspose3d: the input is first padded
 * (replicate) by the "same" amounts, then a ConvTranspose3d with padding k - 1 is applied, so the
 * output is exactly stride x input. Implemented without zero insertion: output phase a of each axis
 * (index s*i + a) is a small valid correlation of the padded input with taps r + s*j of the kernel,
 * (r, q) = ((a + k - 1) mod s, floor((a + k - 1) / s)); the phases are then interleaved.
 * Requires k % s == 0 on every axis. Weight layout [kt, kh, kw, Cin, Cout].
 */
export class ConvTranspose3d extends Conv3dParams {
  constructor(scope: Scope, cin: number, cout: number, kernel: number | Triple, opts: Conv3dOptions = {}) {
    // PyTorch's ConvTranspose fan-in convention: weight.size(1) * prod(k) = Cout * prod(k).
    super(scope, cin, cout, kernel, 2, cout, opts);
    this.kernel.forEach((k, i) => {
      const st = this.stride[i];
      if (k % st !== 0) throw new Error(`ConvTranspose3d: kernel ${k} must be a multiple of stride ${st}`);
      // PyTorch's output length here is (n + k - s - 1) s - 2 (k - 1) + k = s n + (s - 1)(k - s - 2):
      // exactly s x input only for s = 1 or k = s + 2 (LVDM/TATS use k = 4, s = 2).
      if (st !== 1 && k !== st + 2) throw new Error(`ConvTranspose3d: kernel ${k} with stride ${st} does not give stride x input (needs stride 1 or kernel = stride + 2)`);
    });
  }

  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      const [b, t, h, w] = x.shape;
      const n: Triple = [t, h, w];
      const xp = pad5(x, samePads(this.kernel, this.stride), this.padMode);
      const [st, sh, sw] = this.stride;
      // phase(a) for one axis: start offset in xp and the kernel taps (in correlation order).
      const phase = (axis: number, a: number): { start: number; taps: number[] } => {
        const k = this.kernel[axis];
        const s = this.stride[axis];
        const r = (a + k - 1) % s;
        const q = Math.floor((a + k - 1) / s);
        const m = k / s;
        const taps = Array.from({ length: m }, (_, o) => r + s * (m - 1 - o));
        return { start: q - (m - 1), taps };
      };
      const phaseOut = (at: number, ah: number, aw: number): tf.Tensor5D => {
        const ph = [phase(0, at), phase(1, ah), phase(2, aw)];
        let win = xp;
        for (let axis = 0; axis < 3; axis++) win = sliceAxis(win, axis + 1, ph[axis].start, n[axis] + ph[axis].taps.length - 1);
        let k: tf.Tensor = this.weight;
        for (let axis = 0; axis < 3; axis++) k = pickTaps(k, ph[axis].taps, axis);
        return tf.conv3d(win, k as tf.Tensor5D, 1, 'valid'); // [B, T, H, W, Cout]
      };
      // Interleave phases: innermost W, then H, then T.
      const alongW = (at: number, ah: number): tf.Tensor5D => {
        if (sw === 1) return phaseOut(at, ah, 0);
        const parts = Array.from({ length: sw }, (_, aw) => phaseOut(at, ah, aw));
        return tf.reshape(stackAxis(parts, 4), [b, t, h, w * sw, this.cout]) as tf.Tensor5D;
      };
      const alongH = (at: number): tf.Tensor5D => {
        if (sh === 1) return alongW(at, 0);
        const parts = Array.from({ length: sh }, (_, ah) => alongW(at, ah));
        return tf.reshape(stackAxis(parts, 3), [b, t, h * sh, w * sw, this.cout]) as tf.Tensor5D;
      };
      let y: tf.Tensor5D;
      if (st === 1) y = alongH(0);
      else {
        const parts = Array.from({ length: st }, (_, at) => alongH(at));
        y = tf.reshape(stackAxis(parts, 2), [b, t * st, h * sh, w * sw, this.cout]) as tf.Tensor5D;
      }
      if (this.bias) y = addBias(y, this.bias);
      return y;
    });
  }
}

/** Selects kernel taps along `axis` by slices + concat (tf.gather's gradient is missing on wasm). */
function pickTaps(k: tf.Tensor, taps: number[], axis: number): tf.Tensor {
  return concatAxis(taps.map((i) => sliceAxis(k, axis, i, 1)), axis);
}

/** Layer normalisation over the last axis (Ba et al., 2016): (x - mean) / sqrt(var + eps) * weight + bias. */
export class LayerNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;

  constructor(scope: Scope, readonly channels: number, readonly eps = 1e-5) {
    this.gamma = scope.param('weight', [channels], init.ones());
    this.beta = scope.param('bias', [channels], init.zeros());
  }

  /** x: [..., C] -> same shape. */
  apply<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return addBias(scaleChannels(y, this.gamma), this.beta) as T;
    });
  }
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x) (a sigmoid approximation of GELU). */
export function quickGelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))) as T);
}

export class GroupNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;

  constructor(scope: Scope, readonly groups: number, readonly channels: number, readonly eps = 1e-6, affine = true) {
    if (channels % groups !== 0) throw new Error(`GroupNorm '${scope.prefix}': ${channels} channels not divisible by ${groups} groups`);
    this.gamma = scope.param('weight', [channels], init.ones(), affine);
    this.beta = scope.param('bias', [channels], init.zeros(), affine);
  }

  /** Normalises x ([N, ..., C]) over all non-batch positions within each channel group. */
  normalize<T extends tf.Tensor>(x: T): T {
    return groupNormalize(x, this.groups, this.eps);
  }

  apply<T extends tf.Tensor>(x: T): T {
    if (hasKernel(FUSED_KERNELS.adaGroupNorm)) return fusedGroupNorm(x, this, undefined, undefined, false);
    return tf.tidy(() => addBias(scaleChannels(groupNormalize(x, this.groups, this.eps), this.gamma), this.beta));
  }

  /** silu(apply(x)), one fused kernel where the backend has it. */
  applySilu<T extends tf.Tensor>(x: T): T {
    if (hasKernel(FUSED_KERNELS.adaGroupNorm)) return fusedGroupNorm(x, this, undefined, undefined, true);
    return tf.tidy(() => silu(this.apply(x)));
  }
}

/** What the group norms read of a GroupNorm layer (tests pass plain tensors). */
export interface GroupNormParams {
  groups: number;
  eps: number;
  gamma: tf.Tensor;
  beta: tf.Tensor;
}

/**
 * GroupNorm + affine [+ AdaGN scale/shift, Dhariwal & Nichol 2021] [+ SiLU] as one backend kernel
 * forward and one backward (LvdmAdaGroupNorm, lib/backend/fused.ts), for backends that register
 * it (check `hasKernel(FUSED_KERNELS.adaGroupNorm)`): the same function as the composite ops
 * (GroupNorm.apply, unet3d's adaptiveGroupNorm) without their ~10 + ~12 kernels per call.
 */
export function fusedGroupNorm<T extends tf.Tensor>(x: T, norm: GroupNormParams, scale: tf.Tensor2D | undefined, shift: tf.Tensor2D | undefined, act: boolean): T {
  const optional = [...(scale ? (['scale'] as const) : []), ...(shift ? (['shift'] as const) : [])];
  const inputs: tf.Tensor[] = [x, norm.gamma, norm.beta, ...(scale ? [scale] : []), ...(shift ? [shift] : [])];
  const named = (ts: tf.Tensor[]): tf.NamedTensorMap => {
    const m: tf.NamedTensorMap = { x: ts[0], gamma: ts[1], beta: ts[2] };
    optional.forEach((k, i) => (m[k] = ts[3 + i]));
    return m;
  };
  const kernels = { forward: FUSED_KERNELS.adaGroupNorm, grad: FUSED_KERNELS.adaGroupNormGrad };
  const attrs = { groups: norm.groups, eps: norm.eps, silu: act };
  return fusedWithGrad(inputs, named, kernels, attrs, { dyName: 'dy', extras: ['mean', 'rstd'] }) as T;
}


/** Mean over axis 1 of [N, S, C] as a batched matmul with ones (wasm's Sum over a middle axis is slow). */
function meanOverPositions(x3: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, s] = x3.shape;
    const w = tf.fill([n, 1, s], 1 / s) as tf.Tensor3D; // [N, 1, S]
    return tf.matMul(w, x3); // [N, 1, C]
  });
}

/** Per-channel mean over groups of `cg` channels, broadcast back to every channel: [N, 1, C] -> [N, 1, C]. */
function groupAverage(m: tf.Tensor3D, groups: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, , c] = m.shape;
    const cg = c / groups;
    if (cg === 1) return m.clone();
    const g = tf.mean(tf.reshape(m, [n, groups, cg]), 2, true); // [N, G, 1]
    return tf.reshape(tf.tile(g, [1, 1, cg]), [n, 1, c]) as tf.Tensor3D;
  });
}

/**
 * Group normalisation without affine (Wu & He, 2018), channels-last: y = (x - mu_g) / sqrt(var_g + eps).
 * Statistics in two stages (per channel over positions, by matmul; then per group). The backward
 * pass is written out, dx = r * (dy - mean_g(dy) - y * mean_g(dy * y)), so its reductions also run
 * as matmuls instead of wasm's slow middle-axis Sum.
 */
export function groupNormalize<T extends tf.Tensor>(x: T, groups: number, eps: number): T {
  const shape = x.shape;
  const n = shape[0];
  const c = shape[shape.length - 1];
  if (c % groups !== 0) throw new Error(`groupNormalize: ${c} channels not divisible by ${groups} groups`);
  const op = tf.customGrad(((xin: tf.Tensor, save: tf.GradSaveFunc) => {
    const x3 = tf.reshape(xin, [n, -1, c]) as tf.Tensor3D; // [N, S, C]
    const mean = groupAverage(meanOverPositions(x3), groups); // [N, 1, C]
    const xc = tf.sub(x3, mean) as tf.Tensor3D;
    const variance = groupAverage(meanOverPositions(tf.square(xc) as tf.Tensor3D), groups); // [N, 1, C]
    const r = tf.rsqrt(tf.add(variance, eps)); // [N, 1, C]
    const y = tf.mul(xc, r) as tf.Tensor3D; // [N, S, C]
    save([y, r]);
    return {
      value: tf.reshape(y, shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ys, rs] = saved as [tf.Tensor3D, tf.Tensor3D];
        const dy3 = tf.reshape(dy, [n, -1, c]) as tf.Tensor3D;
        const g1 = groupAverage(meanOverPositions(dy3), groups);
        const g2 = groupAverage(meanOverPositions(tf.mul(dy3, ys) as tf.Tensor3D), groups);
        return tf.reshape(tf.mul(rs, tf.sub(tf.sub(dy3, g1), tf.mul(ys, g2))), shape);
      },
    };
  }) as CustomGradFn);
  return op(x) as T;
}

/** x * g for g over the last axis, with the gradient of g as a matmul reduction (see addBias). */
export function scaleChannels<T extends tf.Tensor>(x: T, g: tf.Tensor): T {
  const shape = x.shape;
  const c = shape[shape.length - 1];
  const op = tf.customGrad(((xin: tf.Tensor, gin: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xin, gin]);
    return {
      value: tf.mul(xin, gin),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs] = saved;
        const p = tf.reshape(tf.mul(dy, xs), [-1, c]) as tf.Tensor2D; // [M, C]
        const ones = tf.ones([1, p.shape[0]]) as tf.Tensor2D;
        return [tf.mul(dy, gs), tf.reshape(tf.matMul(ones, p), [c])];
      },
    };
  }) as CustomGradFn);
  return op(x, g) as T;
}

/**
 * x + b for b over the last axis, with the bias gradient as a matmul (sum of dy over every
 * position); tf.add's broadcast gradient reduces with wasm's slow Sum.
 */
export function addBias<T extends tf.Tensor>(x: T, b: tf.Tensor): T {
  const shape = x.shape;
  const c = shape[shape.length - 1];
  const op = tf.customGrad(((xin: tf.Tensor, bin: tf.Tensor) => ({
    value: tf.add(xin, bin),
    gradFunc: (dy: tf.Tensor) => {
      const d2 = tf.reshape(dy, [-1, c]) as tf.Tensor2D; // [M, C]
      const ones = tf.ones([1, d2.shape[0]]) as tf.Tensor2D;
      return [dy, tf.reshape(tf.matMul(ones, d2), [c])];
    },
  })) as CustomGradFn);
  return op(x, b) as T;
}
