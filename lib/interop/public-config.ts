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
import * as path from 'node:path';
import { stringify } from 'yaml';
import { AutoencoderModelConfig, DataConfig, ExperimentConfig, TextConfig, UNetConfig } from '../config/schema';
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
  if (p.bool('use_temporal_transformer', false)) {
    // Text-to-video: attention_temporal.SpatialTemporalTransformer blocks (lib/models/unet3d/transformer.ts).
    p.require(p.str('ST_transformer_module', 'attention_temporal') === 'attention_temporal' && p.str('ST_transformer_class', 'SpatialTemporalTransformer') === 'SpatialTemporalTransformer', 'ST_transformer_class', 'only attention_temporal.SpatialTemporalTransformer is supported');
    cfg.attention_block = 'st_transformer';
    cfg.context_dim = p.int('context_dim');
    cfg.transformer_depth = p.int('transformer_depth', 1);
    cfg.ff_mult = 4; // FeedForward(dim, glu=True): GEGLU with 4 x dim hidden units
    cfg.relative_key = 'shaw'; // TemporalCrossAttention adds q_i . w[clip(j - i)] / sqrt(d): Shaw et al.'s form
  } else p.require(!p.has('context_dim'), 'context_dim', 'cross-attention needs use_temporal_transformer: true (as the public UNetModel asserts)');
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

/** LDM's 2D AutoencoderKL (lvdm.models.autoencoder, the text-to-video first stage) -> arch 'ldm', frame-wise. */
function autoencoder2dFromPublic(p: Reader): AutoencoderModelConfig {
  const dd = p.child('ddconfig');
  dd.require(dd.bool('double_z', true), 'double_z', 'must be true (KL autoencoder)');
  const mult = dd.ints('ch_mult', [1, 2, 4, 8]);
  dd.require(mult.length >= 2 && mult[0] === 1, 'ch_mult', `expected at least two levels starting with 1, got [${mult}]`);
  dd.require(dd.ints('attn_resolutions', []).length === 0, 'attn_resolutions', 'per-level attention is not supported (the released text-to-video autoencoder has none)');
  dd.require(!dd.bool('use_linear_attn', false) && dd.str('attn_type', 'vanilla') === 'vanilla', 'attn_type', "only the 'vanilla' middle attention is supported");
  dd.require(dd.bool('resamp_with_conv', true), 'resamp_with_conv', 'only convolutional resampling is supported');
  dd.require(!dd.bool('tanh_out', false) && !dd.bool('give_pre_end', false), 'tanh_out', 'tanh_out / give_pre_end are not supported');
  const inCh = dd.int('in_channels', 3);
  dd.require(dd.int('out_ch', inCh) === inCh, 'out_ch', `must equal in_channels (${inCh})`);
  const z = dd.int('z_channels');
  p.require(p.int('embed_dim') === z, 'embed_dim', `must equal ddconfig.z_channels (${z}) here`);
  const ch = dd.int('ch');
  const nrb = dd.int('num_res_blocks');
  return AutoencoderModelConfig.parse({
    arch: 'ldm',
    frame_wise: true,
    in_channels: inCh,
    latent_channels: z,
    base_channels: ch,
    channels: mult.slice(1).map((m) => m * ch),
    temporal_factor: 1,
    spatial_factor: 2 ** (mult.length - 1),
    enc_res_blocks: nrb,
    dec_res_blocks: nrb + 1,
    norm_groups: 32,
  });
}

