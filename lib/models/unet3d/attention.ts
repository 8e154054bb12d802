/**
 * Factorised video attention of the LVDM UNet (lvdm-facts.md section 3): spatial self-attention
 * within each frame, then temporal self-attention across frames at each spatial position, each
 * with GroupNorm, a q/k/v projection, multi-head scaled dot-product attention and a
 * zero-initialised output projection, added residually.
 *
 * Temporal attention uses relative position representations on keys and values (Shaw et al.,
 * 2018, "Self-Attention with Relative Position Representations", eqs. 3-4):
 *   e_ij = q_i . (k_j + a^K_ij) / sqrt(d),   z_i = sum_j softmax_j(e_ij) (v_j + a^V_ij),
 *   a_ij = w[clip(j - i, -L, L)],
 * i = query frame, j = key frame. (The public LVDM code adds the key term transposed, i.e.
 * q_j . w[clip(i - j)] at (i, j); `keyOrientation: 'transposed'` reproduces that for comparison.)
 *
 * Text-to-video blocks (lvdm-facts.md section 6) add, after the two self-attentions, spatial
 * cross-attention from every position of every frame to the text-encoder tokens (LDM's
 * "attn2": q from the video, k and v from the tokens, padding tokens masked out of the softmax) and
 * a feed-forward layer, each pre-LayerNorm, residual, with a zero-initialised output projection.
 *
 * Layout: activations enter as [N = B*T, H, W, C] (frames folded into the batch, as everywhere in
 * the UNet). The relative terms are computed with two constant 0/1 matrices, so everything is
 * matmuls, reshapes and rank-4 transposes (all with fast gradients on wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, init } from '../../nn/params';
import { GroupNorm, LayerNorm, Linear, quickGelu } from '../../nn/layers';
import { adaptiveGroupNorm, groupsFor } from './norm';
import { FUSED_KERNELS, fusedWithGrad, hasKernel } from '../../backend/fused';

export type RelPosOrientation = 'shaw' | 'transposed';

export interface RelativeTables {
  /** w^K: [2L + 1, d] */
  key: tf.Tensor2D;
  /** w^V: [2L + 1, d] */
  value: tf.Tensor2D;
  /** Maximum distance L (table row r <-> distance r - L). */
  maxDistance: number;
  keyOrientation?: RelPosOrientation;
  /** Multiplies the relative-key logits (default 1; the public code's d^-1/4 scaling is d^(1/4) here, q being pre-scaled by d^-1/2). */
  keyScale?: number;
}

const gatherCache = new Map<string, Float32Array>();

/**
 * Constant P of shape [T * (2L + 1), T * T]: P[(i, r), (i, j)] = 1 when r = clip(j - i, -L, L) + L.
 * A row-block i maps "query i against table row r" to "query i against key j".
 */
export function relativeGatherMatrix(frames: number, maxDistance: number): Float32Array {
  const key = `${frames}:${maxDistance}`;
  let p = gatherCache.get(key);
  if (!p) {
    const R = 2 * maxDistance + 1;
    p = new Float32Array(frames * R * frames * frames);
    for (let i = 0; i < frames; i++) {
      for (let j = 0; j < frames; j++) {
        const r = Math.max(-maxDistance, Math.min(maxDistance, j - i)) + maxDistance;
        p[(i * R + r) * frames * frames + i * frames + j] = 1;
      }
    }
    gatherCache.set(key, p);
  }
  return p;
}

/**
 * Scaled dot-product attention over batches of short sequences, with optional relative terms.
 * q: [M, S, d] (already multiplied by 1/sqrt(d)), kT: [M, d, Sk], v: [M, Sk, d] (Sk = S for
 * self-attention; relative terms need Sk = S); `bias`, broadcastable to [M, S, Sk] and added to the
 * logits, masks or biases key positions (a causal [S, S] mask, a padding mask [M, 1, Sk]).
 * Returns [M, S, d].
 */
