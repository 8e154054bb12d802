/**
 * The public LVDM code's YAML configs (configs/lvdm_short/*.yaml, configs/lvdm_long/*.yaml,
 * configs/videoae/*.yaml: `model.target` + `model.params`, with `unet_config` and
 * `first_stage_config` for latent diffusion) translated to this project's schema, and back.
 *
 * Behaviour switches the public weights need are set here: unet.relative_key 'public' (its
 * transposed, d^-1/4-scaled relative-key term), autoencoder.model.decoder 'tats', the linear
 * schedule and loss of the config, the latent scale/shift (`scale_factor`, `shift_factor`), and the
 * public sampling scripts' DDIM settings (50 steps, eta 1.0, "uniform" = leading timesteps).
 */
import * as fs from 'node:fs';
import { stringify } from 'yaml';
import { AutoencoderModelConfig, DataConfig, ExperimentConfig, UNetConfig } from '../config/schema';
import { parseYaml, validateConfig } from '../config/load';
import { DATASET_KINDS } from '../../data/layouts';

export interface LatentNormValues {
  scale: number;
  shift: number;
}

export interface PublicSpec {
  source: string;
  /** 'lvdm': a LatentDiffusion config (UNet + first stage); 'autoencoder': an AutoencoderKL config. */
  kind: 'lvdm' | 'autoencoder';
  config: ExperimentConfig;
  latent: LatentNormValues | null;
  /** scale_by_std: the checkpoint holds the scale as a buffer `scale_factor`. */
  scaleByStd: boolean;
  /** The public DiffusionWrapper's conditioning_key (null = unconditional). */
  conditioningKey: string | null;
  /** Latent frames the UNet models (model.params.video_length, else unet temporal_length); lvdm only. */
  latentFrames: number;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Reader {
  constructor(
    readonly source: string,
    readonly obj: Obj,
    readonly path: string,
  ) {}
  private where(k: string): string {
    return `${this.source}: key '${this.path ? `${this.path}.` : ''}${k}'`;
  }
  has(k: string): boolean {
    return this.obj[k] !== undefined && this.obj[k] !== null;
  }
  child(k: string): Reader {
    const v = this.obj[k];
    if (!isObj(v)) throw new Error(`${this.where(k)}: expected a mapping`);
    return new Reader(this.source, v, this.path ? `${this.path}.${k}` : k);
  }
  num(k: string, dflt?: number): number {
    const v = this.obj[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${this.where(k)}: expected a number, got ${JSON.stringify(v)}`);
    return v;
  }
  int(k: string, dflt?: number): number {
    const v = this.num(k, dflt);
    if (!Number.isInteger(v)) throw new Error(`${this.where(k)}: expected an integer, got ${v}`);
    return v;
  }
  bool(k: string, dflt: boolean): boolean {
    const v = this.obj[k] ?? dflt;
    if (typeof v !== 'boolean') throw new Error(`${this.where(k)}: expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  str(k: string, dflt?: string): string {
    const v = this.obj[k] ?? dflt;
    if (typeof v !== 'string') throw new Error(`${this.where(k)}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  }
  ints(k: string, dflt?: number[]): number[] {
    const v = this.obj[k] ?? dflt;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) throw new Error(`${this.where(k)}: expected a list of integers, got ${JSON.stringify(v)}`);
    return v as number[];
  }
  require(cond: boolean, k: string, what: string): void {
    if (!cond) throw new Error(`${this.where(k)}: ${what}`);
  }
}

/** UNet params (unet_config.params) -> UNetConfig. */
function unetFromPublic(target: string, p: Reader, maskChannel: boolean): UNetConfig {
  p.require(/(^|\.)(UNetModel|FrameInterpPredUNet)$/.test(target), 'target', `'${target}' is not supported (expected openaimodel3d.UNetModel or FrameInterpPredUNet)`);
  p.require(!p.bool('use_temporal_transformer', false), 'use_temporal_transformer', 'text-to-video (SpatialTemporalTransformer) checkpoints are not supported by this importer');
  p.require(p.int('dims', 3) === 3, 'dims', 'only dims: 3 is supported');
  p.require(p.int('kernel_size_t', 1) === 1, 'kernel_size_t', 'only 1 is supported (per-frame 1x3x3 convolutions)');
  p.require(p.int('padding_t', 1) === 0, 'padding_t', 'must be 0 with kernel_size_t 1 (the public default 1 pads frames)');
  p.require(!p.bool('resblock_updown', false), 'resblock_updown', 'residual up/down-sampling blocks are not supported');
  p.require(p.bool('conv_resample', true), 'conv_resample', 'only convolutional resampling is supported');
  p.require(p.str('nonlinearity_type', 'silu') === 'silu', 'nonlinearity_type', 'only silu is supported');
  const inCh = p.int('in_channels');
  const numHeads = p.int('num_heads', -1);
  const headCh = p.int('num_head_channels', -1);
  p.require(numHeads !== -1 || headCh !== -1, 'num_heads', 'num_heads or num_head_channels must be set');
  const cfg: Record<string, unknown> = {
    in_channels: maskChannel ? inCh - 1 : inCh,
    out_channels: p.int('out_channels'),
    model_channels: p.int('model_channels'),
    channel_mult: p.ints('channel_mult', [1, 2, 4, 8]),
    num_res_blocks: p.int('num_res_blocks'),
    attention_resolutions: p.ints('attention_resolutions'),
    temporal_length: p.int('temporal_length'),
    relative_position: p.bool('use_relative_position', false),
    relative_key: 'public',
    norm_scope: 'clip',
    scale_shift_norm: p.bool('use_scale_shift_norm', false),
    norm_groups: 32,
    dropout: p.num('dropout', 0),
    mask_channel: maskChannel,
  };
  if (headCh !== -1) cfg.head_channels = headCh;
  else cfg.num_heads = numHeads;
  if (p.has('num_classes')) {
    // ddpm3d passes the condition noise level s as the class label y: emb += label_emb(s).
    cfg.s_embed = 'table';
    cfg.s_levels = p.int('num_classes');
    cfg.s_mode = 'add';
  } else if (p.has('cond_aug_mode') && p.str('cond_aug_mode') === 'time_embed') {
    cfg.s_embed = 'sinusoid';
    cfg.s_mode = 'per_frame';
  }
  return UNetConfig.parse(cfg);
}

/** AutoencoderKL params -> AutoencoderModelConfig (the TATS-layout decoder). */
function autoencoderFromPublic(target: string, p: Reader): AutoencoderModelConfig {
  p.require(/(^|\.)AutoencoderKL$/.test(target), 'target', `'${target}' is not supported (expected lvdm.models.autoencoder3d.AutoencoderKL)`);
  const dd = p.child('ddconfig');
  dd.require(dd.bool('double_z', true), 'double_z', 'must be true (KL autoencoder)');
  const enc = dd.child('encoder');
  const dec = dd.child('decoder');
  enc.require(/aemodules3d\.Encoder$/.test(enc.str('target')), 'target', 'expected lvdm.models.modules.aemodules3d.Encoder');
  dec.require(/aemodules3d\.Decoder$/.test(dec.str('target')), 'target', 'expected lvdm.models.modules.aemodules3d.Decoder');
  const ep = enc.child('params');
  const dp = dec.child('params');
  ep.require(ep.str('norm_type', 'group') === 'group', 'norm_type', 'only group normalisation is supported');
  ep.require(ep.str('padding_type', 'replicate') === 'replicate', 'padding_type', 'only replicate padding is supported');
  const nh = ep.int('n_hiddens');
  const down = ep.ints('downsample');
  dp.require(dp.int('n_hiddens') === nh, 'n_hiddens', `must equal the encoder's ${nh}`);
  const up = dp.ints('upsample');
  dp.require(up.length === 3 && up.every((u, i) => u === down[i]), 'upsample', `must equal the encoder's downsample [${down}]`);
  ep.require(down.length === 3 && down[1] === down[2], 'downsample', `expected [t, s, s], got [${down}]`);
  const z = dd.int('z_channels');
  p.require(p.int('embed_dim') === z, 'embed_dim', `must equal ddconfig.z_channels (${z}) here`);
  const stages = Math.log2(down[1]);
  return AutoencoderModelConfig.parse({
    in_channels: ep.int('image_channel', 3),
    latent_channels: z,
    channels: Array.from({ length: stages }, (_, i) => nh * 2 ** (i + 1)),
    base_channels: nh,
    temporal_factor: down[0],
    spatial_factor: down[1],
    enc_res_blocks: 1,
    dec_res_blocks: 2,
    norm_groups: 32,
    decoder: 'tats',
  });
}

/** data.params.train.params of a public config -> DataConfig (real data set kinds kept; root only when literal). */
function dataFromPublic(root: Reader, frames: number, size: number): DataConfig {
  let source = 'folder';
  let dataRoot: string | undefined;
  let f = frames;
  let s = size;
  let stride = 1;
  if (root.has('data') && isObj(root.obj.data) && isObj((root.obj.data as Obj).params)) {
    const train = ((root.obj.data as Obj).params as Obj).train;
    if (isObj(train) && isObj(train.params)) {
      const tp = train.params;
      const target = typeof train.target === 'string' ? train.target.toLowerCase() : '';
      const name = typeof tp.dataset_name === 'string' ? tp.dataset_name.toLowerCase() : target.includes('taichi') ? 'taichi' : target.includes('ucf') ? 'ucf' : '';
      const kind = name.startsWith('ucf') ? 'ucf101' : name;
      if ((DATASET_KINDS as readonly string[]).includes(kind)) source = kind;
      if (typeof tp.data_root === 'string' && !tp.data_root.includes('${')) dataRoot = tp.data_root;
      if (typeof tp.resolution === 'number') s = tp.resolution;
      if (typeof tp.video_length === 'number') f = tp.video_length;
      if (typeof tp.frame_stride === 'number') stride = tp.frame_stride;
    }
  }
  return DataConfig.parse({ source, root: dataRoot, frames: f, size: s, frame_stride: stride });
}

/** Reads a public LVDM config file. */
export function readPublicConfig(file: string, name?: string): PublicSpec {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  const raw = parseYaml(fs.readFileSync(file, 'utf8'), file);
  if (!isObj(raw)) throw new Error(`${file}: expected a mapping at the top level`);
  const top = new Reader(file, raw, '');
  const model = top.child('model');
  const target = model.str('target');
  const params = model.child('params');
  const cfgName = name ?? `imported-${file.split('/').pop()!.replace(/\.ya?ml$/, '')}`;
  if (/(^|\.)AutoencoderKL$/.test(target)) {
    const ae = autoencoderFromPublic(target, params);
    const data = dataFromPublic(top, 16, 256);
    const config = validateConfig(
      { name: cfgName, seed: 0, data, autoencoder: { model: ae, train: { steps: 1, batch_size: 1 }, loss: { kl_weight: 0, disc_weight: 0.5 } } },
      `${file} (translated)`,
    );
    return { source: file, kind: 'autoencoder', config, latent: null, scaleByStd: false, conditioningKey: null, latentFrames: 0 };
  }
  model.require(/(^|\.)(LatentDiffusion|FrameInterpPredLatentDiffusion)$/.test(target), 'target', `'${target}' is not supported (expected ddpm3d.LatentDiffusion, FrameInterpPredLatentDiffusion or autoencoder3d.AutoencoderKL)`);
  params.require(params.str('parameterization', 'eps') === 'eps', 'parameterization', 'only eps prediction is supported');
  params.require(params.str('beta_schedule', 'linear') === 'linear', 'beta_schedule', 'only the linear schedule is supported here');
  params.require(params.str('encoder_type', '2d') === '3d', 'encoder_type', 'only the 3D video autoencoder (encoder_type: 3d) is supported');
  const condStage = params.obj.cond_stage_config;
  let conditioningKey: string | null = typeof params.obj.conditioning_key === 'string' ? params.obj.conditioning_key : null;
  if (condStage === '__is_unconditional__') conditioningKey = null;
  const maskChannel = conditioningKey !== null && /mask/.test(conditioningKey) && params.bool('concat_mask_on_input', true);
  params.require(conditioningKey === null || conditioningKey === 'concat-adm-mask' || conditioningKey === 'concat-time-mask', 'conditioning_key', `'${conditioningKey}' is not supported (unconditional, concat-adm-mask or concat-time-mask)`);
  const unetCfg = params.child('unet_config');
  const unet = unetFromPublic(unetCfg.str('target'), unetCfg.child('params'), maskChannel);
  const fsCfg = params.child('first_stage_config');
  const ae = autoencoderFromPublic(fsCfg.str('target'), fsCfg.child('params'));
  const imageSize = params.int('image_size', 32);
  const latentFrames = params.has('video_length') ? params.int('video_length') : unet.temporal_length;
  const data = dataFromPublic(top, latentFrames * ae.temporal_factor, imageSize * ae.spatial_factor);
  const scaleByStd = params.bool('scale_by_std', false);
  const latent = { scale: params.num('scale_factor', 1), shift: params.num('shift_factor', 0) };
  const loss = params.str('loss_type', 'l2');
  const config = validateConfig(
    {
      name: cfgName,
      seed: 0,
      data,
      autoencoder: { model: ae, train: { steps: 1, batch_size: 1 } },
      unet,
      diffusion: {
        schedule: { kind: 'linear', timesteps: params.int('timesteps', 1000), linear_start: params.num('linear_start', 1e-4), linear_end: params.num('linear_end', 2e-2) },
        loss: loss === 'l1' ? 'l1' : 'mse',
        optim: { kind: 'adamw', lr: model.num('base_learning_rate', 6e-5), weight_decay: 0.01 },
        train: { steps: 1, batch_size: 1, ema_decay: 0.9999 },
        // The public sampling scripts: DDIM 50 steps, eta 1.0 (sample_uncond.py default), "uniform" timesteps.
        sampling: { sampler: 'ddim', steps: 50, eta: 1, spacing: 'leading', final_alpha: 'alpha0' },
      },
    },
    `${file} (translated)`,
  );
  return { source: file, kind: 'lvdm', config, latent, scaleByStd, conditioningKey, latentFrames };
}

// ------------------------------------------------------------------------------------ export

/** Public openaimodel3d params for a UNetConfig (refuses what the public code cannot compute). */
export function unetToPublic(u: UNetConfig, imageSize: number): { target: string; params: Obj } {
  const bad = (what: string): never => {
    throw new Error(`export: ${what}`);
  };
  if (u.norm_groups !== 32) bad(`unet.norm_groups is ${u.norm_groups}; the public UNet uses GroupNorm(32)`);
  if (u.model_channels % 32 !== 0) bad(`unet.model_channels ${u.model_channels} is not a multiple of 32 (the public GroupNorm(32) needs it)`);
  if (!u.temporal_attention) bad('unet.temporal_attention false has no public counterpart');
  if (u.context_dim !== undefined) bad('text-to-video UNets are not exported by this tool');
  if (u.s_embed === 'sinusoid' && u.s_mode !== 'per_frame') bad("unet.s_embed 'sinusoid' with s_mode 'add' has no public counterpart");
  if (u.s_embed === 'table' && u.s_mode !== 'add') bad("unet.s_embed 'table' with s_mode 'per_frame' has no public counterpart");
  const params: Obj = {
    image_size: imageSize,
    in_channels: u.in_channels + (u.mask_channel ? 1 : 0),
    out_channels: u.out_channels,
    model_channels: u.model_channels,
    attention_resolutions: u.attention_resolutions,
    num_res_blocks: u.num_res_blocks,
    channel_mult: u.channel_mult,
    dropout: u.dropout,
    use_temporal_transformer: false,
    use_checkpoint: true,
    legacy: false,
    kernel_size_t: 1,
    padding_t: 0,
    temporal_length: u.temporal_length,
    use_relative_position: u.relative_position,
    use_scale_shift_norm: u.scale_shift_norm,
  };
  if (u.num_heads !== undefined) params.num_heads = u.num_heads;
  else params.num_head_channels = u.head_channels;
  if (u.s_embed === 'table') params.num_classes = u.s_levels;
  if (u.s_embed === 'sinusoid') params.cond_aug_mode = 'time_embed';
  const target = u.mask_channel || u.s_embed !== 'none' ? 'lvdm.models.modules.openaimodel3d.FrameInterpPredUNet' : 'lvdm.models.modules.openaimodel3d.UNetModel';
  return { target, params };
}

/** Public AutoencoderKL params for an AutoencoderModelConfig (TATS layout only). */
export function autoencoderToPublic(a: AutoencoderModelConfig): Obj {
  const bad = (what: string): never => {
    throw new Error(`export: ${what}`);
  };
  if (a.decoder !== 'tats') bad("autoencoder.model.decoder is 'mirror'; the public AutoencoderKL has the TATS decoder (train with decoder: tats to export)");
  const nh = a.base_channels ?? a.channels[0];
  if (a.channels.some((c, i) => c !== nh * 2 ** (i + 1))) bad(`autoencoder.model.channels [${a.channels}] must be base * 2^(i+1) (base ${nh}) for the public Encoder`);
  if (a.enc_res_blocks !== 1 || a.dec_res_blocks !== 2) bad('the public autoencoder has 1 residual block per encoder stage and 2 per decoder stage');
  if (a.norm_groups !== 32) bad(`autoencoder.model.norm_groups is ${a.norm_groups}; the public code uses GroupNorm(32)`);
  const ds = [a.temporal_factor, a.spatial_factor, a.spatial_factor];
  return {
    embed_dim: a.latent_channels,
    ddconfig: {
      double_z: true,
      z_channels: a.latent_channels,
      encoder: { target: 'lvdm.models.modules.aemodules3d.Encoder', params: { n_hiddens: nh, downsample: ds, image_channel: a.in_channels, norm_type: 'group', padding_type: 'replicate', double_z: true, z_channels: a.latent_channels } },
      decoder: { target: 'lvdm.models.modules.aemodules3d.Decoder', params: { n_hiddens: nh, upsample: ds, z_channels: a.latent_channels, image_channel: a.in_channels, norm_type: 'group' } },
    },
  };
}

/** A public-format YAML (model section) for an LVDM.ts config. */
export function publicYaml(config: ExperimentConfig, latent: LatentNormValues | null): string {
  const a = config.autoencoder?.model;
  if (!a) throw new Error('export: the config has no autoencoder section');
  const ae = autoencoderToPublic(a);
  if (!config.unet || !config.diffusion) {
    return stringify({ model: { base_learning_rate: config.autoencoder?.optim.lr ?? 3.6e-5, target: 'lvdm.models.autoencoder3d.AutoencoderKL', params: { ...ae, lossconfig: { target: 'torch.nn.Identity' } } } });
  }
  const u = config.unet;
  const d = config.diffusion;
  if (d.schedule.kind !== 'linear') throw new Error("export: the public code's configs use the linear schedule");
  const unet = unetToPublic(u, config.data.size / a.spatial_factor);
  const long = u.mask_channel || u.s_embed !== 'none';
  const params: Obj = {
    linear_start: d.schedule.linear_start,
    linear_end: d.schedule.linear_end,
    timesteps: d.schedule.timesteps,
    loss_type: d.loss === 'l1' ? 'l1' : 'l2',
    first_stage_key: 'image',
    cond_stage_key: 'image',
    image_size: config.data.size / a.spatial_factor,
    video_length: config.data.frames / a.temporal_factor,
    channels: u.in_channels,
    cond_stage_trainable: false,
    concat_mode: false,
    scale_by_std: false,
    scale_factor: latent?.scale ?? 1,
    shift_factor: latent?.shift ?? 0,
    cond_stage_config: long ? null : '__is_unconditional__',
    encoder_type: '3d',
    unet_config: unet,
    first_stage_config: { target: 'lvdm.models.autoencoder3d.AutoencoderKL', params: { ...ae, lossconfig: '__is_first_stage__' } },
  };
  if (long) {
    params.conditioning_key = u.s_embed === 'sinusoid' ? 'concat-time-mask' : 'concat-adm-mask';
    const lc = config.long;
    // FrameInterpPredLatentDiffusion's training-time masking; without a long section it is switched off.
    if (lc) {
      params.rand_temporal_mask = true;
      params.p_pred = lc.role === 'prediction' ? lc.p_cond : 0;
      params.p_interp = lc.role === 'interpolation' ? lc.p_cond : 0;
      params.n_prevs = lc.role === 'prediction' ? [lc.cond_frames] : null;
      params.noisy_cond = lc.s_max !== null;
      if (lc.s_max !== null) params.max_noise_level = lc.s_max;
      if (lc.latent_stride > 1) params.latent_frame_strde = lc.latent_stride;
    } else params.rand_temporal_mask = false;
  }
  const target = long ? 'lvdm.models.ddpm3d.FrameInterpPredLatentDiffusion' : 'lvdm.models.ddpm3d.LatentDiffusion';
  return stringify({ model: { base_learning_rate: d.optim.lr, target, params } });
}
