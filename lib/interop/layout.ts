/**
 * Tensor layout conversion between PyTorch (channels-first: conv weights [Cout, Cin, kt, kh, kw],
 * transposed conv [Cin, Cout, kt, kh, kw], Linear [out, in]) and this project (channels-last:
 * conv kernels [kt, kh, kw, Cin, Cout], per-frame conv [kh, kw, Cin, Cout], Linear [in, out]).
 */
import { NamedArray } from '../nn/params';

/** out[idx permuted] = in[idx]: the axes of `shape` reordered as `perm` (numpy.transpose). */
export function permute(a: NamedArray, perm: number[]): NamedArray {
  const { shape, data } = a;
  if (perm.length !== shape.length) throw new Error(`permute: perm [${perm}] does not fit shape [${shape}]`);
  const outShape = perm.map((p) => shape[p]);
  const inStride = shape.map((_, i) => shape.slice(i + 1).reduce((x, y) => x * y, 1));
  const stride = perm.map((p) => inStride[p]); // input stride of each output axis
  const out = new Float32Array(data.length);
  const rank = outShape.length;
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = data[src];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += stride[d];
      if (idx[d] < outShape[d]) break;
      src -= stride[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return { shape: outShape, data: out };
}

export function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/**
 * How one parameter is stored on each side: the public shape is the project shape permuted by
 * `perm` then reshaped to `publicShape` (inserting the singleton kernel axes PyTorch keeps).
 */
export type LayoutKind = 'same' | 'linear' | 'conv1d' | 'linear3d' | 'conv2d' | 'conv2d_frame' | 'conv3d' | 'convT3d';

/** Public (PyTorch) shape of a project tensor of this kind. */
export function publicShape(kind: LayoutKind, shape: number[]): number[] {
  switch (kind) {
    case 'same':
      return shape;
    case 'linear':
      return [shape[1], shape[0]];
    case 'conv1d':
      return [shape[1], shape[0], 1];
    case 'linear3d': // a Linear [in, out] that PyTorch holds as a Conv3d with kernel 1
      return [shape[1], shape[0], 1, 1, 1];
    case 'conv2d': // a 1 x kh x kw Conv3d that PyTorch holds as a Conv2d [Cout, Cin, kh, kw]
      return [shape[4], shape[3], shape[1], shape[2]];
    case 'conv2d_frame':
      return [shape[3], shape[2], 1, shape[0], shape[1]];
    case 'conv3d':
      return [shape[4], shape[3], shape[0], shape[1], shape[2]];
    case 'convT3d':
      return [shape[3], shape[4], shape[0], shape[1], shape[2]];
  }
}

// project axes -> public axes (before the singleton reshapes)
const TO_PUBLIC: Record<LayoutKind, number[]> = {
  same: [],
  linear: [1, 0],
  conv1d: [1, 0],
  linear3d: [1, 0],
  conv2d: [4, 3, 0, 1, 2],
  conv2d_frame: [3, 2, 0, 1],
  conv3d: [4, 3, 0, 1, 2],
  convT3d: [3, 4, 0, 1, 2],
};

export function toPublic(kind: LayoutKind, a: NamedArray): NamedArray {
  if (kind === 'same') return { shape: a.shape.slice(), data: a.data };
  const p = permute(a, TO_PUBLIC[kind]);
  return { shape: publicShape(kind, a.shape), data: p.data };
}

/** Public tensor -> project layout; `shape` is the project shape expected (checked by the caller). */
export function fromPublic(kind: LayoutKind, a: NamedArray, shape: number[]): NamedArray {
  if (kind === 'same') return { shape: a.shape.slice(), data: a.data };
  // Drop the singleton axes back to the permuted project shape, then invert the permutation.
  const perm = TO_PUBLIC[kind];
  const permutedShape = perm.map((p) => shape[p]);
  const p = permute({ shape: permutedShape, data: a.data }, inversePerm(perm));
  return { shape: p.shape, data: p.data };
}
