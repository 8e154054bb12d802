/**
 * InceptionI3d forward pass in tfjs (NDHWC), returning the Kinetics logits averaged over time -
 * the 400-d FVD feature (`RGB/inception_i3d/Mean:0` of the TF-Hub module).
 *
 * Unit3D = Conv3d (no bias, TF SAME padding) -> BatchNorm (no scale, moving statistics) -> ReLU.
 * BN is folded into the convolution at load time (in float64):
 *   y = (conv(x, w) - mean) / sqrt(var + eps) * gamma + beta = conv(x, w * s) + (beta - mean * s),
 *   s = gamma / sqrt(var + eps).
 * eps is 1e-3 (Sonnet / TF-Hub, the FVD definition) unless set to 1e-5 for TATS/LVDM parity.
 * SAME padding is explicit (tf.pad, then VALID). Max pools pad with 0 instead of -inf: every
 * pool input is a ReLU output (>= 0), so the result is identical (as in pytorch-i3d).
 */
import * as tf from '@tensorflow/tfjs';
import { ENDPOINTS, MIXED_WIDTHS, Triple, UnitSpec, i3dUnits, samePad } from './spec';
import { I3DWeights, loadI3DWeights } from './weights';

export interface I3DOptions {
  /** BatchNorm epsilon: 1e-3 (TF-Hub / Sonnet, default) or 1e-5 (TATS / LVDM PyTorch port). */
  eps?: number;
}

interface FoldedUnit {
  spec: UnitSpec;
  /** [kT, kH, kW, Cin, Cout] for real 3D kernels; null for 1x1x1 units. */
  filter: tf.Tensor5D | null;
  /** [Cin, Cout] for 1x1x1 units (run as a matrix product). */
  matrix: tf.Tensor2D | null;
  bias: tf.Tensor1D;
  relu: boolean;
}

export interface I3DInfo {
  numClasses: number;
  eps: number;
  layout: string;
  source: string;
  fileSha256?: string;
  contentSha256: string;
}

function fold(spec: UnitSpec, w: I3DWeights, eps: number): FoldedUnit {
  const uw = w.units.get(spec.name);
  if (!uw) throw new Error(`I3D: weights for unit ${spec.name} missing`);
  const cout = spec.cout;
  const scale = new Float64Array(cout).fill(1);
  const shift = new Float64Array(cout);
  if (spec.bn) {
    if (!uw.beta || !uw.mean || !uw.variance) throw new Error(`I3D: unit ${spec.name} lacks BatchNorm statistics`);
    for (let c = 0; c < cout; c++) {
      const g = uw.gamma ? uw.gamma[c] : 1;
      scale[c] = g / Math.sqrt(uw.variance[c] + eps);
      shift[c] = uw.beta[c] - uw.mean[c] * scale[c];
    }
  } else {
    if (!uw.bias) throw new Error(`I3D: unit ${spec.name} lacks its bias`);
    for (let c = 0; c < cout; c++) shift[c] = uw.bias[c];
  }
  const wf = new Float32Array(uw.w.length);
  for (let i = 0; i < wf.length; i++) wf[i] = uw.w[i] * scale[i % cout];
  const [kt, kh, kw] = spec.kernel;
  const pointwise = kt === 1 && kh === 1 && kw === 1 && spec.stride.every((s) => s === 1);
  return {
    spec,
    filter: pointwise ? null : tf.tensor5d(wf, [kt, kh, kw, spec.cin, cout]),
    matrix: pointwise ? tf.tensor2d(wf, [spec.cin, cout]) : null,
    bias: tf.tensor1d(Float32Array.from(shift)),
    relu: spec.bn,
  };
}

function padSame(x: tf.Tensor5D, kernel: Triple, stride: Triple): tf.Tensor5D {
  const [, t, h, w] = x.shape;
  const pt = samePad(t, kernel[0], stride[0]);
  const ph = samePad(h, kernel[1], stride[1]);
  const pw = samePad(w, kernel[2], stride[2]);
  if (pt[0] + pt[1] + ph[0] + ph[1] + pw[0] + pw[1] === 0) return x;
  return tf.pad(x, [[0, 0], pt, ph, pw, [0, 0]]);
}

export class I3D {
  readonly info: I3DInfo;
  private readonly units = new Map<string, FoldedUnit>();
  private disposed = false;

  constructor(weights: I3DWeights, opts: I3DOptions = {}) {
    const eps = opts.eps ?? 1e-3;
    if (!(eps > 0)) throw new Error(`I3D: BatchNorm eps must be positive, got ${eps}`);
    this.info = {
      numClasses: weights.numClasses,
      eps,
      layout: weights.layout,
      source: weights.source,
      fileSha256: weights.fileSha256,
      contentSha256: weights.contentSha256,
    };
    for (const spec of i3dUnits(weights.numClasses)) this.units.set(spec.name, fold(spec, weights, eps));
  }

