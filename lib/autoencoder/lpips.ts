/**
 * LPIPS perceptual distance (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features
 * as a Perceptual Metric"), computed as the `lpips` PyTorch package (v0.1) does:
 *
 *   d(x, y) = sum_l mean_{h,w} sum_c w_lc * (f̂_l(x) - f̂_l(y))^2_{hwc},
 *   f̂ = f / (||f||_channels + 1e-10),   f_l = trunk features of (x - shift) / scale.
 *
 * Trunks: VGG16 (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) or AlexNet (relu1..relu5).
 * Inputs are frames [N, H, W, 3] in [-1, 1]. Weights are frozen and come only from a file the
 * user exports from PyTorch (format: lib/autoencoder/LPIPS.md); they live in their own ParamStore
 * as non-trainable variables, so optimisers of the autoencoder never see them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params';
import { Rng } from '../nn/rng';
import { loadSafetensors } from '../io/safetensors';
import { readNpz } from '../io/npy';

export type LpipsNet = 'vgg' | 'alex';

/** One trunk step: a conv + ReLU (torchvision `features` index), a max-pool, or a feature tap. */
export type TrunkOp =
  | { kind: 'conv'; index: number; cin: number; cout: number; kernel: number; stride: number; pad: number }
  | { kind: 'pool'; kernel: number; stride: number }
  | { kind: 'tap' };

const conv = (index: number, cin: number, cout: number, kernel: number, stride: number, pad: number): TrunkOp => ({
  kind: 'conv',
  index,
  cin,
  cout,
  kernel,
  stride,
  pad,
});
const pool = (kernel: number, stride: number): TrunkOp => ({ kind: 'pool', kernel, stride });
const tap: TrunkOp = { kind: 'tap' };

/** torchvision vgg16().features up to relu5_3 (indices 0..29), tapped after each block's last ReLU. */
const VGG16: TrunkOp[] = [
  conv(0, 3, 64, 3, 1, 1), conv(2, 64, 64, 3, 1, 1), tap,
  pool(2, 2), conv(5, 64, 128, 3, 1, 1), conv(7, 128, 128, 3, 1, 1), tap,
  pool(2, 2), conv(10, 128, 256, 3, 1, 1), conv(12, 256, 256, 3, 1, 1), conv(14, 256, 256, 3, 1, 1), tap,
  pool(2, 2), conv(17, 256, 512, 3, 1, 1), conv(19, 512, 512, 3, 1, 1), conv(21, 512, 512, 3, 1, 1), tap,
  pool(2, 2), conv(24, 512, 512, 3, 1, 1), conv(26, 512, 512, 3, 1, 1), conv(28, 512, 512, 3, 1, 1), tap,
];

/** torchvision alexnet().features up to relu5 (indices 0..11): 11x11 s4 p2 first conv, 3x3 s2 pools. */
const ALEXNET: TrunkOp[] = [
  conv(0, 3, 64, 11, 4, 2), tap,
  pool(3, 2), conv(3, 64, 192, 5, 1, 2), tap,
  pool(3, 2), conv(6, 192, 384, 3, 1, 1), tap,
  conv(8, 384, 256, 3, 1, 1), tap,
  conv(10, 256, 256, 3, 1, 1), tap,
];

export const LPIPS_TRUNKS: Record<LpipsNet, readonly TrunkOp[]> = { vgg: VGG16, alex: ALEXNET };

/** lpips.pretrained_networks.ScalingLayer constants (ImageNet statistics mapped to [-1, 1]). */
const SHIFT = [-0.03, -0.088, -0.188];
const SCALE = [0.458, 0.448, 0.45];
/** lpips.normalize_tensor eps. */
const NORM_EPS = 1e-10;

export interface LpipsTensorSpec {
  /** Canonical name in the weights file (the one LPIPS.md documents). */
  name: string;
  /** PyTorch shape expected in the file. */
  torchShape: number[];
  /** lpips' own state_dict name for the same tensor (`net.slice<k>.<i>.*`), accepted as an alias. */
  alias?: string;
}

/** Every tensor an LPIPS weights file must hold for `net`, in a fixed order. */
export function lpipsTensorSpecs(net: LpipsNet): LpipsTensorSpec[] {
  const ops = LPIPS_TRUNKS[net];
  const specs: LpipsTensorSpec[] = [];
  const tapChannels: number[] = [];
  let slice = 1;
  let last = 3;
  for (const op of ops) {
    if (op.kind === 'conv') {
      for (const [suffix, shape] of [
        ['weight', [op.cout, op.cin, op.kernel, op.kernel]],
        ['bias', [op.cout]],
      ] as [string, number[]][]) {
        specs.push({ name: `net.features.${op.index}.${suffix}`, torchShape: shape, alias: `net.slice${slice}.${op.index}.${suffix}` });
      }
      last = op.cout;
    } else if (op.kind === 'tap') {
      tapChannels.push(last);
      slice++;
    }
  }
  tapChannels.forEach((c, k) => specs.push({ name: `lin${k}.model.1.weight`, torchShape: [1, c, 1, 1] }));
  return specs;
}

