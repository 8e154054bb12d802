/**
 * The one configuration schema of LVDM.ts. Every YAML file under experiments/ is validated against
 * `ExperimentConfig`; each stage (autoencoder, diffusion, ...) reads its own section. Objects are
 * strict: an unknown key is an error. Keys are snake_case as in the YAML files.
 */
import { z } from 'zod';

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

export const DataConfig = z
  .object({
    /** `synthetic-shapes|synthetic-sky|synthetic-taichi|synthetic-ucf`, `shards` (prepared), or a real data set. */
    source: z.string().min(1),
    /** Data root (real data sets / prepared shards). */
    root: z.string().optional(),
    frames: posInt,
    size: posInt,
    frame_stride: posInt.default(1),
    /** Number of synthetic videos (synthetic sources). */
    num_videos: posInt.default(512),
    /** Length of each synthetic video in frames (long-video work needs thousands). */
    video_length: posInt.optional(),
    /** Held-out synthetic videos used for evaluation (indices after the training ones). */
    held_out: nonNegInt.default(16),
    split: z.enum(['train', 'test', 'all']).default('train'),
    fold: z.number().int().min(1).max(3).default(1),
  })
  .strict();

export const OptimConfig = z
  .object({
    kind: z.enum(['adam', 'adamw']).default('adam'),
    lr: z.number().positive(),
    betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.999]),
    eps: z.number().positive().default(1e-8),
    weight_decay: z.number().nonnegative().default(0),
    warmup_steps: nonNegInt.default(0),
    decay: z.enum(['constant', 'cosine']).default('constant'),
    min_lr: z.number().nonnegative().default(0),
    /** Global-norm gradient clipping; 0 disables. */
    grad_clip: z.number().nonnegative().default(0),
  })
  .strict();

export const TrainConfig = z
  .object({
    steps: posInt,
    batch_size: posInt,
    ckpt_every: posInt.default(500),
    log_every: posInt.default(10),
    /** EMA decay of weights (0 disables). */
    ema_decay: z.number().min(0).max(1).default(0),
  })
  .strict();

export const AutoencoderModelConfig = z
  .object({
    in_channels: posInt.default(3),
    latent_channels: posInt.default(4),
    /** Channels of each down stage; the number of stages is log2(spatial_factor). */
    channels: z.array(posInt).min(1),
    /** Temporal downsampling factor ft (power of two). */
    temporal_factor: posInt.default(4),
    /** Spatial downsampling factor fs (power of two). */
    spatial_factor: posInt.default(8),
    /** Channels of the first conv (before the first down stage). */
    base_channels: posInt.optional(),
    enc_res_blocks: posInt.default(1),
    dec_res_blocks: posInt.default(2),
    norm_groups: posInt.default(32),
    logvar_clamp: z.tuple([z.number(), z.number()]).default([-30, 20]),
  })
  .strict();

export const AutoencoderLossConfig = z
  .object({
    pixel: z.enum(['l1', 'mse']).default('l1'),
    pixel_weight: z.number().nonnegative().default(1),
    /** LPIPS weight; must be 0 unless `lpips_weights` names a weights file. */
    lpips_weight: z.number().nonnegative().default(0),
    lpips_weights: z.string().nullable().default(null),
    lpips_net: z.enum(['vgg', 'alex']).default('vgg'),
    kl_weight: z.number().nonnegative().default(0),
    logvar_init: z.number().default(0),
    disc_weight: z.number().nonnegative().default(0.5),
    disc_start: nonNegInt.default(50000),
    disc_layers: posInt.default(3),
    disc_channels: posInt.default(64),
    disc_lr: z.number().positive().optional(),
  })
  .strict();

export const AutoencoderConfig = z
  .object({
    model: AutoencoderModelConfig,
    loss: AutoencoderLossConfig.default({}),
    optim: OptimConfig.default({ lr: 3.6e-5, betas: [0.5, 0.9] }),
    train: TrainConfig,
    /** Clips encoded to estimate the latent shift/scale stored with the checkpoint. */
    latent_stats_clips: posInt.default(32),
  })
  .strict();

/** The 3D UNet of the latent diffusion model (lvdm-facts.md section 3). */
export const UNetConfig = z
  .object({
    /** Latent channels of x (the mask channel, when enabled, is added on top). */
    in_channels: posInt.default(4),
    out_channels: posInt.default(4),
    model_channels: posInt,
    channel_mult: z.array(posInt).min(1).default([1, 2]),
    num_res_blocks: posInt.default(1),
    /** Downsample factors (1, 2, 4, ...) whose levels get spatial + temporal attention; the middle block always has it. */
    attention_resolutions: z.array(posInt).default([2]),
    /** Channels per attention head (heads = channels / head_channels); ignored when num_heads is set. */
    head_channels: posInt.default(32),
    num_heads: posInt.optional(),
    /** Relative-position table covers distances -L..L (clipped beyond): size 2L + 1. */
    temporal_length: posInt,
    relative_position: z.boolean().default(true),
    /** Temporal attention in the attention blocks (false: spatial only). */
    temporal_attention: z.boolean().default(true),
    /** Adaptive GroupNorm: GN(h) * (1 + scale) + shift from the timestep embedding; false adds the embedding. */
    scale_shift_norm: z.boolean().default(true),
    norm_groups: posInt.default(32),
    dropout: z.number().min(0).lt(1).default(0),
    /** Extra input channel: 1 = given condition frame, 0 = frame to generate (long-video models). */
    mask_channel: z.boolean().default(false),
    /** Embedding of the condition noise level s: none, a learned table of s_levels rows, or sinusoid + MLP. */
    s_embed: z.enum(['none', 'table', 'sinusoid']).default('none'),
    s_levels: posInt.default(251),
    /** 'add': s embedding added to the time embedding of every frame; 'per_frame': condition frames use it instead. */
    s_mode: z.enum(['add', 'per_frame']).default('add'),
  })
  .strict();

