// Fused kernels a backend may provide (issue 10). Each replaces a chain of small tfjs kernels with
// one call where a backend registers it (the 'libtorch' backend does); the callers in lib/models
// and lib/train check `hasKernel` and otherwise run their composite tfjs ops, so every backend
// computes the same function. Inputs and attributes of each kernel:
//   LvdmAdaGroupNorm      x [N, ..., C], gamma [C], beta [C], scale? [N, C], shift? [N, C];
//                         attrs groups, eps, silu -> y, mean [N, G], rstd [N, G]
//   LvdmAdaGroupNormGrad  dy, x, gamma, beta, mean, rstd, scale?, shift?; attrs groups, silu
//                         -> dx, dgamma, dbeta, dscale?, dshift?
//   LvdmAdamStep          p0.., m0.., v0.., g0.. (k each); attrs k, beta1, beta2, eps, stepSize,
//                         c2, decoupled, l2 -> p'0.., m'0.., v'0..
//   LvdmEmaUpdate         s0.., p0.. (k each); attrs k, decay -> s'0..
//   LvdmSumSquares        x0.. -> scalar sum of squares
//   LvdmSelfAttention     y [G*S, 3C] (q | k | v projections, q pre-scaled by 1/sqrt(d)),
//                         relKey? [2L+1, d], relValue? [2L+1, d]; attrs groups, seqLen, heads,
//                         maxDistance, keyTransposed, keyScale -> out [G*S, C] (heads merged),
//                         attn [G*heads, S, S] (softmax weights, kept for the gradient)
//   LvdmSelfAttentionGrad dOut, y, attn, relKey?, relValue?; same attrs -> dy, dRelKey?, dRelValue?
//   LvdmConv2DGrad        dy, x, filter; attrs strides, pad (as tf.conv2d), hasBias
//                         -> dx, dfilter, dbias? (one backward call instead of two or three)
import * as tf from '@tensorflow/tfjs';

export const FUSED_KERNELS = {
  adaGroupNorm: 'LvdmAdaGroupNorm',
  adaGroupNormGrad: 'LvdmAdaGroupNormGrad',
  adamStep: 'LvdmAdamStep',
  emaUpdate: 'LvdmEmaUpdate',
  sumSquares: 'LvdmSumSquares',
  selfAttention: 'LvdmSelfAttention',
  selfAttentionGrad: 'LvdmSelfAttentionGrad',
  conv2dGrad: 'LvdmConv2DGrad',
} as const;

/** Env LVDM_FUSED=0 turns the fused kernels off (for comparisons and benchmarks). */
function fusedEnabled(): boolean {
  return process.env.LVDM_FUSED !== '0';
}

/** True when the active backend registers kernel `name` (and fused kernels are not turned off). */
export function hasKernel(name: string): boolean {
  return fusedEnabled() && tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** Runs a registered kernel through the engine (outside any gradient: callers wrap it in customGrad). */
export function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor[] {
  const out = tf.engine().runKernel(name, inputs, attrs);
  return Array.isArray(out) ? out : [out];
}

/** Named inputs for a list kernel: `prefix0`, `prefix1`, ... in order. */
export function listInputs(into: tf.NamedTensorMap, prefix: string, xs: readonly tf.Tensor[]): tf.NamedTensorMap {
  xs.forEach((x, i) => (into[`${prefix}${i}`] = x));
  return into;
}

/**
 * A fused forward kernel whose gradient is its paired gradient kernel, as a differentiable op.
 * `named` maps the inputs to the kernels' input names. The forward kernel returns the value, then
 * tensors the gradient needs (`extras`, passed to it under those names); the gradient kernel also
 * gets the upstream gradient under `dyName` and returns one gradient per input, in input order.
 */
export function fusedWithGrad(
  inputs: tf.Tensor[],
  named: (ts: tf.Tensor[]) => tf.NamedTensorMap,
  kernels: { forward: string; grad: string },
  attrs: tf.NamedAttrMap,
  gradInputs: { dyName: string; extras: string[] },
): tf.Tensor {
  const n = inputs.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const ins = args.slice(0, n) as tf.Tensor[];
    const save = args[n] as tf.GradSaveFunc;
    const [value, ...extras] = runKernel(kernels.forward, named(ins), attrs);
    save([...ins, ...extras]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const m = named(saved.slice(0, n));
        m[gradInputs.dyName] = dy;
        gradInputs.extras.forEach((name, i) => (m[name] = saved[n + i]));
        return runKernel(kernels.grad, m, attrs);
      },
    };
  });
  return op(...inputs);
}
