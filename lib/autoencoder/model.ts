/**
 * VideoAutoencoder: LVDM's 3D KL autoencoder (lvdm-facts.md section 1; He et al. 2022, Sec. 3.1).
 * Encoder: conv_in, then per stage a strided Conv3d (kernel 4) and residual blocks, then
 * GroupNorm + SiLU + Conv3d to (mean, logvar) and a 1x1x1 quant conv. Decoder mirrors it with
 * residual blocks and transposed Conv3d (kernel 4). Every 3D convolution pads by replicate, so
 * the network is equivariant to temporal shifts away from the borders. No attention.
 * Layout: videos [B, T, H, W, C]; latents [B, T/ft, H/fs, W/fs, zc].
 *
 * `frame_wise: true` gives the text-to-video model's frame-wise 2D autoencoder (section 6): the
 * same network with every kernel 1 x k x k (k = 3 or 4) and frames folded into the batch (so
 * GroupNorm statistics are per frame too): each frame is encoded and decoded on its own (needs
 * temporal_factor 1).
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore, Scope } from '../nn/params';
import { Conv3d, ConvTranspose3d, GroupNorm, Triple } from '../nn/layers';
import { Rng } from '../nn/rng';
import { AutoencoderModelConfig } from '../config/schema';
import { LdmDecoderBody, LdmEncoderBody, ldmWidths } from './ldm2d';

/** Largest group count <= `groups` that divides `channels`. */
export function normGroups(groups: number, channels: number): number {
  let g = Math.min(groups, channels);
  while (channels % g !== 0) g -= 1;
  return g;
}

export class ResBlock3d {
  readonly norm1: GroupNorm;
  readonly conv1: Conv3d;
  readonly norm2: GroupNorm;
  readonly conv2: Conv3d;
  readonly skip: Conv3d | null;

  constructor(s: Scope, cin: number, cout: number, groups: number, kernel: number | Triple = 3) {
    this.norm1 = new GroupNorm(s.child('norm1'), normGroups(groups, cin), cin);
    this.conv1 = new Conv3d(s.child('conv1'), cin, cout, kernel);
    this.norm2 = new GroupNorm(s.child('norm2'), normGroups(groups, cout), cout);
    this.conv2 = new Conv3d(s.child('conv2'), cout, cout, kernel);
    this.skip = cin === cout ? null : new Conv3d(s.child('skip'), cin, cout, 1);
  }

  apply(x: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      let h = this.conv1.apply(this.norm1.applySilu(x)); // [B, T, H, W, Cout]
      h = this.conv2.apply(this.norm2.applySilu(h));
      return tf.add(this.skip ? this.skip.apply(x) : x, h);
    });
  }
}

/** Per-stage strides derived from (ft, fs): every stage halves space; the first log2(ft) halve time. */
export function stageStrides(cfg: Pick<AutoencoderModelConfig, 'temporal_factor' | 'spatial_factor' | 'channels'>): Triple[] {
  const ls = Math.log2(cfg.spatial_factor);
  const lt = Math.log2(cfg.temporal_factor);
  if (!Number.isInteger(ls) || !Number.isInteger(lt)) throw new Error(`autoencoder: spatial_factor ${cfg.spatial_factor} and temporal_factor ${cfg.temporal_factor} must be powers of two`);
  if (lt > ls) throw new Error(`autoencoder: temporal_factor ${cfg.temporal_factor} may not exceed spatial_factor ${cfg.spatial_factor}`);
  if (cfg.channels.length !== ls)
    throw new Error(`autoencoder.model.channels: expected ${ls} entries (one per down stage, log2(spatial_factor ${cfg.spatial_factor})), got ${cfg.channels.length}`);
  return Array.from({ length: ls }, (_, i) => [i < lt ? 2 : 1, 2, 2] as Triple);
}

export interface Posterior {
  mean: tf.Tensor5D; // [B, t, h, w, zc]
  logvar: tf.Tensor5D; // clamped to logvar_clamp
}

export class VideoAutoencoder {
  readonly strides: Triple[];
  readonly base: number;
  private readonly convIn: Conv3d;
  private readonly down: { conv: Conv3d; res: ResBlock3d[] }[] = [];
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv3d;
  private readonly quantConv: Conv3d;
  private readonly postQuantConv: Conv3d;
  private readonly decIn: Conv3d | null = null;
  private readonly up: { res: ResBlock3d[]; conv: ConvTranspose3d }[] = [];
  /** decoder 'tats': per stage the transposed conv first, then the residual blocks. */
  private readonly upFirst: { conv: ConvTranspose3d; res: ResBlock3d[] }[] = [];
  private readonly decNormOut: GroupNorm | null = null;
  /** arch 'ldm': LDM's 2D encoder / decoder bodies (lib/autoencoder/ldm2d.ts). */
  private readonly ldmEncoder: LdmEncoderBody | null = null;
  private readonly ldmDecoder: LdmDecoderBody | null = null;
  /** The decoder's last layer (its weight gradient drives the adaptive GAN weight). */
  readonly decConvOut: Conv3d;

