/**
 * The bodies of LDM's 2D KL autoencoder (Rombach et al. 2022, "High-Resolution Image Synthesis with
 * Latent Diffusion Models"; the public LVDM text-to-video first stage, lvdm/models/modules/aemodules.py),
 * applied per frame (`autoencoder.model.arch: ldm`, lvdm-facts.md section 6). VideoAutoencoder holds
 * the ends (conv_in, norm_out, conv_out, quant convs); these classes hold what lies between:
 *
 *   encoder: down.{i}.block.{j} (ResnetBlock), down.{i}.downsample.conv (3x3, stride 2, padded by one
 *            row/column at the bottom/right only), mid.{block_1, attn_1, block_2}
 *   decoder: mid.{block_1, attn_1, block_2}, up.{i}.block.{j}, up.{i}.upsample.conv (nearest x2, 3x3)
 *
 * ResnetBlock: h = conv2(silu(GN(conv1(silu(GN(x)))))), out = x (or nin_shortcut(x), a 1x1 conv when
 * the width changes) + h. attn_1: single-head self-attention over the frame's positions with 1x1 q, k,
 * v, proj_out and scale C^-1/2. GroupNorm(32, eps 1e-6) everywhere; zero padding.
 * Level widths: base_channels, then `channels` (one entry per downsampling); enc_res_blocks blocks
 * per encoder level, dec_res_blocks per decoder level (LDM: num_res_blocks and num_res_blocks + 1).
 * Tensors are [N, 1, H, W, C] (one frame per sample, see VideoAutoencoder.frameWise); parameters use
 * Conv3d with 1 x k x k kernels so the names and layouts stay those of the 3D network.
 */
import * as tf from '@tensorflow/tfjs';
import { Scope } from '../nn/params';
import { Conv3d, GroupNorm, Triple } from '../nn/layers';
import { AutoencoderModelConfig } from '../config/schema';

const K3: Triple = [1, 3, 3];
const ZEROS = { padMode: 'zeros' as const };

/** Makes the GroupNorm (32 groups, eps 1e-6) of a layer with c channels. */
export type NormFactory = (s: Scope, c: number) => GroupNorm;

/** Level widths of the LDM layout: [base_channels, ...channels]. */
export function ldmWidths(cfg: AutoencoderModelConfig): number[] {
  return [cfg.base_channels ?? cfg.channels[0], ...cfg.channels];
}

class ResnetBlock {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv3d;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv3d;
  private readonly nin: Conv3d | null;

  constructor(s: Scope, cin: number, cout: number, gn: NormFactory) {
    this.norm1 = gn(s.child('norm1'), cin);
    this.conv1 = new Conv3d(s.child('conv1'), cin, cout, K3, ZEROS);
    this.norm2 = gn(s.child('norm2'), cout);
    this.conv2 = new Conv3d(s.child('conv2'), cout, cout, K3, ZEROS);
    this.nin = cin === cout ? null : new Conv3d(s.child('nin_shortcut'), cin, cout, 1, ZEROS);
  }

  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      const h = this.conv2.apply(this.norm2.applySilu(this.conv1.apply(this.norm1.applySilu(x))));
      return tf.add(this.nin ? this.nin.apply(x) : x, h);
    });
  }
}

/** LDM's AttnBlock: x + proj_out(softmax(q k^T / sqrt(C)) v) over the H*W positions of each frame. */
class AttnBlock {
  private readonly norm: GroupNorm;
  private readonly q: Conv3d;
  private readonly k: Conv3d;
  private readonly v: Conv3d;
  private readonly proj: Conv3d;

  constructor(s: Scope, readonly c: number, gn: NormFactory) {
    this.norm = gn(s.child('norm'), c);
    [this.q, this.k, this.v, this.proj] = ['q', 'k', 'v', 'proj_out'].map((n) => new Conv3d(s.child(n), c, c, 1, ZEROS));
  }

  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      const [n, t, h, w, c] = x.shape;
      const hn = this.norm.apply(x);
      const seq = (y: tf.Tensor5D): tf.Tensor3D => tf.reshape(y, [n * t, h * w, c]) as tf.Tensor3D;
      const q = tf.mul(seq(this.q.apply(hn)), 1 / Math.sqrt(c)) as tf.Tensor3D;
      const attn = tf.softmax(tf.matMul(q, seq(this.k.apply(hn)), false, true)); // [N, HW, HW]
      const o = tf.reshape(tf.matMul(attn, seq(this.v.apply(hn))), [n, t, h, w, c]) as tf.Tensor5D;
      return tf.add(x, this.proj.apply(o));
    });
  }
}