export const NoiseScheduleConfig = z
  .object({
    kind: z.enum(['linear', 'cosine']).default('linear'),
    timesteps: posInt.default(1000),
    linear_start: z.number().positive().default(0.0015),
    linear_end: z.number().positive().default(0.0155),
    cosine_s: z.number().nonnegative().default(0.008),
  })
  .strict();

export const SamplingConfig = z
  .object({
    sampler: z.enum(['ddim', 'ddpm']).default('ddim'),
    steps: posInt.default(50),
    eta: z.number().min(0).max(1).default(0),
    /** Samples written by `lvdm sample` / the demo when not given on the command line. */
    n: posInt.default(16),
    batch_size: posInt.default(4),
    fps: posInt.default(8),
  })
  .strict();

export const LatentCacheConfig = z
  .object({
    /** Random clip windows encoded per training video (cache size = num_videos x this). */
    windows_per_video: posInt.default(1),
    /** Cap on the number of cached clips (the first videos' windows); unset = all. */
    max_clips: posInt.optional(),
    /** Clips per encoder forward. */
    batch_size: posInt.default(4),
  })
  .strict();

/** Latent diffusion training and sampling (lvdm-facts.md section 2). */
export const DiffusionConfig = z
  .object({
    /** Autoencoder checkpoint whose latents are modelled (the CLI's --ae overrides it). */
    autoencoder: z.string().optional(),
    schedule: NoiseScheduleConfig.default({}),
    /** Epsilon-prediction loss: 'l1' (public LVDM code) or 'mse' (the paper's L_simple). */
    loss: z.enum(['l1', 'mse']).default('l1'),
    optim: OptimConfig.default({ kind: 'adamw', lr: 6e-5, weight_decay: 0.01 }),
    train: TrainConfig,
    latents: LatentCacheConfig.default({}),
    sampling: SamplingConfig.default({}),
  })
  .strict();

/**
 * Long-video conditioning (lvdm-facts.md sections 4-5; issue 6): what a prediction or interpolation
 * model learns. The mask channel marks condition latents; one network learns the conditional and
 * the unconditional score (mask all zero with probability 1 - p_cond). Used by lib/hierarchical.
 */
export const LongVideoConfig = z
  .object({
    /** 'prediction': the first `cond_frames` latents are conditions; 'interpolation': the first and the last. */
    role: z.enum(['prediction', 'interpolation']),
    /** Latent frames per model input (LVDM: 4 for prediction, 5 for interpolation). */
    window: posInt,
    /** Spacing of those latents in a cached clip, in latent frames: 1 = consecutive; LVDM's sparse prediction model uses 4. */
    latent_stride: posInt.default(1),
    /** prediction: number k of leading condition latents (ignored by interpolation). */
    cond_frames: posInt.default(1),
    /** Probability that an example gets the conditional mask (LVDM: p_pred 0.5, p_interp 0.9); otherwise all-zero mask. */
    p_cond: z.number().min(0).max(1),
    /**
     * Conditional latent perturbation: condition latents enter as q(z_0, s), s ~ U{0..s_max} (LVDM 250),
     * and the network is told s (needs unet.s_embed; levels: 0 = unconditional, s + 1 = perturbed by s).
     * null: clean conditions and no s input (unet.s_embed 'none').
     */
    s_max: nonNegInt.nullable().default(250),
    /** Loss over the generated latents only ('generated') or over every latent ('all'). */
    loss_frames: z.enum(['generated', 'all']).default('generated'),
  })
  .strict();

export const ExperimentConfig = z
  .object({
    name: z.string().min(1),
    seed: z.number().int().default(0),
    description: z.string().optional(),
    data: DataConfig,
    autoencoder: AutoencoderConfig.optional(),
    unet: UNetConfig.optional(),
    diffusion: DiffusionConfig.optional(),
    long: LongVideoConfig.optional(),
  })
  .strict();

export type DataConfig = z.infer<typeof DataConfig>;
export type OptimConfig = z.infer<typeof OptimConfig>;
export type TrainConfig = z.infer<typeof TrainConfig>;
export type AutoencoderModelConfig = z.infer<typeof AutoencoderModelConfig>;
export type AutoencoderLossConfig = z.infer<typeof AutoencoderLossConfig>;
export type AutoencoderConfig = z.infer<typeof AutoencoderConfig>;
export type UNetConfig = z.infer<typeof UNetConfig>;
export type NoiseScheduleConfig = z.infer<typeof NoiseScheduleConfig>;
export type SamplingConfig = z.infer<typeof SamplingConfig>;
export type LatentCacheConfig = z.infer<typeof LatentCacheConfig>;
export type DiffusionConfig = z.infer<typeof DiffusionConfig>;
export type LongVideoConfig = z.infer<typeof LongVideoConfig>;
export type ExperimentConfig = z.infer<typeof ExperimentConfig>;