export function attentionCore(q: tf.Tensor3D, kT: tf.Tensor3D, v: tf.Tensor3D, rel?: RelativeTables, bias?: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const [m, s, d] = q.shape;
    let logits: tf.Tensor3D = tf.matMul(q, kT); // [M, S, Sk]
    let p: tf.Tensor2D | null = null;
    if (rel) {
      const R = 2 * rel.maxDistance + 1;
      p = tf.tensor2d(relativeGatherMatrix(s, rel.maxDistance), [s * R, s * s]);
      // q_i . w_r for every table row r, then routed to (i, j) through P.
      const qw = tf.reshape(tf.matMul(tf.reshape(q, [m * s, d]), rel.key, false, true), [m, s * R]); // [M, S*R]
      let relLogits = tf.reshape(tf.matMul(qw, p), [m, s, s]) as tf.Tensor3D; // [M, S(i), S(j)]
      if (rel.keyOrientation === 'transposed') relLogits = tf.transpose(relLogits, [0, 2, 1]);
      if (rel.keyScale !== undefined && rel.keyScale !== 1) relLogits = tf.mul(relLogits, rel.keyScale);
      logits = tf.add(logits, relLogits);
    }
    if (bias) logits = tf.add(logits, bias);
    const attn = tf.softmax(logits); // [M, S, S]
    let out: tf.Tensor3D = tf.matMul(attn, v); // [M, S, d]
    if (rel && p) {
      const R = 2 * rel.maxDistance + 1;
      // sum_j attn_ij w[r(i, j)]: pool attention weights per table row, then one matmul with w^V.
      const pooled = tf.matMul(tf.reshape(attn, [m, s * s]), p, false, true); // [M, S*R]
      const relOut = tf.matMul(tf.reshape(pooled, [m * s, R]), rel.value); // [M*S, d]
      out = tf.add(out, tf.reshape(relOut, [m, s, d]));
    }
    return out;
  });
}

/**
 * [G*S, C] -> per-head sequences: [G*heads, S, d], or with `transposed` the key layout
 * [G*heads, d, S] (heads contiguous within C).
 */
export function splitHeads(y: tf.Tensor2D, groups: number, seqLen: number, heads: number, transposed = false): tf.Tensor3D {
  return tf.tidy(() => {
    const d = y.shape[1] / heads;
    const y4 = tf.reshape(y, [groups, seqLen, heads, d]);
    return tf.reshape(tf.transpose(y4, transposed ? [0, 2, 3, 1] : [0, 2, 1, 3]), transposed ? [groups * heads, d, seqLen] : [groups * heads, seqLen, d]) as tf.Tensor3D;
  });
}

/**
 * q/k/v projections from one Linear [C, 3C] (q | k | v, heads contiguous within each): one matmul
 * with bias for all three, q pre-scaled by 1/sqrt(d) through the weight's columns -> [G*S, 3C].
 */
function projectQkv(x: tf.Tensor2D, qkv: Linear, heads: number): tf.Tensor2D {
  const c = x.shape[1];
  const d = c / heads;
  const colScale = tf.concat([tf.fill([c], 1 / Math.sqrt(d)), tf.ones([2 * c])]); // [3C]
  const w = tf.mul(qkv.weight, colScale) as tf.Tensor2D;
  const b = tf.mul(qkv.bias as tf.Tensor1D, colScale) as tf.Tensor1D;
  return tf.fused.matMul({ a: x, b: w, bias: b }) as tf.Tensor2D;
}

/**
 * Multi-head self-attention of G sequences of S positions from their q/k/v projection y
 * [G*S, 3C] (projectQkv) -> [G*S, C] with the heads merged: one fused kernel forward and one
 * backward where the backend registers them (LvdmSelfAttention, lib/backend/fused.ts), else
 * attentionCore on the split heads. Both compute the same function.
 */
export function selfAttention(y: tf.Tensor2D, groups: number, seqLen: number, heads: number, rel?: RelativeTables): tf.Tensor2D {
  if (!hasKernel(FUSED_KERNELS.selfAttention)) {
    return tf.tidy(() => {
      const { q, kT, v } = splitQkv(y, groups, seqLen, heads);
      return mergeHeads(attentionCore(q, kT, v, rel), groups, heads);
    });
  }
  const attrs = {
    groups,
    seqLen,
    heads,
    maxDistance: rel?.maxDistance ?? 0,
    keyTransposed: rel?.keyOrientation === 'transposed',
    keyScale: rel?.keyScale ?? 1,
  };
  const inputs: tf.Tensor[] = rel ? [y, rel.key, rel.value] : [y];
  const named = (ts: tf.Tensor[]): tf.NamedTensorMap => (ts.length === 3 ? { y: ts[0], relKey: ts[1], relValue: ts[2] } : { y: ts[0] });
  const kernels = { forward: FUSED_KERNELS.selfAttention, grad: FUSED_KERNELS.selfAttentionGrad };
  return fusedWithGrad(inputs, named, kernels, attrs, { dyName: 'dOut', extras: ['attn'] }) as tf.Tensor2D;
}