/** mid.block_1 -> mid.attn_1 -> mid.block_2 */
class MidBlock {
  private readonly b1: ResnetBlock;
  private readonly attn: AttnBlock;
  private readonly b2: ResnetBlock;

  constructor(s: Scope, c: number, gn: NormFactory) {
    this.b1 = new ResnetBlock(s.child('block_1'), c, c, gn);
    this.attn = new AttnBlock(s.child('attn_1'), c, gn);
    this.b2 = new ResnetBlock(s.child('block_2'), c, c, gn);
  }

  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => this.b2.apply(this.attn.apply(this.b1.apply(x))));
  }
}

/** Stride-2 3x3 conv after zero padding one row / column at the bottom / right (LDM's asymmetric Downsample). */
function downsample(conv: Conv3d, x: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const xp = tf.pad(x, [[0, 0], [0, 0], [0, 1], [0, 1], [0, 0]]) as tf.Tensor5D;
    const y = tf.conv3d(xp, conv.weight as tf.Tensor5D, [1, 2, 2], 'valid');
    return conv.bias ? tf.add(y, conv.bias) : y;
  });
}

/** Nearest-neighbour x2 in H and W of [N, 1, H, W, C]. */
function upsampleNearest(x: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [n, t, h, w, c] = x.shape;
    const y = tf.image.resizeNearestNeighbor(tf.reshape(x, [n * t, h, w, c]) as tf.Tensor4D, [2 * h, 2 * w]);
    return tf.reshape(y, [n, t, 2 * h, 2 * w, c]) as tf.Tensor5D;
  });
}

/** Encoder between conv_in and norm_out: down levels, then the middle block. */
export class LdmEncoderBody {
  private readonly levels: { blocks: ResnetBlock[]; down: Conv3d | null }[] = [];
  private readonly mid: MidBlock;

  constructor(enc: Scope, cfg: AutoencoderModelConfig, g: NormFactory) {
    const widths = ldmWidths(cfg);
    let c = widths[0];
    widths.forEach((wi, i) => {
      const s = enc.child('down').child(i);
      const blocks = Array.from({ length: cfg.enc_res_blocks }, (_, j) => {
        const b = new ResnetBlock(s.child('block').child(j), c, wi, g);
        c = wi;
        return b;
      });
      const down = i < widths.length - 1 ? new Conv3d(s.child('downsample').child('conv'), c, c, K3, { ...ZEROS, stride: [1, 2, 2] }) : null;
      this.levels.push({ blocks, down });
    });
    this.mid = new MidBlock(enc.child('mid'), c, g);
  }

  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      let h = x;
      for (const l of this.levels) {
        for (const b of l.blocks) h = b.apply(h);
        if (l.down) h = downsample(l.down, h);
      }
      return this.mid.apply(h);
    });
  }
}

/** Decoder between conv_in and norm_out: the middle block, then up levels (deepest first). */
export class LdmDecoderBody {
  private readonly mid: MidBlock;
  private readonly levels: { blocks: ResnetBlock[]; up: Conv3d | null }[] = [];

  constructor(dec: Scope, cfg: AutoencoderModelConfig, g: NormFactory) {
    const widths = ldmWidths(cfg);
    let c = widths[widths.length - 1];
    this.mid = new MidBlock(dec.child('mid'), c, g);
    for (let i = widths.length - 1; i >= 0; i--) {
      const s = dec.child('up').child(i);
      const blocks = Array.from({ length: cfg.dec_res_blocks }, (_, j) => {
        const b = new ResnetBlock(s.child('block').child(j), c, widths[i], g);
        c = widths[i];
        return b;
      });
      const up = i > 0 ? new Conv3d(s.child('upsample').child('conv'), c, c, K3, ZEROS) : null;
      this.levels.push({ blocks, up });
    }
  }

  apply(z: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      let h = this.mid.apply(z);
      for (const l of this.levels) {
        for (const b of l.blocks) h = b.apply(h);
        if (l.up) h = l.up.apply(upsampleNearest(h));
      }
      return h;
    });
  }
}