  constructor(readonly store: ParamStore, readonly cfg: AutoencoderModelConfig) {
    this.strides = stageStrides(cfg);
    if (cfg.frame_wise && cfg.temporal_factor !== 1) throw new Error(`autoencoder: frame_wise needs temporal_factor 1, got ${cfg.temporal_factor}`);
    // Kernel sizes: k x k x k, or 1 x k x k for the frame-wise 2D autoencoder.
    const k = (n: number): number | Triple => (cfg.frame_wise ? [1, n, n] : n);
    const g = cfg.norm_groups;
    const ch = cfg.channels;
    const zc = cfg.latent_channels;
    this.base = cfg.base_channels ?? ch[0];
    const root = new Scope(store);
    const enc = root.child('encoder');
    const dec = root.child('decoder');
    if (cfg.arch === 'ldm') {
      // LDM's 2D AutoencoderKL per frame: zero padding, 3x3 kernels, GroupNorm eps 1e-6 (ldm2d.ts).
      if (!cfg.frame_wise) throw new Error(`autoencoder: arch 'ldm' (LDM's 2D autoencoder) needs frame_wise: true`);
      const zeros = { padMode: 'zeros' as const };
      const widths = ldmWidths(cfg);
      const top = widths[widths.length - 1];
      const gn = (s: Scope, n: number): GroupNorm => new GroupNorm(s, normGroups(g, n), n, 1e-6);
      this.convIn = new Conv3d(enc.child('conv_in'), cfg.in_channels, widths[0], k(3), zeros);
      this.ldmEncoder = new LdmEncoderBody(enc, cfg, gn);
      this.normOut = gn(enc.child('norm_out'), top);
      this.convOut = new Conv3d(enc.child('conv_out'), top, 2 * zc, k(3), zeros);
      this.quantConv = new Conv3d(root.child('quant_conv'), 2 * zc, 2 * zc, 1, zeros);
      this.postQuantConv = new Conv3d(root.child('post_quant_conv'), zc, zc, 1, zeros);
      this.decIn = new Conv3d(dec.child('conv_in'), zc, top, k(3), zeros);
      this.ldmDecoder = new LdmDecoderBody(dec, cfg, gn);
      this.decNormOut = gn(dec.child('norm_out'), widths[0]);
      this.decConvOut = new Conv3d(dec.child('conv_out'), widths[0], cfg.in_channels, k(3), zeros);
      return;
    }
    this.convIn = new Conv3d(enc.child('conv_in'), cfg.in_channels, this.base, k(3));
    let c = this.base;
    ch.forEach((co, i) => {
      const s = enc.child('down').child(i);
      const conv = new Conv3d(s.child('conv'), c, co, k(4), { stride: this.strides[i] });
      const res = Array.from({ length: cfg.enc_res_blocks }, (_, j) => new ResBlock3d(s.child('res').child(j), co, co, g, k(3)));
      this.down.push({ conv, res });
      c = co;
    });
    this.normOut = new GroupNorm(enc.child('norm_out'), normGroups(g, c), c);
    this.convOut = new Conv3d(enc.child('conv_out'), c, 2 * zc, k(3));
    this.quantConv = new Conv3d(root.child('quant_conv'), 2 * zc, 2 * zc, 1);
    this.postQuantConv = new Conv3d(root.child('post_quant_conv'), zc, zc, 1);
    if (cfg.decoder === 'tats') {
      // TATS/LVDM public decoder: stage k upsamples by the encoder's stage-k strides (temporal first),
      // channels z -> ch[L-1] -> ... -> ch[0], then conv_out (no input conv, no output norm).
      let cin = zc;
      for (let stage = 0; stage < ch.length; stage++) {
        const s = dec.child('blocks').child(stage);
        const co = ch[ch.length - 1 - stage];
        const conv = new ConvTranspose3d(s.child('upsample'), cin, co, k(4), { stride: this.strides[stage] });
        const res = Array.from({ length: cfg.dec_res_blocks }, (_, j) => new ResBlock3d(s.child('res').child(j), co, co, g, k(3)));
        this.upFirst.push({ conv, res });
        cin = co;
      }
      this.decConvOut = new Conv3d(dec.child('conv_out'), ch[0], cfg.in_channels, k(3));
      return;
    }
    this.decIn = new Conv3d(dec.child('conv_in'), zc, c, k(3));
    for (let i = ch.length - 1; i >= 0; i--) {
      const s = dec.child('up').child(i);
      const res = Array.from({ length: cfg.dec_res_blocks }, (_, j) => new ResBlock3d(s.child('res').child(j), ch[i], ch[i], g, k(3)));
      const co = i > 0 ? ch[i - 1] : this.base;
      this.up.push({ res, conv: new ConvTranspose3d(s.child('upsample'), ch[i], co, k(4), { stride: this.strides[i] }) });
    }
    this.decNormOut = new GroupNorm(dec.child('norm_out'), normGroups(g, this.base), this.base);
    this.decConvOut = new Conv3d(dec.child('conv_out'), this.base, cfg.in_channels, k(3));
  }