/** One tensor as read from a weights file (safetensors or npz), PyTorch layout. */
export interface SourceTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;
}

/** Tensors by name, as read from a weights file. */
export type TensorSource = Map<string, SourceTensor>;

function toFloat32(t: SourceTensor, file: string, name: string): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.data instanceof Float64Array) return Float32Array.from(t.data);
  throw new Error(`${file}: LPIPS tensor '${name}' has dtype ${t.dtype}, expected a float type (float32/float16/bfloat16/float64)`);
}

function readWeightsFile(file: string): TensorSource {
  const ext = path.extname(file).toLowerCase();
  if (ext !== '.safetensors' && ext !== '.npz')
    throw new Error(`${file}: unsupported LPIPS weights format '${ext || '(no extension)'}' (expected .safetensors or .npz; see lib/autoencoder/LPIPS.md)`);
  if (!fs.existsSync(file)) throw new Error(`${file}: LPIPS weights file not found (export recipe: lib/autoencoder/LPIPS.md)`);
  if (ext === '.npz') return readNpz(file);
  return loadSafetensors(file).tensors;
}

export class Lpips {
  private readonly convs = new Map<number, { w: tf.Variable; b: tf.Variable }>();
  private readonly lins: tf.Variable[] = [];

  private constructor(
    readonly net: LpipsNet,
    /** Frozen weights (trainable = false), tfjs layout: conv [kh, kw, Ci, Co], heads [C]. */
    readonly store: ParamStore,
    readonly source: string,
  ) {
    for (const op of LPIPS_TRUNKS[net]) {
      if (op.kind !== 'conv') continue;
      this.convs.set(op.index, { w: store.get(`net.features.${op.index}.weight`), b: store.get(`net.features.${op.index}.bias`) });
    }
    for (let k = 0; store.has(`lin${k}.model.1.weight`); k++) this.lins.push(store.get(`lin${k}.model.1.weight`));
  }

  /**
   * Loads frozen LPIPS weights exported from PyTorch (format and export script: LPIPS.md).
   * A missing or wrong-shaped tensor is an error naming the file and the tensor.
   */
  static load(file: string, net: LpipsNet): Lpips {
    if (!(net in LPIPS_TRUNKS)) throw new Error(`Lpips.load: unknown net '${String(net)}' (expected 'vgg' or 'alex')`);
    return Lpips.fromTensors(readWeightsFile(file), net, file);
  }

  /** Builds from already-read tensors (PyTorch layout); `source` names them in errors. */
  static fromTensors(tensors: TensorSource, net: LpipsNet, source: string): Lpips {
    // Validate and convert everything first, so a bad file creates no tensors at all.
    const ready: { name: string; shape: number[]; data: Float32Array }[] = [];
    for (const spec of lpipsTensorSpecs(net)) {
      const found = tensors.get(spec.name) ?? (spec.alias !== undefined ? tensors.get(spec.alias) : undefined);
      if (!found)
        throw new Error(
          `${source}: LPIPS (${net}) weights lack tensor '${spec.name}'${spec.alias ? ` (or '${spec.alias}')` : ''}, ` +
            `expected PyTorch shape [${spec.torchShape}] (export recipe: lib/autoencoder/LPIPS.md)`,
        );
      const want = spec.torchShape;
      if (found.shape.length !== want.length || found.shape.some((d, i) => d !== want[i]))
        throw new Error(`${source}: LPIPS (${net}) tensor '${spec.name}' has shape [${found.shape}], expected [${want}]`);
      const data = toFloat32(found, source, spec.name);
      if (want.length === 4 && spec.name.startsWith('net.')) {
        // PyTorch conv weight [Co, Ci, kh, kw] -> tfjs [kh, kw, Ci, Co]
        const [co, ci, kh, kw] = want;
        const out = new Float32Array(data.length);
        for (let o = 0; o < co; o++)
          for (let i = 0; i < ci; i++)
            for (let y = 0; y < kh; y++)
              for (let x = 0; x < kw; x++) out[((y * kw + x) * ci + i) * co + o] = data[((o * ci + i) * kh + y) * kw + x];
        ready.push({ name: spec.name, shape: [kh, kw, ci, co], data: out });
      } else if (want.length === 4) {
        ready.push({ name: spec.name, shape: [want[1]], data }); // head [1, C, 1, 1] -> [C]
      } else {
        ready.push({ name: spec.name, shape: want, data });
      }
    }
    const store = new ParamStore(new Rng(0)); // never draws: every value comes from the file
    for (const t of ready) store.add(t.name, t.shape, () => t.data, false);
    return new Lpips(net, store, source);
  }

