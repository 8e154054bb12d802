/**
 * Residual block with timestep conditioning (DDPM/ADM ResBlock; LVDM openaimodel3d):
 *   h = conv(silu(GN(x)));  h = GN(h) * (1 + scale) + shift  (scale-shift norm, "AdaGN")
 *   or h = GN(h + emb) (plain);  h = zero_conv(dropout(silu(h)));  out = skip(x) + h
 * with per-frame 1x3x3 convolutions (3x3 on frames folded into the batch) and (scale, shift)
 * projected from the per-frame embedding. Parameter names follow the public LVDM checkpoint:
 * in_layers.{0,2}, emb_layers.1, out_layers.{0,3}, skip_connection.
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, init } from '../../nn/params';
import { Conv2d, GroupNorm, Linear } from '../../nn/layers';
import { Rng } from '../../nn/rng';
import { adaptiveGroupNorm, clipGroupNorm, groupsFor } from './norm';
import { FUSED_KERNELS, hasKernel, runKernel } from '../../backend/fused';

/**
 * Per-frame convolution of a Conv2d's weights with the bias fused into the kernel (one pass less
 * per layer); stride 1 uses 'same' padding (identical to PyTorch's padding k // 2), strided layers
 * pad explicitly like PyTorch.
 */
export function frameConv(conv: Conv2d, x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const same = conv.stride === 1 && conv.kernel % 2 === 1 && conv.padding === Math.floor(conv.kernel / 2);
    const p = conv.padding;
    const xin = same || p === 0 ? x : (tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]) as tf.Tensor4D);
    const pad = same && conv.kernel > 1 ? 'same' : 'valid';
    const filter = conv.weight as tf.Tensor4D;
    const bias = conv.bias ?? undefined;
    if (!hasKernel(FUSED_KERNELS.conv2dGrad)) return tf.fused.conv2d({ x: xin, filter, strides: conv.stride, pad, bias });
    // Where the backend has it, the gradient is one fused kernel (dx, dfilter, dbias together).
    const attrs = { strides: conv.stride, pad, hasBias: bias !== undefined };
    const inputs: tf.Tensor[] = bias ? [xin, filter, bias] : [xin, filter];
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xs, w, b] = args.slice(0, inputs.length) as tf.Tensor[];
      const save = args[inputs.length] as tf.GradSaveFunc;
      save([xs, w]);
      return {
        value: tf.fused.conv2d({ x: xs as tf.Tensor4D, filter: w as tf.Tensor4D, strides: conv.stride, pad, bias: b }),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel(FUSED_KERNELS.conv2dGrad, { dy, x: saved[0], filter: saved[1] }, attrs),
      };
    });
    return op(...inputs) as tf.Tensor4D;
  });
}

/** Inverted dropout with a mask drawn from `rng` (training only). */
export function dropout<T extends tf.Tensor>(x: T, rate: number, rng: Rng): T {
  if (rate <= 0) return x;
  return tf.tidy(() => {
    const keep = 1 - rate;
    const u = rng.uniformArray(x.size);
    const m = new Float32Array(x.size);
    for (let i = 0; i < m.length; i++) m[i] = u[i] < keep ? 1 / keep : 0;
    return tf.mul(x, tf.tensor(m, x.shape)) as T;
  });
}

export interface ResBlockOptions {
  embChannels: number;
  scaleShiftNorm: boolean;
  normGroups: number;
  dropout: number;
  eps?: number;
}

export interface ForwardContext {
  /** silu(emb) per folded frame: [N, E] (shared by every block). */
  embAct: tf.Tensor2D;
  /** Frames per clip when GroupNorm statistics span the clip (unet.norm_scope 'clip'); absent = per frame. */
  clipNormFrames?: number;
  /** Training-time randomness (dropout); absent at inference. */
  rng?: Rng;
}

export class ResBlock {
  readonly inNorm: GroupNorm;
  readonly inConv: Conv2d;
  readonly embProj: Linear;
  readonly outNorm: GroupNorm;
  readonly outConv: Conv2d;
  readonly skip: Conv2d | null;

  constructor(scope: Scope, readonly cin: number, readonly cout: number, readonly opts: ResBlockOptions) {
    const eps = opts.eps ?? 1e-5;
    this.inNorm = new GroupNorm(scope.child('in_layers').child(0), groupsFor(opts.normGroups, cin), cin, eps);
    this.inConv = new Conv2d(scope.child('in_layers').child(2), cin, cout, 3);
    this.embProj = new Linear(scope.child('emb_layers').child(1), opts.embChannels, opts.scaleShiftNorm ? 2 * cout : cout);
    this.outNorm = new GroupNorm(scope.child('out_layers').child(0), groupsFor(opts.normGroups, cout), cout, eps);
    this.outConv = new Conv2d(scope.child('out_layers').child(3), cout, cout, 3, { weightInit: init.zeros(), biasInit: init.zeros() });
    this.skip = cin === cout ? null : new Conv2d(scope.child('skip_connection'), cin, cout, 1, { padding: 0 });
  }

  /** x: [N, H, W, Cin] -> [N, H, W, Cout]; ctx.embAct has N rows (one per folded frame). */
  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return tf.tidy(() => {
      const n = x.shape[0];
      const f = ctx.clipNormFrames;
      // GN [+ AdaGN scale/shift] followed by SiLU, fused where the backend has the kernel.
      const gnSilu = (y: tf.Tensor4D, norm: GroupNorm, sc?: tf.Tensor2D, sh?: tf.Tensor2D): tf.Tensor4D =>
        f ? clipGroupNorm(y, norm, f, sc, sh, { silu: true }) : adaptiveGroupNorm(y, norm, sc, sh, { silu: true });
      let h = frameConv(this.inConv, gnSilu(x, this.inNorm)); // [N, H, W, Cout]
      const e = this.embProj.apply(ctx.embAct); // [N, 2*Cout] or [N, Cout]
      if (this.opts.scaleShiftNorm) {
        const scale = tf.slice(e, [0, 0], [n, this.cout]);
        const shift = tf.slice(e, [0, this.cout], [n, this.cout]);
        h = gnSilu(h, this.outNorm, scale, shift);
      } else {
        h = gnSilu(tf.add(h, tf.reshape(e, [n, 1, 1, this.cout])) as tf.Tensor4D, this.outNorm);
      }
      if (ctx.rng && this.opts.dropout > 0) h = dropout(h, this.opts.dropout, ctx.rng);
      h = frameConv(this.outConv, h);
      return tf.add(this.skip ? frameConv(this.skip, x) : x, h);
    });
  }
}
