/**
 * UNet3D: LVDM's noise-prediction network (lvdm-facts.md section 3; He et al. 2022, Sec. 3.2;
 * structure of ADM/LDM's UNetModel with per-frame 1x3x3 convolutions, spatial-only down/up
 * sampling and factorised spatial + temporal attention).
 *
 * Inputs prepared for long videos (section 4): an optional mask channel (1 = condition frame) is
 * appended to x, and an optional embedding of the condition noise level s joins the time
 * embedding. With neither configured, this is the plain unconditional LVDM.
 *
 * Layout: x [B, T, H, W, C]; inside, frames are folded into the batch ([B*T, H, W, C]) for every
 * per-frame op, and only temporal attention looks across frames. Parameter names follow the
 * public LVDM checkpoint (time_embed, input_blocks.i.j, middle_block, output_blocks, out).
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore, Scope, init } from '../../nn/params';
import { Conv2d, GroupNorm, Linear, silu } from '../../nn/layers';
import { Rng } from '../../nn/rng';
import { UNetConfig } from '../../config/schema';
import { Cond, EpsModel, Timesteps, withSelfCondition } from '../../diffusion/types';
import { sinusoidEmbedding, timestepValues } from './embedding';
import { adaptiveGroupNorm, clipGroupNorm, groupsFor } from './norm';
import { ForwardContext, ResBlock, frameConv } from './resblock';
import { RelPosOrientation, STAttentionBlock, TextContext } from './attention';
import { SpatialTemporalTransformer } from './transformer';

/**
 * Conditioning understood by UNet3D: `mask` [B, T] (or [B, T, 1, 1, 1]) and `s` [B] (long videos);
 * `context` [B, L, context_dim] text tokens and `context_mask` [B, L] (text-to-video); `self_cond`
 * [B, T, H, W, in_channels], an earlier estimate of x_0 (unet.self_condition); `class_label` [B]
 * integers in [0, num_classes], num_classes being the null label (unet.num_classes).
 */
export const UNET_COND_KEYS = ['mask', 's', 'context', 'context_mask', 'self_cond', 'class_label'] as const;

export interface UNetForwardOptions {
  /** Enables dropout (training) with this Rng. */
  rng?: Rng;
}

type Block =
  | { kind: 'res'; block: ResBlock }
  | { kind: 'attn'; block: STAttentionBlock | SpatialTemporalTransformer }
  | { kind: 'down'; conv: Conv2d }
  | { kind: 'up'; conv: Conv2d }
  | { kind: 'conv'; conv: Conv2d };

/** Channels the first convolution reads: the latent, an estimate of x_0 when self-conditioned
 *  (Chen et al. 2022), and the long-video mask channel (LVDM section 3.3). */
export function unetInputChannels(cfg: UNetConfig): number {
  return cfg.in_channels * (cfg.self_condition ? 2 : 1) + (cfg.mask_channel ? 1 : 0);
}

/** Heads for a level with `ch` channels. */
function headsFor(cfg: UNetConfig, ch: number): number {
  const heads = cfg.num_heads ?? ch / cfg.head_channels;
  if (!Number.isInteger(heads) || heads < 1 || ch % heads !== 0)
    throw new Error(`unet: ${ch} channels cannot be split into ${cfg.num_heads !== undefined ? `${cfg.num_heads} heads` : `heads of ${cfg.head_channels} channels`}`);
  return heads;
}

export class UNet3D {
  readonly store: ParamStore;
  readonly embDim: number;
  /** Input channels including the self-conditioning and mask channels. */
  readonly inputChannels: number;
  private readonly timeEmbed: [Linear, Linear];
  private readonly sTable: tf.Variable | null = null;
  private readonly sEmbed: [Linear, Linear] | null = null;
  private readonly classTable: tf.Variable | null = null;
  private readonly inputBlocks: Block[][] = [];
  private readonly middleBlock: Block[] = [];
  private readonly outputBlocks: Block[][] = [];
  private readonly outNorm: GroupNorm;
  private readonly outConv: Conv2d;
  private readonly attnBlocks: STAttentionBlock[] = [];