  /** Trunk feature maps at the five taps, for frames already scaled by the ScalingLayer. */
  features(x: tf.Tensor4D): tf.Tensor4D[] {
    const feats: tf.Tensor4D[] = [];
    let h = x;
    for (const op of LPIPS_TRUNKS[this.net]) {
      if (op.kind === 'conv') {
        const { w, b } = this.convs.get(op.index)!;
        const hp = op.pad > 0 ? tf.pad(h, [[0, 0], [op.pad, op.pad], [op.pad, op.pad], [0, 0]]) : h;
        h = tf.relu(tf.add(tf.conv2d(hp, w as tf.Tensor4D, op.stride, 'valid'), b)) as tf.Tensor4D; // [M, H', W', Co]
      } else if (op.kind === 'pool') {
        h = tf.maxPool(h, op.kernel, op.stride, 'valid'); // floor mode, as torch's MaxPool2d
      } else {
        feats.push(h);
      }
    }
    return feats;
  }

  /**
   * Per-layer distances [N] for x, y: [N, H, W, 3] in [-1, 1] (five tensors; their sum is
   * `distance`). Differentiable w.r.t. both inputs.
   */
  layerDistances(x: tf.Tensor4D, y: tf.Tensor4D): tf.Tensor1D[] {
    if (x.rank !== 4 || x.shape[3] !== 3 || x.shape.some((d, i) => d !== y.shape[i]))
      throw new Error(`Lpips.distance: expected two [N, H, W, 3] tensors of equal shape, got [${x.shape}] and [${y.shape}]`);
    const [n, h, w] = x.shape;
    const min = minInputSize(this.net);
    if (h < min || w < min)
      throw new Error(`Lpips.distance: ${this.net} needs frames of at least ${min}x${min} (every trunk layer must keep >= 1 pixel), got ${h}x${w}`);
    return tf.tidy(() => {
      const both = tf.concat([x, y], 0); // [2N, H, W, 3]
      const scaled = tf.div(tf.sub(both, tf.tensor1d(SHIFT)), tf.tensor1d(SCALE)) as tf.Tensor4D;
      return this.features(scaled).map((f, k) => {
        const u = unitNormalize(f); // [2N, h, w, C]
        const [, fh, fw, c] = u.shape;
        const ux = tf.slice(u, [0, 0, 0, 0], [n, fh, fw, c]);
        const uy = tf.slice(u, [n, 0, 0, 0], [n, fh, fw, c]);
        const d = tf.squaredDifference(ux, uy); // [N, h, w, C]
        const weighted = tf.matMul(tf.reshape(d, [n * fh * fw, c]), tf.reshape(this.lins[k], [c, 1])); // [N*h*w, 1]
        return tf.mean(tf.reshape(weighted, [n, fh * fw]), 1) as tf.Tensor1D; // spatial average -> [N]
      });
    });
  }

  /** LPIPS distance per frame: x, y [N, H, W, 3] in [-1, 1] -> [N]. Differentiable w.r.t. x (and y). */
  distance(x: tf.Tensor4D, y: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => tf.addN(this.layerDistances(x, y)) as tf.Tensor1D);
  }

  /** Per-frame LPIPS of videos: x, y [B, T, H, W, 3] in [-1, 1] -> [B, T] (time folded into batch). */
  videoDistance(x: tf.Tensor5D, y: tf.Tensor5D): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, t, h, w, c] = x.shape;
      const d = this.distance(tf.reshape(x, [b * t, h, w, c]), tf.reshape(y, [b * t, h, w, c])); // [B*T]
      return tf.reshape(d, [b, t]) as tf.Tensor2D;
    });
  }

  dispose(): void {
    this.store.dispose();
    this.convs.clear();
    this.lins.length = 0;
  }
}

/** Spatial size of each tap for an input of side `size` (torch conv/pool arithmetic, floor mode). */
export function lpipsTapSizes(net: LpipsNet, size: number): number[] {
  const taps: number[] = [];
  let s = size;
  for (const op of LPIPS_TRUNKS[net]) {
    if (op.kind === 'conv') s = Math.floor((s + 2 * op.pad - op.kernel) / op.stride) + 1;
    else if (op.kind === 'pool') s = Math.floor((s - op.kernel) / op.stride) + 1;
    else taps.push(s);
  }
  return taps;
}

/** Smallest frame side for which every tap is non-empty: VGG16 16, AlexNet 31. */
export function minInputSize(net: LpipsNet): number {
  let s = 1;
  while (Math.min(...lpipsTapSizes(net, s)) < 1) s++;
  return s;
}

/**
 * f / (||f||_2 over channels + 1e-10) (lpips.normalize_tensor). The norm of an all-zero feature
 * vector is computed through a guarded sqrt so its gradient is 0 instead of NaN; values unchanged.
 */
function unitNormalize(f: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const ss = tf.sum(tf.square(f), -1, true); // [M, h, w, 1]
    const pos = tf.step(ss); // 1 where ss > 0, else 0 (zero gradient)
    const norm = tf.mul(tf.sqrt(tf.add(ss, tf.sub(1, pos))), pos); // sqrt(ss), or 0 with finite grad
    return tf.div(f, tf.add(norm, NORM_EPS));
  });
}
