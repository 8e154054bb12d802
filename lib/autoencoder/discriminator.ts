/**
 * PatchGAN discriminator (Isola et al. 2017, "Image-to-Image Translation with Conditional
 * Adversarial Networks") in the NLayerDiscriminator form used by taming-transformers and LDM/LVDM,
 * applied per frame, plus the hinge losses and the adaptive generator weight of the VQGAN loss
 * (Esser et al. 2021, eq. 7).
 *
 * Layout (torch Sequential indices kept in the parameter names, `disc.main.<i>.*`):
 *   conv4 s2 p1 (bias) -> LReLU 0.2
 *   (nLayers - 1) x [conv4 s2 p1 (no bias), BatchNorm, LReLU 0.2], channels ch * min(2^n, 8)
 *   conv4 s1 p1 (no bias), BatchNorm, LReLU 0.2, channels ch * min(2^nLayers, 8)
 *   conv4 s1 p1 (bias) -> 1 logit per patch
 * BatchNorm always uses the statistics of the batch it sees (training mode), no running averages.
 */
import * as tf from '@tensorflow/tfjs';
import { Conv2d, perFrame } from '../nn/layers';
import { Scope, init, Initializer } from '../nn/params';

export interface DiscriminatorOptions {
  /** Number of stride-2 convolutions (default 3, as LVDM's configs). */
  nLayers?: number;
  /** Base channels ndf (default 64). */
  channels?: number;
  /** Input channels (default 3). */
  inChannels?: number;
}

const BN_EPS = 1e-5;
const LRELU = 0.2;
/** taming's weights_init: conv weights N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0. */
const convInit = init.normal(0.02);
const bnWeightInit: Initializer = (n, rng) => rng.normalArray(n, 1, 0.02);

/** BatchNorm2d over [N, H, W, C] with batch statistics (biased variance, as torch's training mode). */
class BatchNorm {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(scope: Scope, readonly channels: number) {
    this.weight = scope.param('weight', [channels], bnWeightInit);
    this.bias = scope.param('bias', [channels], init.zeros());
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]); // [C] each
      const xn = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, BN_EPS)));
      return tf.add(tf.mul(xn, this.weight), this.bias) as tf.Tensor4D;
    });
  }
}

type Layer = { kind: 'conv'; conv: Conv2d } | { kind: 'bn'; bn: BatchNorm } | { kind: 'lrelu' };

export class NLayerDiscriminator {
  readonly nLayers: number;
  readonly channels: number;
  readonly inChannels: number;
  private readonly layers: Layer[] = [];

  /** Parameters are created under `scope` (e.g. `new Scope(store, 'disc')` -> `disc.main.0.weight`). */
  constructor(scope: Scope, opts: DiscriminatorOptions = {}) {
    this.nLayers = opts.nLayers ?? 3;
    this.channels = opts.channels ?? 64;
    this.inChannels = opts.inChannels ?? 3;
    if (!Number.isInteger(this.nLayers) || this.nLayers < 1) throw new Error(`NLayerDiscriminator: nLayers must be an integer >= 1, got ${this.nLayers}`);
    const main = scope.child('main');
    const add = (l: Layer): void => {
      this.layers.push(l);
    };
    const idx = (): string => String(this.layers.length);
    const convLayer = (cin: number, cout: number, stride: number, bias: boolean): void =>
      add({ kind: 'conv', conv: new Conv2d(main.child(idx()), cin, cout, 4, { stride, padding: 1, bias, weightInit: convInit }) });
    const ndf = this.channels;
    convLayer(this.inChannels, ndf, 2, true);
    add({ kind: 'lrelu' });
    let mult = 1;
    for (let n = 1; n < this.nLayers; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      convLayer(ndf * prev, ndf * mult, 2, false);
      add({ kind: 'bn', bn: new BatchNorm(main.child(idx()), ndf * mult) });
      add({ kind: 'lrelu' });
    }
    const prev = mult;
    mult = Math.min(2 ** this.nLayers, 8);
    convLayer(ndf * prev, ndf * mult, 1, false);
    add({ kind: 'bn', bn: new BatchNorm(main.child(idx()), ndf * mult) });
    add({ kind: 'lrelu' });
    convLayer(ndf * mult, 1, 1, true);
  }

  /** Patch logits for frames: [N, H, W, Cin] -> [N, h, w, 1]. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.inChannels)
      throw new Error(`NLayerDiscriminator: expected [N, H, W, ${this.inChannels}] frames, got [${x.shape}]`);
    return tf.tidy(() => {
      let h = x;
      for (const l of this.layers) {
        if (l.kind === 'conv') h = l.conv.apply(h);
        else if (l.kind === 'bn') h = l.bn.apply(h);
        else h = tf.leakyRelu(h, LRELU);
      }
      return h;
    });
  }

  /** Per-frame patch logits for videos: [B, T, H, W, Cin] -> [B, T, h, w, 1] (time folded into batch). */
  applyVideo(x: tf.Tensor5D): tf.Tensor5D {
    return perFrame(x, (x4) => this.apply(x4));
  }

  /** Spatial size of the logit map for an H x W input. */
  static outputSize(h: number, w: number, nLayers = 3): [number, number] {
    const f = (s: number): number => {
      for (let i = 0; i < nLayers; i++) s = Math.floor((s + 2 - 4) / 2) + 1; // conv4 s2 p1
      return s - 2; // two conv4 s1 p1, each -1
    };
    return [f(h), f(w)];
  }
}

/** Hinge loss of the discriminator: (mean(relu(1 - real)) + mean(relu(1 + fake))) / 2. */
export function hingeDLoss(logitsReal: tf.Tensor, logitsFake: tf.Tensor): tf.Scalar {
  return tf.tidy(() =>
    tf.mul(tf.add(tf.mean(tf.relu(tf.sub(1, logitsReal))), tf.mean(tf.relu(tf.add(1, logitsFake)))), 0.5) as tf.Scalar,
  );
}

/** Generator's adversarial loss: -mean(D(fake)). */
export function generatorAdvLoss(logitsFake: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(logitsFake)) as tf.Scalar);
}

/**
 * taming-transformers' calculate_adaptive_weight: lambda = clamp(||g_nll|| / (||g_adv|| + 1e-4),
 * 0, 1e4) * discWeight, where both gradients are w.r.t. the decoder's last layer weight.
 */
export function adaptiveWeight(nllGradNorm: number, gGradNorm: number, discWeight: number): number {
  const r = nllGradNorm / (gGradNorm + 1e-4);
  return Math.min(Math.max(r, 0), 1e4) * discWeight;
}

/** L2 (Frobenius) norm of a gradient tensor, read back as a number. */
export function gradNorm(g: tf.Tensor): number {
  const n = tf.tidy(() => tf.sqrt(tf.sum(tf.square(g))));
  const v = n.dataSync()[0];
  n.dispose();
  return v;
}