  static fromFile(file: string, opts: I3DOptions = {}): I3D {
    return new I3D(loadI3DWeights(file), opts);
  }

  get numClasses(): number {
    return this.info.numClasses;
  }

  private unit(x: tf.Tensor5D, name: string): tf.Tensor5D {
    const u = this.units.get(name);
    if (!u) throw new Error(`I3D: no unit ${name}`);
    const [b, t, h, w, c] = x.shape;
    if (c !== u.spec.cin) throw new Error(`I3D: unit ${name} expects ${u.spec.cin} input channels, got ${c}`);
    if (u.matrix !== null) {
      const y = tf.fused.matMul({ a: tf.reshape(x, [b * t * h * w, c]), b: u.matrix, bias: u.bias, activation: u.relu ? 'relu' : 'linear' }); // [BTHW, Cout]
      return tf.reshape(y, [b, t, h, w, u.spec.cout]);
    }
    const xp = padSame(x, u.spec.kernel, u.spec.stride);
    const y = tf.add(tf.conv3d(xp, u.filter!, u.spec.stride, 'valid'), u.bias) as tf.Tensor5D; // [B, T', H', W', Cout]
    return u.relu ? tf.relu(y) : y;
  }

  private maxPool(x: tf.Tensor5D, kernel: Triple, stride: Triple): tf.Tensor5D {
    return tf.maxPool3d(padSame(x, kernel, stride), kernel, stride, 'valid');
  }

  private mixed(x: tf.Tensor5D, name: string): tf.Tensor5D {
    if (!MIXED_WIDTHS[name]) throw new Error(`I3D: no module ${name}`);
    const b0 = this.unit(x, `${name}.b0`);
    const b1 = this.unit(this.unit(x, `${name}.b1a`), `${name}.b1b`);
    const b2 = this.unit(this.unit(x, `${name}.b2a`), `${name}.b2b`);
    const b3 = this.unit(this.maxPool(x, [3, 3, 3], [1, 1, 1]), `${name}.b3b`);
    return tf.concat([b0, b1, b2, b3], 4); // [B, T, H, W, sum of branch widths]
  }

  /**
   * Runs the network on [B, T, H, W, 3] frames in [-1, 1] (H = W = 224 for the FVD protocol) and
   * returns the logits averaged over time, [B, numClasses]. `onEndpoint` sees every endpoint's
   * output shape ([B, T, H, W, C]; Logits before the time average).
   */
  forward(x: tf.Tensor5D, onEndpoint?: (name: string, shape: number[]) => void): tf.Tensor2D {
    if (this.disposed) throw new Error('I3D: model disposed');
    if (x.rank !== 5 || x.shape[4] !== 3) throw new Error(`I3D: expected input [B, T, H, W, 3], got [${x.shape.join(', ')}]`);
    let cur: tf.Tensor5D = x;
    const step = (fn: (v: tf.Tensor5D) => tf.Tensor5D, name: string): void => {
      const next = tf.tidy(() => fn(cur));
      if (cur !== x) cur.dispose();
      cur = next;
      onEndpoint?.(name, next.shape);
    };
    let result: tf.Tensor2D | null = null;
    try {
      for (const e of ENDPOINTS) {
        if (e.kind === 'conv') step((v) => this.unit(v, e.name), e.name);
        else if (e.kind === 'maxpool') step((v) => this.maxPool(v, e.kernel!, e.stride!), e.name);
        else if (e.kind === 'mixed') step((v) => this.mixed(v, e.name), e.name);
        else {
          const [b, t, h, w] = cur.shape;
          const [kt, kh, kw] = e.kernel!;
          if (t < kt || h !== kh || w !== kw)
            throw new Error(`I3D: Mixed_5c output ${t}x${h}x${w} does not fit the 2x7x7 logits pool (input must be 224 x 224 with at least 9 frames)`);
          const input = cur;
          result = tf.tidy(() => {
            const pooled = tf.avgPool3d(input, e.kernel!, e.stride!, 'valid'); // [B, T', 1, 1, C]
            const tp = pooled.shape[1];
            const logits = this.unit(pooled, 'logits'); // [B, T', 1, 1, classes]
            onEndpoint?.(e.name, logits.shape);
            return tf.mean(tf.reshape(logits, [b, tp, this.numClasses]), 1) as tf.Tensor2D; // [B, classes]
          });
        }
      }
    } finally {
      if (cur !== x) cur.dispose();
    }
    if (result === null) throw new Error('I3D: no logits computed');
    return result;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const u of this.units.values()) {
      u.filter?.dispose();
      u.matrix?.dispose();
      u.bias.dispose();
    }
  }
}
