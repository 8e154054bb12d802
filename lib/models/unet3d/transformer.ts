/**
 * The public LVDM text-to-video code's attention block (lvdm-facts.md section 6;
 * attention_temporal.SpatialTemporalTransformer + BasicTransformerBlockST, after LDM's
 * SpatialTransformer, Rombach et al. 2022), built when `unet.attention_block: st_transformer`:
 *
 *   x = proj_in(GN(h))                                   (GroupNorm(32, eps 1e-6), 1x1 projection)
 *   per transformer block (transformer_depth of them), every step pre-LayerNorm and residual:
 *     attn1      spatial self-attention within each frame                 (norm1)
 *     attn1_tmp  temporal self-attention, relative positions (Shaw et al.) (norm4)
 *     attn2      spatial cross-attention to the text tokens               (norm2)
 *     attn2_tmp  a second temporal self-attention                         (norm5)
 *     ff         GEGLU feed-forward: W2 (a * gelu(g)), [a, g] = W1 x      (norm3; Shazeer 2020)
 *   h + proj_out(x)                                      (proj_out zero-initialised)
 *
 * q/k/v projections have no bias, output projections have one (`to_out.0`), scale d^-1/2. The
 * parameter names are the public ones, so the importer maps them one to one. Layout: [B*T, H, W, C]
 * (frames folded into the batch) as everywhere in the UNet.
 */
import * as tf from '@tensorflow/tfjs';
import { Scope, init } from '../../nn/params';
import { GroupNorm, LayerNorm, Linear } from '../../nn/layers';
import { RelativeTables, TextContext, attentionCore, mergeHeads, paddingBias, splitHeads } from './attention';
import { adaptiveGroupNorm, clipGroupNorm, groupsFor } from './norm';

/** Exact GELU, x * Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (Hendrycks & Gimpel, 2016), as torch's F.gelu. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T);
}

export interface TransformerOptions {
  heads: number;
  /** Channels of the text tokens (attn2's k/v input). */
  contextDim: number;
  /** GEGLU hidden size = ffMult x channels (the public code: 4). */
  ffMult: number;
  depth: number;
  normGroups: number;
  /** GroupNorm statistics over the whole clip (the public code's GroupNorm on [B, C, T, H, W]). */
  clipNorm: boolean;
  relativePosition: boolean;
  temporalLength: number;
  /** 'shaw' (the public text-to-video code's TemporalCrossAttention) or 'public' (STAttentionBlock's transposed form). */
  relativeKey: 'shaw' | 'public';
}

/** LDM's CrossAttention / LVDM's TemporalCrossAttention: to_q, to_k, to_v (no bias), to_out.0, optional relative tables. */
class Attention {
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: Linear;
  private readonly relK: tf.Variable | null = null;
  private readonly relV: tf.Variable | null = null;

  constructor(scope: Scope, dim: number, contextDim: number, readonly heads: number, private readonly opts?: Pick<TransformerOptions, 'temporalLength' | 'relativeKey'>, zeroOut = false) {
    this.toQ = new Linear(scope.child('to_q'), dim, dim, { bias: false });
    this.toK = new Linear(scope.child('to_k'), contextDim, dim, { bias: false });
    this.toV = new Linear(scope.child('to_v'), contextDim, dim, { bias: false });
    this.toOut = new Linear(scope.child('to_out').child(0), dim, dim, zeroOut ? { weightInit: init.zeros(), biasInit: init.zeros() } : {});
    if (opts) {
      const d = dim / heads;
      const rows = 2 * opts.temporalLength + 1;
      this.relK = scope.child('relative_position_k').param('embeddings_table', [rows, d], init.xavierUniform(d, rows));
      this.relV = scope.child('relative_position_v').param('embeddings_table', [rows, d], init.xavierUniform(d, rows));
    }
  }

  /** x: [G*S, C] (G sequences of S queries); ctx: [G*Sk, Cc] keys/values (x itself when absent); bias broadcast to [G*heads, S, Sk]. */
  apply(x: tf.Tensor2D, groups: number, s: number, ctx?: { tokens: tf.Tensor2D; length: number; bias?: tf.Tensor }): tf.Tensor2D {
    return tf.tidy(() => {
      const d = x.shape[1] / this.heads;
      const kv = ctx?.tokens ?? x;
      const sk = ctx?.length ?? s;
      const q = splitHeads(tf.mul(this.toQ.apply(x), 1 / Math.sqrt(d)) as tf.Tensor2D, groups, s, this.heads);
      const kT = splitHeads(this.toK.apply(kv), groups, sk, this.heads, true);
      const v = splitHeads(this.toV.apply(kv), groups, sk, this.heads);
      let rel: RelativeTables | undefined;
      if (this.relK && this.relV && this.opts) {
        const pub = this.opts.relativeKey === 'public';
        rel = { key: this.relK as tf.Tensor2D, value: this.relV as tf.Tensor2D, maxDistance: this.opts.temporalLength, keyOrientation: pub ? 'transposed' : 'shaw', keyScale: pub ? d ** 0.25 : 1 };
      }
      return this.toOut.apply(mergeHeads(attentionCore(q, kT, v, rel, ctx?.bias), groups, this.heads));
    });
  }
}

/** [B*T*S, C] rows ordered (b, t, s) <-> (b, s, t). */
function swapTS(x: tf.Tensor2D, b: number, first: number, second: number): tf.Tensor2D {
  return tf.tidy(() => {
    const c = x.shape[1];
    return tf.reshape(tf.transpose(tf.reshape(x, [b, first, second, c]), [0, 2, 1, 3]), [b * first * second, c]) as tf.Tensor2D;
  });
}