/** y [G*S, 3C] -> per-head q [G*heads, S, d], kT [G*heads, d, S], v [G*heads, S, d]. */
function splitQkv(y: tf.Tensor2D, groups: number, seqLen: number, heads: number): { q: tf.Tensor3D; kT: tf.Tensor3D; v: tf.Tensor3D } {
  const d = y.shape[1] / (3 * heads);
  // [G, S, 3 * heads, d] -> [G, 3 * heads, S, d] -> q, k, v: [G, heads, S, d] each.
  const parts = tf.split(tf.transpose(tf.reshape(y, [groups, seqLen, 3 * heads, d]), [0, 2, 1, 3]), 3, 1);
  const q = tf.reshape(parts[0], [groups * heads, seqLen, d]) as tf.Tensor3D;
  const kT = tf.reshape(tf.transpose(parts[1], [0, 1, 3, 2]), [groups * heads, d, seqLen]) as tf.Tensor3D;
  const v = tf.reshape(parts[2], [groups * heads, seqLen, d]) as tf.Tensor3D;
  return { q, kT, v };
}

/** [G*heads, S, d] -> [G*S, C] */
export function mergeHeads(o: tf.Tensor3D, groups: number, heads: number): tf.Tensor2D {
  const [, s, d] = o.shape;
  return tf.reshape(tf.transpose(tf.reshape(o, [groups, heads, s, d]), [0, 2, 1, 3]), [groups * s, heads * d]) as tf.Tensor2D;
}

export interface AttentionOptions {
  heads: number;
  normGroups: number;
  eps?: number;
}

/** Self-attention among the H*W positions of each frame. Parameters: norm_s, qkv_s, proj_out_s. */
export class SpatialAttention {
  readonly norm: GroupNorm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly heads: number;

  constructor(scope: Scope, readonly channels: number, opts: AttentionOptions) {
    if (channels % opts.heads !== 0) throw new Error(`SpatialAttention '${scope.prefix}': ${channels} channels not divisible by ${opts.heads} heads`);
    this.heads = opts.heads;
    this.norm = new GroupNorm(scope.child('norm_s'), groupsFor(opts.normGroups, channels), channels, opts.eps ?? 1e-5);
    this.qkv = new Linear(scope.child('qkv_s'), channels, 3 * channels);
    this.proj = new Linear(scope.child('proj_out_s'), channels, channels, { weightInit: init.zeros(), biasInit: init.zeros() });
  }

  /** h: [N, H, W, C] -> h + attention, same shape. */
  apply(h: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, hh, ww, c] = h.shape;
      const s = hh * ww;
      const x = tf.reshape(adaptiveGroupNorm(h, this.norm), [n * s, c]) as tf.Tensor2D; // [N*S, C]
      const o = selfAttention(projectQkv(x, this.qkv, this.heads), n, s, this.heads); // [N*S, C]
      return tf.add(h, tf.reshape(this.proj.apply(o), [n, hh, ww, c]));
    });
  }
}

export interface TemporalAttentionOptions extends AttentionOptions {
  /** Relative positions on keys and values (Shaw et al.); false = no positional information. */
  relativePosition: boolean;
  /** L: distances are clipped to [-L, L] (table of 2L + 1 rows). */
  temporalLength: number;
  keyOrientation?: RelPosOrientation;
  /**
   * 'public': the public LVDM code's relative-key term (transposed and scaled by d^-1/4 instead of
   * d^-1/2), which its released weights were trained with (unet.relative_key, set by `lvdm import`).
   */
  relativeKey?: 'shaw' | 'public';
}

/**
 * Self-attention among the T frames at each spatial position. Parameters: norm_t, qkv_t,
 * proj_out_t, relative_position_{k,v}.embeddings_table (names as in the public LVDM code).
 */
export class TemporalAttention {
  readonly norm: GroupNorm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly relK: tf.Variable | null;
  readonly relV: tf.Variable | null;
  readonly heads: number;
  keyOrientation: RelPosOrientation;
  readonly keyScale: number;
  /** Name prefixes of this layer's parameters in the store (one per sub-module, each ending in '.'). */
  readonly paramPrefixes: string[];