  /** Total down-sampling per axis: [ft, fs, fs]. */
  get factors(): Triple {
    return this.strides.reduce((a, s) => [a[0] * s[0], a[1] * s[1], a[2] * s[2]] as Triple, [1, 1, 1] as Triple);
  }

  /** Latent shape for a clip of (frames, height, width). */
  latentShape(frames: number, height: number, width: number): [number, number, number, number] {
    const [ft, fs] = this.factors;
    if (frames % ft || height % fs || width % fs)
      throw new Error(`autoencoder: clip ${frames}x${height}x${width} is not divisible by the factors (ft ${ft}, fs ${fs})`);
    return [frames / ft, height / fs, width / fs, this.cfg.latent_channels];
  }

  /** Frame-wise models run `fn` on [B*T, 1, H, W, C] (one frame per sample); others on x itself. */
  private frameWise(x: tf.Tensor5D, fn: (v: tf.Tensor5D) => tf.Tensor5D): tf.Tensor5D {
    if (!this.cfg.frame_wise) return fn(x);
    return tf.tidy(() => {
      const [b, t, h, w, c] = x.shape;
      const y = fn(tf.reshape(x, [b * t, 1, h, w, c]));
      return tf.reshape(y, [b, t, y.shape[2], y.shape[3], y.shape[4]]);
    });
  }

  /** x: [B, T, H, W, 3] in [-1, 1] -> diagonal Gaussian posterior over latents. */
  encode(x: tf.Tensor5D): Posterior {
    const out = this.frameWise(x, (x) => tf.tidy(() => {
      let h = this.convIn.apply(x);
      if (this.ldmEncoder) h = this.ldmEncoder.apply(h);
      for (const stage of this.down) {
        h = stage.conv.apply(h);
        for (const r of stage.res) h = r.apply(h);
      }
      h = this.convOut.apply(this.normOut.applySilu(h));
      return this.quantConv.apply(h); // [B, t, h, w, 2 zc]
    }));
    const zc = this.cfg.latent_channels;
    const [lo, hi] = this.cfg.logvar_clamp;
    const [mean, lv] = tf.split(out, [zc, zc], 4) as [tf.Tensor5D, tf.Tensor5D];
    const logvar = tf.clipByValue(lv, lo, hi) as tf.Tensor5D;
    out.dispose();
    lv.dispose();
    return { mean, logvar };
  }

  /** z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) from `rng` (reparameterised). */
  static samplePosterior(p: Posterior, rng: Rng): tf.Tensor5D {
    return tf.tidy(() => {
      const eps = tf.tensor(rng.normalArray(p.mean.size), p.mean.shape);
      return tf.add(p.mean, tf.mul(tf.exp(tf.mul(p.logvar, 0.5)), eps)) as tf.Tensor5D;
    });
  }

  /** Decoder up to (not including) its last conv: [B, t, h, w, zc] -> [B, T, H, W, base]. */
  decodeTrunk(z: tf.Tensor5D): tf.Tensor5D {
    return this.frameWise(z, (z) => tf.tidy(() => {
      if (!this.decIn || !this.decNormOut) {
        let y = this.postQuantConv.apply(z);
        for (const stage of this.upFirst) {
          y = stage.conv.apply(y);
          for (const r of stage.res) y = r.apply(y);
        }
        return y;
      }
      let h = this.decIn.apply(this.postQuantConv.apply(z));
      if (this.ldmDecoder) h = this.ldmDecoder.apply(h);
      for (const stage of this.up) {
        for (const r of stage.res) h = r.apply(h);
        h = stage.conv.apply(h);
      }
      return this.decNormOut.applySilu(h);
    }));
  }

  /** z: [B, t, h, w, zc] -> reconstruction [B, T, H, W, 3] (unbounded; ~[-1, 1]). */
  decode(z: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => this.decConvOut.apply(this.decodeTrunk(z)));
  }
}

/** KL(q || N(0, I)) per example, summed over latent dims: 0.5 * sum(mu^2 + var - 1 - logvar). */
export function klDivergence(p: Posterior): tf.Tensor1D {
  return tf.tidy(() => {
    const b = p.mean.shape[0];
    const kl = tf.mul(tf.sub(tf.add(tf.square(p.mean), tf.exp(p.logvar)), tf.add(p.logvar, 1)), 0.5);
    return tf.sum(tf.reshape(kl, [b, -1]), 1) as tf.Tensor1D;
  });
}