/** BasicTransformerBlockST (names attn1, attn1_tmp, attn2, attn2_tmp, ff.net.{0.proj,2}, norm1..norm5). */
class TransformerBlockST {
  private readonly attn1: Attention;
  private readonly attn1Tmp: Attention;
  private readonly attn2: Attention;
  private readonly attn2Tmp: Attention;
  private readonly ffIn: Linear;
  private readonly ffOut: Linear;
  private readonly norms: LayerNorm[];

  constructor(scope: Scope, readonly dim: number, readonly opts: TransformerOptions) {
    const h = opts.heads;
    const rel = opts.relativePosition ? opts : undefined;
    this.attn1 = new Attention(scope.child('attn1'), dim, dim, h);
    this.attn2 = new Attention(scope.child('attn2'), dim, opts.contextDim, h);
    const hidden = opts.ffMult * dim;
    this.ffIn = new Linear(scope.child('ff').child('net').child(0).child('proj'), dim, 2 * hidden);
    this.ffOut = new Linear(scope.child('ff').child('net').child(2), hidden, dim);
    // norm1 (spatial), norm2 (cross), norm3 (ff), norm4 / norm5 (the temporal attentions).
    this.norms = [1, 2, 3, 4, 5].map((i) => new LayerNorm(scope.child(`norm${i}`), dim));
    this.attn1Tmp = new Attention(scope.child('attn1_tmp'), dim, dim, h, rel, true);
    this.attn2Tmp = new Attention(scope.child('attn2_tmp'), dim, dim, h, rel, true);
  }

  /** x: [B*T*S, C] rows (b, t, s); tokens: [B*T*L, D] (each frame's copy of its video's tokens). */
  apply(x: tf.Tensor2D, b: number, frames: number, s: number, text: { tokens: tf.Tensor2D; length: number; bias?: tf.Tensor }): tf.Tensor2D {
    return tf.tidy(() => {
      const [n1, n2, n3, n4, n5] = this.norms;
      const n = b * frames;
      let y = tf.add(x, this.attn1.apply(n1.apply(x), n, s)) as tf.Tensor2D;
      let yt = swapTS(y, b, frames, s); // rows (b, s, t)
      yt = tf.add(yt, this.attn1Tmp.apply(n4.apply(yt), b * s, frames));
      y = swapTS(yt, b, s, frames);
      y = tf.add(y, this.attn2.apply(n2.apply(y), n, s, text));
      yt = swapTS(y, b, frames, s);
      yt = tf.add(yt, this.attn2Tmp.apply(n5.apply(yt), b * s, frames));
      const [a, g] = tf.split(this.ffIn.apply(n3.apply(yt)), 2, 1);
      yt = tf.add(yt, this.ffOut.apply(tf.mul(a, gelu(g)) as tf.Tensor2D));
      return swapTS(yt, b, s, frames);
    });
  }
}

/** SpatialTemporalTransformer: norm, proj_in, transformer_blocks.{d}, proj_out (1x1 projections held as [in, out] matrices). */
export class SpatialTemporalTransformer {
  readonly norm: GroupNorm;
  readonly projIn: Linear;
  readonly projOut: Linear;
  private readonly blocks: TransformerBlockST[] = [];

  constructor(scope: Scope, readonly channels: number, readonly opts: TransformerOptions) {
    if (channels % opts.heads !== 0) throw new Error(`SpatialTemporalTransformer '${scope.prefix}': ${channels} channels not divisible by ${opts.heads} heads`);
    if (opts.ffMult < 1) throw new Error(`unet: attention_block 'st_transformer' needs ff_mult >= 1 (its GEGLU feed-forward; the public code uses 4)`);
    this.norm = new GroupNorm(scope.child('norm'), groupsFor(opts.normGroups, channels), channels, 1e-6);
    this.projIn = new Linear(scope.child('proj_in'), channels, channels);
    const tb = scope.child('transformer_blocks');
    for (let d = 0; d < opts.depth; d++) this.blocks.push(new TransformerBlockST(tb.child(d), channels, opts));
    this.projOut = new Linear(scope.child('proj_out'), channels, channels, { weightInit: init.zeros(), biasInit: init.zeros() });
  }

  /** h: [B*T, H, W, C] with `frames` = T; text.context [B, L, contextDim] (required) -> same shape as h. */
  apply(h: tf.Tensor4D, frames: number, text?: TextContext): tf.Tensor4D {
    return tf.tidy(() => {
      if (!text) throw new Error(`unet: this is a text-conditioned model: cond.context ([B, L, ${this.opts.contextDim}] text tokens) is required`);
      const [n, hh, ww, c] = h.shape;
      const [b, l, dc] = text.context.shape;
      if (dc !== this.opts.contextDim) throw new Error(`SpatialTemporalTransformer: context has ${dc} channels, expected ${this.opts.contextDim} (unet.context_dim)`);
      if (b * frames !== n) throw new Error(`SpatialTemporalTransformer: context batch ${b} does not match ${n / frames} videos of ${frames} frames`);
      const s = hh * ww;
      const normed = this.opts.clipNorm ? clipGroupNorm(h, this.norm, frames) : adaptiveGroupNorm(h, this.norm);
      let x = this.projIn.apply(tf.reshape(normed, [n * s, c]) as tf.Tensor2D);
      // Tokens repeated per frame: [B, L, D] -> [B*T*L, D].
      const tokens = tf.reshape(tf.mul(tf.reshape(text.context, [b, 1, l * dc]), tf.ones([1, frames, 1])), [n * l, dc]) as tf.Tensor2D;
      const bias = text.mask ? paddingBias(text.mask, frames * this.opts.heads) : undefined;
      for (const block of this.blocks) x = block.apply(x, b, frames, s, { tokens, length: l, bias });
      return tf.add(h, tf.reshape(this.projOut.apply(x), [n, hh, ww, c]));
    });
  }
}