  /** Builds the network's parameters in `store` (its Rng draws the initial values). */
  constructor(store: ParamStore, readonly cfg: UNetConfig, prefix = '') {
    this.store = store;
    const root = new Scope(store, prefix);
    const mc = cfg.model_channels;
    const E = 4 * mc;
    this.embDim = E;
    this.inputChannels = unetInputChannels(cfg);
    const te = root.child('time_embed');
    this.timeEmbed = [new Linear(te.child(0), mc, E), new Linear(te.child(2), E, E)];
    if (cfg.s_mode === 'per_frame' && cfg.s_embed !== 'none' && !cfg.mask_channel)
      throw new Error(`unet: s_mode 'per_frame' needs mask_channel: true (the mask says which frames are conditions)`);
    if (cfg.s_embed === 'table') {
      // LVDM passes s as a class label: nn.Embedding(s_levels, 4 * model_channels).
      this.sTable = root.child('label_emb').param('weight', [cfg.s_levels, E], init.normal(1));
    } else if (cfg.s_embed === 'sinusoid') {
      const se = root.child('time_embed_cond');
      this.sEmbed = [new Linear(se.child(0), mc, E), new Linear(se.child(2), E, E)];
    }
    // ADM's class embedding (nn.Embedding(num_classes, 4 * model_channels)), one more row for the null label.
    if (cfg.num_classes !== undefined) this.classTable = root.child('class_emb').param('weight', [cfg.num_classes + 1, E], init.normal(1));
    const resOpts = { embChannels: E, scaleShiftNorm: cfg.scale_shift_norm, normGroups: cfg.norm_groups, dropout: cfg.dropout };
    const attnOpts = (ch: number): ConstructorParameters<typeof STAttentionBlock>[2] => ({
      heads: headsFor(cfg, ch),
      normGroups: cfg.norm_groups,
      relativePosition: cfg.relative_position,
      temporalLength: cfg.temporal_length,
      relativeKey: cfg.relative_key,
      temporal: cfg.temporal_attention,
      contextDim: cfg.context_dim,
      ffMult: cfg.ff_mult,
    });
    if (cfg.attention_block === 'st_transformer' && !cfg.context_dim)
      throw new Error(`unet: attention_block 'st_transformer' (the public text-to-video block) needs unet.context_dim`);
    const attn = (s: Scope, ch: number): Block => {
      if (cfg.attention_block === 'st_transformer') {
        const o = attnOpts(ch);
        const opts = { ...o, contextDim: cfg.context_dim as number, ffMult: cfg.ff_mult, depth: cfg.transformer_depth, clipNorm: cfg.norm_scope === 'clip', relativeKey: cfg.relative_key };
        return { kind: 'attn', block: new SpatialTemporalTransformer(s, ch, opts) };
      }
      const block = new STAttentionBlock(s, ch, attnOpts(ch));
      this.attnBlocks.push(block);
      return { kind: 'attn', block };
    };

    const inb = root.child('input_blocks');
    this.inputBlocks.push([{ kind: 'conv', conv: new Conv2d(inb.child(0).child(0), this.inputChannels, mc, 3) }]);
    const skipChannels = [mc];
    let ch = mc;
    let ds = 1;
    cfg.channel_mult.forEach((mult, level) => {
      for (let r = 0; r < cfg.num_res_blocks; r++) {
        const s = inb.child(this.inputBlocks.length);
        const blocks: Block[] = [{ kind: 'res', block: new ResBlock(s.child(0), ch, mult * mc, resOpts) }];
        ch = mult * mc;
        if (cfg.attention_resolutions.includes(ds)) blocks.push(attn(s.child(1), ch));
        this.inputBlocks.push(blocks);
        skipChannels.push(ch);
      }
      if (level !== cfg.channel_mult.length - 1) {
        const s = inb.child(this.inputBlocks.length);
        this.inputBlocks.push([{ kind: 'down', conv: new Conv2d(s.child(0).child('op'), ch, ch, 3, { stride: 2, padding: 1 }) }]);
        skipChannels.push(ch);
        ds *= 2;
      }
    });
    const mid = root.child('middle_block');
    this.middleBlock.push({ kind: 'res', block: new ResBlock(mid.child(0), ch, ch, resOpts) });
    this.middleBlock.push(attn(mid.child(1), ch));
    this.middleBlock.push({ kind: 'res', block: new ResBlock(mid.child(2), ch, ch, resOpts) });

    const outb = root.child('output_blocks');
    [...cfg.channel_mult.entries()].reverse().forEach(([level, mult]) => {
      for (let r = 0; r <= cfg.num_res_blocks; r++) {
        const s = outb.child(this.outputBlocks.length);
        const ich = skipChannels.pop() as number;
        const blocks: Block[] = [{ kind: 'res', block: new ResBlock(s.child(0), ch + ich, mc * mult, resOpts) }];
        ch = mc * mult;
        if (cfg.attention_resolutions.includes(ds)) blocks.push(attn(s.child(1), ch));
        if (level > 0 && r === cfg.num_res_blocks) {
          blocks.push({ kind: 'up', conv: new Conv2d(s.child(blocks.length).child('conv'), ch, ch, 3) });
          ds /= 2;
        }
        this.outputBlocks.push(blocks);
      }
    });
    const out = root.child('out');
    this.outNorm = new GroupNorm(out.child(0), groupsFor(cfg.norm_groups, ch), ch, 1e-5);
    this.outConv = new Conv2d(out.child(2), mc, cfg.out_channels, 3, { weightInit: init.zeros(), biasInit: init.zeros() });
  }