  constructor(scope: Scope, readonly channels: number, readonly opts: TemporalAttentionOptions) {
    if (channels % opts.heads !== 0) throw new Error(`TemporalAttention '${scope.prefix}': ${channels} channels not divisible by ${opts.heads} heads`);
    this.heads = opts.heads;
    this.paramPrefixes = ['norm_t', 'qkv_t', 'proj_out_t', 'relative_position_k', 'relative_position_v'].map((n) => `${scope.child(n).prefix}.`);
    this.norm = new GroupNorm(scope.child('norm_t'), groupsFor(opts.normGroups, channels), channels, opts.eps ?? 1e-5);
    this.qkv = new Linear(scope.child('qkv_t'), channels, 3 * channels);
    this.proj = new Linear(scope.child('proj_out_t'), channels, channels, { weightInit: init.zeros(), biasInit: init.zeros() });
    const d = channels / opts.heads;
    const rows = 2 * opts.temporalLength + 1;
    if (opts.relativePosition) {
      this.relK = scope.child('relative_position_k').param('embeddings_table', [rows, d], init.xavierUniform(d, rows));
      this.relV = scope.child('relative_position_v').param('embeddings_table', [rows, d], init.xavierUniform(d, rows));
    } else {
      this.relK = null;
      this.relV = null;
    }
    this.keyOrientation = opts.relativeKey === 'public' ? 'transposed' : (opts.keyOrientation ?? 'shaw');
    this.keyScale = opts.relativeKey === 'public' ? d ** 0.25 : 1;
  }

  /** h: [B*T, H, W, C] with `frames` = T -> h + attention over T, same shape. */
  apply(h: tf.Tensor4D, frames: number): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, hh, ww, c] = h.shape;
      if (n % frames !== 0) throw new Error(`TemporalAttention: batch ${n} is not a multiple of ${frames} frames`);
      const b = n / frames;
      const s = hh * ww;
      // [B, T, HW, C] -> [B, HW, T, C]: one sequence of T frames per (b, position).
      const seq = tf.transpose(tf.reshape(h, [b, frames, s, c]), [0, 2, 1, 3]); // [B, HW, T, C]
      const g = b * s;
      const x = tf.reshape(adaptiveGroupNorm(tf.reshape(seq, [g, frames, c]), this.norm), [g * frames, c]) as tf.Tensor2D;
      const rel: RelativeTables | undefined =
        this.relK && this.relV
          ? { key: this.relK as tf.Tensor2D, value: this.relV as tf.Tensor2D, maxDistance: this.opts.temporalLength, keyOrientation: this.keyOrientation, keyScale: this.keyScale }
          : undefined;
      const o = this.proj.apply(selfAttention(projectQkv(x, this.qkv, this.heads), g, frames, this.heads, rel)); // [B*HW*T, C]
      const back = tf.transpose(tf.reshape(o, [b, s, frames, c]), [0, 2, 1, 3]); // [B, T, HW, C]
      return tf.add(h, tf.reshape(back, [n, hh, ww, c]));
    });
  }
}

/** Text tokens a video attends to: one sequence per video. */
export interface TextContext {
  /** [B, L, D] token features (e.g. CLIP's last hidden state). */
  context: tf.Tensor3D;
  /** [B, L]: 1 = token, 0 = padding (excluded from the softmax); absent = every token counts. */
  mask?: tf.Tensor2D;
}

/** Logit bias of a padding mask: [B, L] (1 = keep) -> [B * repeat, 1, L] with 0 / -1e9. */
export function paddingBias(mask: tf.Tensor2D, repeat: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, l] = mask.shape;
    const neg = tf.mul(tf.sub(1, tf.reshape(mask, [b, 1, l])), -1e9); // [B, 1, L]
    return tf.reshape(tf.mul(neg, tf.ones([1, repeat, 1])), [b * repeat, 1, l]) as tf.Tensor3D;
  });
}

/**
 * Spatial cross-attention to text tokens (LDM's CrossAttention, "attn2"): x = LN(h),
 * q = x W_q, k = c W_k, v = c W_v (no biases), h + softmax(q k^T / sqrt(d) + padding) v W_out, with
 * W_out zero-initialised. Every frame of a video attends to that video's tokens.
 * Parameters: norm_c, attn_c.{to_q, to_k, to_v, to_out}.
 */
export class CrossAttention {
  readonly norm: LayerNorm;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: Linear;

  constructor(scope: Scope, readonly channels: number, readonly contextDim: number, readonly heads: number) {
    if (channels % heads !== 0) throw new Error(`CrossAttention '${scope.prefix}': ${channels} channels not divisible by ${heads} heads`);
    this.norm = new LayerNorm(scope.child('norm_c'), channels);
    const a = scope.child('attn_c');
    this.toQ = new Linear(a.child('to_q'), channels, channels, { bias: false });
    this.toK = new Linear(a.child('to_k'), contextDim, channels, { bias: false });
    this.toV = new Linear(a.child('to_v'), contextDim, channels, { bias: false });
    this.toOut = new Linear(a.child('to_out'), channels, channels, { weightInit: init.zeros(), biasInit: init.zeros() });
  }

