/**
 * MotionNet: the small video classifier behind the `synthetic-motion` proxy extractor.
 *
 * Input [B, T, 32, 32, 3] in [-1, 1] (any T >= 1), to which the frame differences x_t - x_{t-1}
 * (0 for the first frame) are appended as three more channels. Three 3x3x3 convolutions with ReLU
 * (strides 1x2x2, 1x2x2, 2x2x2; TF "SAME" zero padding done inside tf.conv3d, which keeps the
 * backward pass free of 5-D pad/slice ops that are slow on wasm), then the mean over time and space gives the
 * 128-d feature; a linear head classifies it. Trained on the project's synthetic videos
 * (metrics/proxy/train.ts) to tell the 12 synthetic-UCF actions, the shapes / sky / taichi
 * families, and temporally shuffled clips apart, so its features respond to content, motion
 * and temporal coherence.
 */
import * as tf from '@tensorflow/tfjs';
import { Linear, Triple } from '../../lib/nn/layers';
import { ParamStore, Scope, init } from '../../lib/nn/params';
import { Rng } from '../../lib/nn/rng';
import { SYNTHETIC_UCF_CLASSES } from '../../data/synthetic';

export const PROXY_SIZE = 32;
export const PROXY_CHANNELS: [number, number, number] = [32, 64, 128];

/** Class names: the 12 synthetic-UCF actions, three families, and 'shuffled' (frames permuted). */
export const PROXY_CLASSES: readonly string[] = [...SYNTHETIC_UCF_CLASSES, 'family:shapes', 'family:sky', 'family:taichi', 'shuffled'];

/** 3x3x3 convolution with bias and TF SAME padding. Weight [3, 3, 3, Cin, Cout]. */
class SameConv3d {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  constructor(scope: Scope, cin: number, cout: number, readonly stride: Triple) {
    this.weight = scope.param('weight', [3, 3, 3, cin, cout], init.normal(Math.sqrt(2 / (27 * cin))));
    this.bias = scope.param('bias', [cout], init.zeros());
  }
  apply(x: tf.Tensor5D): tf.Tensor5D {
    const y = tf.conv3d(x, this.weight as tf.Tensor5D, this.stride, 'same'); // [B, T', H', W', Cout]
    // Bias added on a 2-D view: its gradient is then a plain column sum (fast on wasm).
    const c = y.shape[4];
    return tf.reshape(tf.add(tf.reshape(y, [-1, c]), this.bias), y.shape);
  }
}

export class MotionNet {
  readonly c1: SameConv3d;
  readonly c2: SameConv3d;
  readonly c3: SameConv3d;
  readonly head: Linear;
  readonly featureDim = PROXY_CHANNELS[2];

  constructor(scope: Scope, readonly numClasses = PROXY_CLASSES.length) {
    const [a, b, c] = PROXY_CHANNELS;
    this.c1 = new SameConv3d(scope.child('c1'), 6, a, [1, 2, 2]);
    this.c2 = new SameConv3d(scope.child('c2'), a, b, [1, 2, 2]);
    this.c3 = new SameConv3d(scope.child('c3'), b, c, [2, 2, 2]);
    this.head = new Linear(scope.child('head'), c, numClasses);
  }

  /** [B, T, 32, 32, 3] -> [B, 128] */
  features(x: tf.Tensor5D): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, t, h, w, c] = x.shape;
      // Frame differences on a rank-3 view (rank-5 slices are slow on wasm).
      const flat = tf.reshape(x, [b, t, h * w * c]); // [B, T, HWC]
      const diff = t > 1 ? tf.sub(tf.slice(flat, [0, 1, 0], [b, t - 1, h * w * c]), tf.slice(flat, [0, 0, 0], [b, t - 1, h * w * c])) : null; // [B, T-1, HWC]
      const d = diff ? tf.concat([tf.zeros([b, 1, h * w * c]), diff], 1) : tf.zerosLike(flat); // [B, T, HWC]
      const xd = tf.concat([x, tf.reshape(d, [b, t, h, w, c]) as tf.Tensor5D], 4); // [B, T, 32, 32, 6]
      const h1 = tf.relu(this.c1.apply(xd)); // [B, T, 16, 16, 32]
      const h2 = tf.relu(this.c2.apply(h1)); // [B, T, 8, 8, 64]
      const h3 = tf.relu(this.c3.apply(h2)); // [B, ceil(T/2), 4, 4, 128]
      return tf.mean(h3, [1, 2, 3]) as tf.Tensor2D; // [B, 128]
    });
  }

  /** [B, 128] -> [B, classes] */
  logits(f: tf.Tensor2D): tf.Tensor2D {
    return this.head.apply(f);
  }
}

/** A MotionNet with its own parameter store (initialised from `seed`; load trained weights into `store`). */
export function createMotionNet(seed = 0): { store: ParamStore; net: MotionNet } {
  const store = new ParamStore(new Rng(seed));
  const net = new MotionNet(new Scope(store));
  return { store, net };
}