  /** Total spatial downsampling (inputs' H and W must be multiples of it). */
  get downFactor(): number {
    return 2 ** (this.cfg.channel_mult.length - 1);
  }

  numParams(): number {
    return this.store.numParams();
  }

  /**
   * Names of the temporal attention layers' parameters: the only ones that look across frames, so
   * the rest is an image model applied to each frame (`init` of a short stage, lib/lvdm/init.ts).
   */
  temporalParamNames(): string[] {
    if (this.cfg.attention_block === 'st_transformer') throw new Error(`unet: the temporal layers of attention_block 'st_transformer' (the public text-to-video block) are not listed; use attention_block 'lvdm'`);
    const prefixes = this.attnBlocks.flatMap((a) => a.temporal?.paramPrefixes ?? []);
    return this.store.names().filter((n) => prefixes.some((p) => n.startsWith(p)));
  }

  /** Sets the relative-key orientation of every temporal attention (the 'transposed' variant is the public code's defect). */
  setKeyOrientation(o: RelPosOrientation): void {
    for (const a of this.attnBlocks) if (a.temporal) a.temporal.keyOrientation = o;
  }

  /** Rows of `table` [rows, E] for the integer `values` [B] (a one-hot matmul rather than a gather: its gradient is a matmul, and wasm has no UnsortedSegmentSum). */
  private static lookup(table: tf.Variable, values: ArrayLike<number>, what: string): tf.Tensor2D {
    const rows = table.shape[0];
    for (const v of Array.from(values)) if (!Number.isInteger(v) || v < 0 || v >= rows) throw new Error(`unet: ${what} value ${v} outside the table [0, ${rows - 1}]`);
    const oneHot = tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from(values), 'int32'), rows), 'float32') as tf.Tensor2D; // [B, rows]
    return tf.matMul(oneHot, table as tf.Tensor2D) as tf.Tensor2D;
  }

  /** The class embedding [B, E] of cond.class_label, or null for a model without classes. */
  private classEmbedding(label: tf.Tensor | undefined, b: number): tf.Tensor2D | null {
    if (!this.classTable) {
      if (label) throw new Error(`unet: cond.class_label given but the model has no class embedding (unet.num_classes is not set)`);
      return null;
    }
    if (!label) throw new Error(`unet: this model is class-conditional: cond.class_label ([B] labels, ${this.cfg.num_classes} = none) is required`);
    const values = label.dataSync();
    if (values.length !== b) throw new Error(`unet: cond.class_label has ${values.length} entries for a batch of ${b}`);
    return UNet3D.lookup(this.classTable, values, 'cond.class_label');
  }

  /** Per-frame embedding [B*T, E] from t (and s / mask / class label when configured). */
  private embedding(t: Timesteps, b: number, frames: number, mask: tf.Tensor2D | null, s: tf.Tensor | undefined, classLabel: tf.Tensor | undefined): tf.Tensor2D {
    return tf.tidy(() => {
      const tv = timestepValues(t);
      if (tv.length !== b) throw new Error(`unet: ${tv.length} timesteps given for a batch of ${b}`);
      const mlp = (layers: [Linear, Linear], e: tf.Tensor2D): tf.Tensor2D => layers[1].apply(silu(layers[0].apply(e)));
      let emb = mlp(this.timeEmbed, sinusoidEmbedding(tv, this.cfg.model_channels)); // [B, E]
      let sEmb: tf.Tensor2D | null = null;
      if (this.cfg.s_embed !== 'none') {
        if (!s) throw new Error(`unet: this model embeds the condition noise level: cond.s ([B] levels) is required`);
        const sv = timestepValues(s as Timesteps);
        if (sv.length !== b) throw new Error(`unet: cond.s has ${sv.length} entries for a batch of ${b}`);
        if (this.sTable) {
          sEmb = UNet3D.lookup(this.sTable, sv, 'cond.s');
        } else if (this.sEmbed) {
          sEmb = mlp(this.sEmbed, sinusoidEmbedding(sv, this.cfg.model_channels));
        }
      } else if (s) {
        throw new Error(`unet: cond.s given but the model has no s embedding (unet.s_embed is 'none')`);
      }
      // ADM (Dhariwal & Nichol 2021): emb = time_embed(t) + label_emb(y).
      const classEmb = this.classEmbedding(classLabel, b);
      if (classEmb) emb = tf.add(emb, classEmb);
      const E = this.embDim;
      const perFrame = (e: tf.Tensor2D): tf.Tensor3D => tf.mul(tf.reshape(e, [b, 1, E]), tf.ones([1, frames, 1])) as tf.Tensor3D; // [B, T, E]
      if (sEmb && this.cfg.s_mode === 'per_frame') {
        // Condition frames carry the embedding of their noise level s, the others that of t.
        if (!mask) return tf.reshape(perFrame(emb), [b * frames, E]) as tf.Tensor2D;
        const m = tf.reshape(mask, [b, frames, 1]);
        return tf.reshape(tf.add(tf.mul(perFrame(emb), tf.sub(1, m)), tf.mul(perFrame(sEmb), m)), [b * frames, E]) as tf.Tensor2D;
      }
      if (sEmb) emb = tf.add(emb, sEmb);
      return tf.reshape(perFrame(emb), [b * frames, E]) as tf.Tensor2D;
    });
  }

  private maskOf(cond: Cond | undefined, b: number, frames: number): tf.Tensor2D | null {
    const m = cond?.mask;
    if (!m) return null;
    if (!this.cfg.mask_channel) throw new Error(`unet: cond.mask given but the model has no mask channel (unet.mask_channel is false)`);
    if (m.size !== b * frames) throw new Error(`unet: cond.mask has shape [${m.shape}], expected [${b}, ${frames}]`);
    return tf.reshape(tf.cast(m, 'float32'), [b, frames]) as tf.Tensor2D;
  }

  private textOf(cond: Cond | undefined, b: number): TextContext | undefined {
    const c = cond?.context;
    if (!c) {
      if (cond?.context_mask) throw new Error(`unet: cond.context_mask given without cond.context`);
      return undefined;
    }
    if (!this.cfg.context_dim) throw new Error(`unet: cond.context given but the model has no cross-attention (unet.context_dim is not set)`);
    if (c.rank !== 3 || c.shape[0] !== b || c.shape[2] !== this.cfg.context_dim)
      throw new Error(`unet: cond.context has shape [${c.shape}], expected [${b}, L, ${this.cfg.context_dim}]`);
    return { context: c as tf.Tensor3D, mask: cond?.context_mask as tf.Tensor2D | undefined };
  }

  /** The self-conditioning input (zeros when the model has it and cond lacks it), or null when the model has none. */
  private selfCondOf(cond: Cond | undefined, shape: number[]): tf.Tensor | null {
    const sc = cond?.self_cond;
    if (!this.cfg.self_condition) {
      if (sc) throw new Error(`unet: cond.self_cond given but the model does not read one (unet.self_condition is off)`);
      return null;
    }
    if (!sc) return tf.zeros(shape);
    if (sc.shape.length !== shape.length || sc.shape.some((d, i) => d !== shape[i])) throw new Error(`unet: cond.self_cond has shape [${sc.shape}], expected [${shape}] (the shape of x)`);
    return sc;
  }

  /** eps prediction: x [B, T, H, W, in_channels], t [B] -> [B, T, H, W, out_channels]. */
  apply(x: tf.Tensor5D, t: Timesteps, cond?: Cond, opts: UNetForwardOptions = {}): tf.Tensor5D {
    return tf.tidy(() => {
      const [b, frames, hh, ww, c] = x.shape;
      if (c !== this.cfg.in_channels) throw new Error(`unet: x has ${c} channels, expected ${this.cfg.in_channels} (unet.in_channels)`);
      if (hh % this.downFactor || ww % this.downFactor) throw new Error(`unet: spatial size ${hh}x${ww} must be a multiple of ${this.downFactor}`);
      if (cond) for (const k of Object.keys(cond)) if (!(UNET_COND_KEYS as readonly string[]).includes(k)) throw new Error(`unet: unknown conditioning '${k}' (expected ${UNET_COND_KEYS.join(', ')})`);
      const n = b * frames;
      const mask = this.maskOf(cond, b, frames);
      let h = tf.reshape(x, [n, hh, ww, c]) as tf.Tensor4D; // frames folded into the batch
      const selfCond = this.selfCondOf(cond, x.shape);
      if (selfCond) h = tf.concat([h, tf.reshape(selfCond, [n, hh, ww, c])], 3) as tf.Tensor4D; // [N, H, W, 2C]
      if (this.cfg.mask_channel) {
        // Missing mask = all frames generated (unconditional).
        const m = mask ? tf.reshape(mask, [n, 1, 1, 1]) : tf.zeros([n, 1, 1, 1]);
        h = tf.concat([h, tf.mul(tf.ones([n, hh, ww, 1]), m)], 3) as tf.Tensor4D; // [N, H, W, C+1]
      }
      const emb = this.embedding(t, b, frames, mask, cond?.s, cond?.class_label);
      const text = this.textOf(cond, b);
      const clip = this.cfg.norm_scope === 'clip';
      const ctx: ForwardContext = { embAct: silu(emb), rng: opts.rng, clipNormFrames: clip ? frames : undefined };
      const run = (blocks: Block[], y: tf.Tensor4D): tf.Tensor4D => {
        for (const bl of blocks) {
          if (bl.kind === 'res') y = bl.block.apply(y, ctx);
          else if (bl.kind === 'attn') y = bl.block.apply(y, frames, text);
          else if (bl.kind === 'conv') y = frameConv(bl.conv, y);
          else if (bl.kind === 'down') y = frameConv(bl.conv, y);
          else y = frameConv(bl.conv, upsampleNearest2x(y));
        }
        return y;
      };
      const skips: tf.Tensor4D[] = [];
      for (const blocks of this.inputBlocks) {
        h = run(blocks, h);
        skips.push(h);
      }
      h = run(this.middleBlock, h);
      for (const blocks of this.outputBlocks) {
        h = run(blocks, tf.concat([h, skips.pop() as tf.Tensor4D], 3) as tf.Tensor4D);
      }
      const act = { silu: true };
      h = frameConv(this.outConv, clip ? clipGroupNorm(h, this.outNorm, frames, undefined, undefined, act) : adaptiveGroupNorm(h, this.outNorm, undefined, undefined, act)); // [N, H, W, out]
      return tf.reshape(h, [b, frames, hh, ww, this.cfg.out_channels]) as tf.Tensor5D;
    });
  }

  /** The network as a sampler's EpsModel. */
  asEpsModel(): EpsModel {
    return withSelfCondition((x, t, cond) => this.apply(x, t, cond), Boolean(this.cfg.self_condition));
  }
}

/** Nearest-neighbour 2x spatial upsampling by reshape + concat (wasm's Tile kernel is slow). */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const x3 = tf.reshape(x, [n * h * w, 1, c]);
    const wide = tf.reshape(tf.concat([x3, x3], 1), [n * h, 1, 2 * w * c]); // [N*H, 1, 2W*C]
    return tf.reshape(tf.concat([wide, wide], 1), [n, 2 * h, 2 * w, c]) as tf.Tensor4D;
  });
}