  /** h: [B*T, H, W, C] with `frames` = T; text.context [B, L, D] -> h + attention, same shape. */
  apply(h: tf.Tensor4D, frames: number, text: TextContext): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, hh, ww, c] = h.shape;
      const [b, l, dc] = text.context.shape;
      if (dc !== this.contextDim) throw new Error(`CrossAttention: context has ${dc} channels, expected ${this.contextDim} (unet.context_dim)`);
      if (b * frames !== n) throw new Error(`CrossAttention: context batch ${b} does not match ${n / frames} videos of ${frames} frames`);
      if (text.mask && (text.mask.shape[0] !== b || text.mask.shape[1] !== l))
        throw new Error(`CrossAttention: context_mask has shape [${text.mask.shape}], expected [${b}, ${l}]`);
      const s = hh * ww;
      const d = c / this.heads;
      const x = this.norm.apply(tf.reshape(h, [n * s, c]) as tf.Tensor2D);
      const q = splitHeads(tf.mul(this.toQ.apply(x), 1 / Math.sqrt(d)) as tf.Tensor2D, n, s, this.heads);
      // Tokens repeated per frame: [B, L, D] -> [B*T*L, D].
      const perFrame = tf.reshape(tf.mul(tf.reshape(text.context, [b, 1, l * dc]), tf.ones([1, frames, 1])), [n * l, dc]) as tf.Tensor2D;
      const kT = splitHeads(this.toK.apply(perFrame), n, l, this.heads, true);
      const v = splitHeads(this.toV.apply(perFrame), n, l, this.heads);
      const bias = text.mask ? paddingBias(text.mask, frames * this.heads) : undefined;
      const o = mergeHeads(attentionCore(q, kT, v, undefined, bias), n, this.heads); // [N*S, C]
      return tf.add(h, tf.reshape(this.toOut.apply(o), [n, hh, ww, c]));
    });
  }
}

/** Position-wise feed-forward: h + W2 gelu(W1 LN(h)) (quick_gelu; W2 zero-initialised). Parameters: norm_ff, ff.0, ff.2. */
export class FeedForward {
  readonly norm: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(scope: Scope, readonly channels: number, mult: number) {
    this.norm = new LayerNorm(scope.child('norm_ff'), channels);
    this.fc1 = new Linear(scope.child('ff').child(0), channels, mult * channels);
    this.fc2 = new Linear(scope.child('ff').child(2), mult * channels, channels, { weightInit: init.zeros(), biasInit: init.zeros() });
  }

  apply<T extends tf.Tensor>(h: T): T {
    return tf.tidy(() => tf.add(h, this.fc2.apply(quickGelu(this.fc1.apply(this.norm.apply(h))))) as T);
  }
}

export interface STAttentionBlockOptions extends TemporalAttentionOptions {
  temporal: boolean;
  /** Text-to-video: channels of the text tokens; adds cross-attention. */
  contextDim?: number;
  /** Feed-forward hidden size as a multiple of the channels (0 / absent: none). */
  ffMult?: number;
}

/**
 * LVDM's attention block: spatial then temporal self-attention (temporal optional); in
 * text-to-video models then cross-attention to the text tokens and a feed-forward layer.
 */
export class STAttentionBlock {
  readonly spatial: SpatialAttention;
  readonly temporal: TemporalAttention | null;
  readonly cross: CrossAttention | null;
  readonly ff: FeedForward | null;

  constructor(scope: Scope, channels: number, opts: STAttentionBlockOptions) {
    this.spatial = new SpatialAttention(scope, channels, opts);
    this.temporal = opts.temporal ? new TemporalAttention(scope, channels, opts) : null;
    this.cross = opts.contextDim ? new CrossAttention(scope, channels, opts.contextDim, opts.heads) : null;
    this.ff = opts.ffMult ? new FeedForward(scope, channels, opts.ffMult) : null;
  }

  /** `text` is required when the block has cross-attention. */
  apply(h: tf.Tensor4D, frames: number, text?: TextContext): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.spatial.apply(h);
      if (this.temporal) y = this.temporal.apply(y, frames);
      if (this.cross) {
        if (!text) throw new Error(`unet: this is a text-conditioned model: cond.context ([B, L, ${this.cross.contextDim}] text tokens) is required`);
        y = this.cross.apply(y, frames, text);
      }
      if (this.ff) y = this.ff.apply(y);
      return y;
    });
  }
}
