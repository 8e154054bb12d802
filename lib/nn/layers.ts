/**
 * Building blocks shared by the autoencoder, the 3D UNet and the metric networks.
 * Layout is channels-last throughout: images [N, H, W, C], videos [B, T, H, W, C].
 * Weight layouts are tfjs': conv2d [kh, kw, Cin, Cout], conv3d [kt, kh, kw, Cin, Cout],
 * linear [Cin, Cout].
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, init, Initializer } from './params';

export type Triple = [number, number, number];

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
      const parts: tf.Tensor[] = [];
      const edge = (start: number, count: number): tf.Tensor => {
        const begin = y.shape.map(() => 0);
        const size = y.shape.slice();
        begin[axis] = start;
        size[axis] = 1;
        const s = tf.slice(y, begin, size);
        // concat, not tile: tfjs has no rank-5 tile gradient
        return count === 1 ? s : tf.concat(Array.from({ length: count }, () => s), axis);
      };
      if (front > 0) parts.push(edge(0, front));
      parts.push(y);
      if (back > 0) parts.push(edge(n - 1, back));
      y = tf.concat(parts, axis);
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
      if (this.bias) y = tf.add(y, this.bias);
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
      if (this.bias) y = tf.add(y, this.bias);
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

/** Full 3D convolution with TATS/LVDM "same" padding (total k - s per axis). */
export class Conv3d {
  readonly weight: tf.Variable; // [kt, kh, kw, Cin, Cout]
  readonly bias: tf.Variable | null;
  readonly kernel: Triple;
  readonly stride: Triple;
  readonly padMode: 'replicate' | 'zeros';

  constructor(scope: Scope, readonly cin: number, readonly cout: number, kernel: number | Triple, opts: Conv3dOptions = {}) {
    this.kernel = triple(kernel);
    this.stride = triple(opts.stride ?? 1);
    this.padMode = opts.padMode ?? 'replicate';
    const fanIn = cin * this.kernel[0] * this.kernel[1] * this.kernel[2];
    this.weight = scope.param('weight', [...this.kernel, cin, cout], opts.weightInit ?? init.torchDefault(fanIn));
    this.bias = opts.bias === false ? null : scope.param('bias', [cout], init.torchDefault(fanIn));
  }