/** AutoencoderKL params -> AutoencoderModelConfig (the TATS-layout decoder, or LDM's 2D network). */
function autoencoderFromPublic(target: string, p: Reader): AutoencoderModelConfig {
  p.require(/(^|\.)AutoencoderKL$/.test(target), 'target', `'${target}' is not supported (expected lvdm.models.autoencoder3d.AutoencoderKL or lvdm.models.autoencoder.AutoencoderKL)`);
  if (/(^|\.)autoencoder\.AutoencoderKL$/.test(target)) return autoencoder2dFromPublic(p);
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

/** HF CLIPTextConfig fields (a CLIPModel config.json nests them under text_config). */
interface HfClipTextConfig {
  hidden_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  intermediate_size?: number;
  max_position_embeddings?: number;
  hidden_act?: string;
  layer_norm_eps?: number;
  text_config?: HfClipTextConfig;
}

/**
 * The FrozenCLIPEmbedder of a text-to-video config -> the `text` section: tokenizer files and sizes
 * from `dir` (a Hugging Face download such as openai/clip-vit-large-patch14: vocab.json, merges.txt,
 * config.json; without config.json the ViT-L/14 sizes). LDM attends to all padded tokens
 * (mask_padding false) and pads with <|endoftext|>.
 */
function textFromPublic(cond: Reader, dir: string | undefined): TextConfig {
  cond.require(/(^|\.)FrozenCLIPEmbedder$/.test(cond.str('target')), 'target', `'${cond.str('target')}' is not supported (expected condition_modules.FrozenCLIPEmbedder)`);
  const p = cond.has('params') ? cond.child('params') : new Reader(cond.source, {}, `${cond.path}.params`);
  const version = p.str('version', 'openai/clip-vit-large-patch14');
  const maxLength = p.int('max_length', 77);
  const root = dir ?? (fs.existsSync(path.join(version, 'vocab.json')) ? version : undefined);
  if (!root)
    throw new Error(`${cond.source}: text-to-video needs the CLIP tokenizer of '${version}': pass --clip DIR, a folder with its vocab.json and merges.txt (and config.json for other than ViT-L/14)`);
  for (const f of ['vocab.json', 'merges.txt']) if (!fs.existsSync(path.join(root, f))) throw new Error(`${root}: no ${f} (the CLIP tokenizer files of '${version}')`);
  let hf: HfClipTextConfig = { hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };
  const cfgFile = path.join(root, 'config.json');
  if (fs.existsSync(cfgFile)) {
    const raw = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as HfClipTextConfig;
    hf = { ...hf, ...(raw.text_config ?? raw) };
  }
  const width = hf.hidden_size as number;
  const ratio = (hf.intermediate_size as number) / width;
  const bad = (what: string): never => {
    throw new Error(`${cfgFile}: ${what}`);
  };
  if (hf.hidden_act !== 'quick_gelu') bad(`hidden_act '${hf.hidden_act}' is not supported (the CLIP text tower uses quick_gelu)`);
  if (hf.layer_norm_eps !== 1e-5) bad(`layer_norm_eps ${hf.layer_norm_eps} is not supported (1e-5)`);
  if (!Number.isInteger(ratio)) bad(`intermediate_size ${hf.intermediate_size} is not a multiple of hidden_size ${width}`);
  if (hf.max_position_embeddings !== maxLength) bad(`max_position_embeddings ${hf.max_position_embeddings} differs from the embedder's max_length ${maxLength}`);
  return TextConfig.parse({
    vocab: path.resolve(root, 'vocab.json'),
    merges: path.resolve(root, 'merges.txt'),
    width,
    layers: hf.num_hidden_layers,
    heads: hf.num_attention_heads,
    context_length: maxLength,
    mlp_ratio: ratio,
    train: false,
    mask_padding: false,
    pad: 'end',
  });
}

export interface ReadPublicOptions {
  /** Folder with the CLIP tokenizer (vocab.json, merges.txt) and config.json of a text-to-video model. */
  clip?: string;
}

/** Reads a public LVDM config file. */
export function readPublicConfig(file: string, name?: string, opts: ReadPublicOptions = {}): PublicSpec {
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
  const encoderType = params.str('encoder_type', '2d');
  params.require(encoderType === '3d' || encoderType === '2d', 'encoder_type', `expected 2d or 3d, got '${encoderType}'`);
  const condStage = params.obj.cond_stage_config;
  let conditioningKey: string | null = typeof params.obj.conditioning_key === 'string' ? params.obj.conditioning_key : null;
  if (condStage === '__is_unconditional__') conditioningKey = null;
  const maskChannel = conditioningKey !== null && /mask/.test(conditioningKey) && params.bool('concat_mask_on_input', true);
  params.require(
    conditioningKey === null || conditioningKey === 'concat-adm-mask' || conditioningKey === 'concat-time-mask' || conditioningKey === 'crossattn',
    'conditioning_key',
    `'${conditioningKey}' is not supported (unconditional, concat-adm-mask, concat-time-mask or crossattn)`,
  );
  const unetCfg = params.child('unet_config');
  const unet = unetFromPublic(unetCfg.str('target'), unetCfg.child('params'), maskChannel);
  const text = conditioningKey === 'crossattn' ? textFromPublic(params.child('cond_stage_config'), opts.clip) : undefined;
  if (text) unetCfg.child('params').require(unet.context_dim === text.width, 'context_dim', `must equal the CLIP text width ${text.width}`);
  else unetCfg.child('params').require(unet.context_dim === undefined, 'context_dim', "cross-attention needs conditioning_key 'crossattn' with a FrozenCLIPEmbedder cond stage");
  const fsCfg = params.child('first_stage_config');
  const ae = autoencoderFromPublic(fsCfg.str('target'), fsCfg.child('params'));
  params.require((ae.arch === 'ldm') === (encoderType === '2d'), 'encoder_type', `'${encoderType}' does not match the first stage '${fsCfg.str('target')}' (2d: lvdm.models.autoencoder.AutoencoderKL, 3d: autoencoder3d)`);
  // image_size: one number, or [h, w] (text2video.yaml) with square latents.
  const sizes = Array.isArray(params.obj.image_size) ? params.ints('image_size') : [params.int('image_size', 32)];
  params.require(sizes.length <= 2 && sizes.every((v) => v === sizes[0]), 'image_size', `only square latents are supported, got [${sizes}]`);
  const imageSize = sizes[0];
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
      text,
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
  const st = u.attention_block === 'st_transformer';
  if (u.context_dim !== undefined && !st) bad("unet.context_dim with attention_block 'lvdm' has no public counterpart (the public text-to-video UNet uses 'st_transformer')");
  if (st && u.ff_mult !== 4) bad(`unet.ff_mult ${u.ff_mult}: the public SpatialTemporalTransformer's GEGLU has 4 x channels`);
  if (st && u.relative_key !== 'shaw') bad("unet.relative_key 'public' with st_transformer: the public TemporalCrossAttention uses Shaw et al.'s form ('shaw')");
  if (st && u.mask_channel) bad('text-to-video UNets with a mask channel have no public counterpart');
  if (u.s_embed === 'sinusoid' && u.s_mode !== 'per_frame') bad("unet.s_embed 'sinusoid' with s_mode 'add' has no public counterpart");
  if (u.s_embed === 'table' && u.s_mode !== 'add') bad("unet.s_embed 'table' with s_mode 'per_frame' has no public counterpart");
  if (u.self_condition) bad('unet.self_condition: the public UNet reads no x_0 estimate (its first convolution has in_channels inputs)');
  if (u.num_classes !== undefined) bad("unet.num_classes: the public UNet's label table embeds the condition noise level s of long videos; a class-conditional model has no public counterpart");
  const params: Obj = {
    image_size: imageSize,
    in_channels: u.in_channels + (u.mask_channel ? 1 : 0),
    out_channels: u.out_channels,
    model_channels: u.model_channels,
    attention_resolutions: u.attention_resolutions,
    num_res_blocks: u.num_res_blocks,
    channel_mult: u.channel_mult,
    dropout: u.dropout,
    use_temporal_transformer: st,
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
  if (st) {
    params.context_dim = u.context_dim;
    params.transformer_depth = u.transformer_depth;
  }
  if (u.s_embed === 'table') params.num_classes = u.s_levels;
  if (u.s_embed === 'sinusoid') params.cond_aug_mode = 'time_embed';
  const target = u.mask_channel || u.s_embed !== 'none' ? 'lvdm.models.modules.openaimodel3d.FrameInterpPredUNet' : 'lvdm.models.modules.openaimodel3d.UNetModel';
  return { target, params };
}

/** Public AutoencoderKL params for an AutoencoderModelConfig (TATS layout, or LDM's 2D network). */
export function autoencoderToPublic(a: AutoencoderModelConfig): Obj {
  const bad = (what: string): never => {
    throw new Error(`export: ${what}`);
  };
  if (a.arch === 'ldm') {
    const ch = a.base_channels ?? a.channels[0];
    if (a.channels.some((c) => c % ch !== 0)) bad(`autoencoder.model.channels [${a.channels}] must be multiples of base_channels ${ch} (LDM's ch_mult)`);
    if (a.dec_res_blocks !== a.enc_res_blocks + 1) bad('LDM\'s 2D autoencoder has num_res_blocks blocks per encoder level and one more per decoder level');
    if (a.norm_groups !== 32) bad(`autoencoder.model.norm_groups is ${a.norm_groups}; the public code uses GroupNorm(32)`);
    const ddconfig = { double_z: true, z_channels: a.latent_channels, resolution: 256, in_channels: a.in_channels, out_ch: a.in_channels, ch, ch_mult: [1, ...a.channels.map((c) => c / ch)], num_res_blocks: a.enc_res_blocks, attn_resolutions: [], dropout: 0.0 };
    return { embed_dim: a.latent_channels, ddconfig };
  }
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
  const aeTarget = a.arch === 'ldm' ? 'lvdm.models.autoencoder.AutoencoderKL' : 'lvdm.models.autoencoder3d.AutoencoderKL';
  if (!config.unet || !config.diffusion) {
    return stringify({ model: { base_learning_rate: config.autoencoder?.optim.lr ?? 3.6e-5, target: aeTarget, params: { ...ae, lossconfig: { target: 'torch.nn.Identity' } } } });
  }
  const u = config.unet;
  const d = config.diffusion;
  if (d.schedule.kind !== 'linear') throw new Error("export: the public code's configs use the linear schedule");
  if ((d.prediction ?? 'eps') !== 'eps') throw new Error("export: the public LVDM code predicts eps (its DDPM takes parameterization eps or x0); this model predicts v");
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
    encoder_type: a.arch === 'ldm' ? '2d' : '3d',
    unet_config: unet,
    first_stage_config: { target: aeTarget, params: { ...ae, lossconfig: '__is_first_stage__' } },
  };
  if (config.text) {
    // Text-to-video (configs/lvdm_short/text2video.yaml): the FrozenCLIPEmbedder, no EMA copy.
    params.conditioning_key = 'crossattn';
    params.cond_stage_key = 'caption';
    params.use_ema = false;
    params.cond_stage_config = { target: 'lvdm.models.modules.condition_modules.FrozenCLIPEmbedder', params: { max_length: config.text.context_length } };
  }
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