  /** x: [B, T, H, W, Cin] -> [B, T/st, H/sh, W/sw, Cout]; `weight` substitutes the layer's own (for gradients w.r.t. it). */
  apply(x: tf.Tensor5D, weight: tf.Tensor = this.weight): tf.Tensor5D {
    return tf.tidy(() => {
      const pads = samePads(this.kernel, this.stride);
      const xp = pad5(x, pads, this.padMode);
      let y = tf.conv3d(xp, weight as tf.Tensor5D, this.stride, 'valid');
      if (this.bias) y = tf.add(y, this.bias);
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
export class ConvTranspose3d {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly kernel: Triple;
  readonly stride: Triple;
  readonly padMode: 'replicate' | 'zeros';

  constructor(scope: Scope, readonly cin: number, readonly cout: number, kernel: number | Triple, opts: Conv3dOptions = {}) {
    this.kernel = triple(kernel);
    this.stride = triple(opts.stride ?? 2);
    this.padMode = opts.padMode ?? 'replicate';
    this.kernel.forEach((k, i) => {
      const st = this.stride[i];
      if (k % st !== 0) throw new Error(`ConvTranspose3d: kernel ${k} must be a multiple of stride ${st}`);
      // PyTorch's output length here is (n + k - s - 1) s - 2 (k - 1) + k = s n + (s - 1)(k - s - 2):
      // exactly s x input only for s = 1 or k = s + 2 (LVDM/TATS use k = 4, s = 2).
      if (st !== 1 && k !== st + 2) throw new Error(`ConvTranspose3d: kernel ${k} with stride ${st} does not give stride x input (needs stride 1 or kernel = stride + 2)`);
    });
    // PyTorch's ConvTranspose fan-in convention: weight.size(1) * prod(k) = Cout * prod(k).
    const fanIn = cout * this.kernel[0] * this.kernel[1] * this.kernel[2];
    this.weight = scope.param('weight', [...this.kernel, cin, cout], opts.weightInit ?? init.torchDefault(fanIn));
    this.bias = opts.bias === false ? null : scope.param('bias', [cout], init.torchDefault(fanIn));
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
        const win = tf.slice(xp, [0, ph[0].start, ph[1].start, ph[2].start, 0], [
          b,
          n[0] + ph[0].taps.length - 1,
          n[1] + ph[1].taps.length - 1,
          n[2] + ph[2].taps.length - 1,
          this.cin,
        ]) as tf.Tensor5D;
        let k: tf.Tensor = this.weight;
        for (let axis = 0; axis < 3; axis++) k = pickTaps(k, ph[axis].taps, axis);
        return tf.conv3d(win, k as tf.Tensor5D, 1, 'valid'); // [B, T, H, W, Cout]
      };
      // Interleave phases: innermost W, then H, then T.
      const alongW = (at: number, ah: number): tf.Tensor5D => {
        if (sw === 1) return phaseOut(at, ah, 0);
        const parts = Array.from({ length: sw }, (_, aw) => phaseOut(at, ah, aw));
        return tf.reshape(tf.stack(parts, 4), [b, t, h, w * sw, this.cout]) as tf.Tensor5D;
      };
      const alongH = (at: number): tf.Tensor5D => {
        if (sh === 1) return alongW(at, 0);
        const parts = Array.from({ length: sh }, (_, ah) => alongW(at, ah));
        return tf.reshape(tf.stack(parts, 3), [b, t, h * sh, w * sw, this.cout]) as tf.Tensor5D;
      };
      let y: tf.Tensor5D;
      if (st === 1) y = alongH(0);
      else {
        const parts = Array.from({ length: st }, (_, at) => alongH(at));
        y = tf.reshape(tf.stack(parts, 2), [b, t * st, h * sh, w * sw, this.cout]) as tf.Tensor5D;
      }
      if (this.bias) y = tf.add(y, this.bias);
      return y;
    });
  }
}

/** Selects kernel taps along `axis` by slices + concat (tf.gather's gradient is missing on wasm). */
function pickTaps(k: tf.Tensor, taps: number[], axis: number): tf.Tensor {
  const parts = taps.map((i) => {
    const begin = k.shape.map(() => 0);
    const size = k.shape.slice();
    begin[axis] = i;
    size[axis] = 1;
    return tf.slice(k, begin, size);
  });
  return parts.length === 1 ? parts[0] : tf.concat(parts, axis);
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
    return tf.tidy(() => tf.add(tf.mul(groupNormalize(x, this.groups, this.eps), this.gamma), this.beta) as T);
  }
}

/**
 * Group normalisation without affine (Wu & He, 2018), channels-last. Statistics in two stages:
 * per-channel moments over positions, then pooled within each group.
 */
export function groupNormalize<T extends tf.Tensor>(x: T, groups: number, eps: number): T {
  return tf.tidy(() => {
    const n = x.shape[0];
    const c = x.shape[x.shape.length - 1];
    const x3 = tf.reshape(x, [n, -1, c]); // [N, S, C]
    const meanC = tf.mean(x3, 1); // [N, C]
    const meanG = tf.mean(tf.reshape(meanC, [n, groups, c / groups]), 2, true); // [N, G, 1]
    const meanB = tf.reshape(tf.tile(meanG, [1, 1, c / groups]), [n, 1, c]); // [N, 1, C]
    const xc = tf.sub(x3, meanB);
    const varC = tf.mean(tf.square(xc), 1); // [N, C]
    const varG = tf.mean(tf.reshape(varC, [n, groups, c / groups]), 2, true); // [N, G, 1]
    const inv = tf.reshape(tf.tile(tf.rsqrt(tf.add(varG, eps)), [1, 1, c / groups]), [n, 1, c]);
    return tf.reshape(tf.mul(xc, inv), x.shape) as T;
  });
}
