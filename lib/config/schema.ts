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
    /** `synthetic-shapes|synthetic-shapes-large|synthetic-shapes-upright|synthetic-shapes-plain|synthetic-shapes-flat|synthetic-shapes-single|synthetic-sky|synthetic-taichi|synthetic-ucf|synthetic-captioned`, `shards` (prepared), or a real data set. */
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
    /** Latent models: also export the sampling weights at every checkpoint to snapshots/lvdm-<step>.safetensors (quality-vs-training-time curves). */
    snapshots: z.boolean().optional(),
    /**
     * Precision of the training steps' convolutions: unset = 'fp32'. 'bf16' (libtorch backend, a
     * CPU with AMX or AVX512-BF16): bfloat16 operands, float32 accumulation and results; weights,
     * optimiser, matrix products and everything else float32, as PyTorch's CPU autocast does for
     * convolutions (lib/backend/precision.ts). Other backends refuse it.
     */
    precision: z.enum(['fp32', 'bf16']).optional(),
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
    enc_res_blocks: nonNegInt.default(1),
    dec_res_blocks: posInt.default(2),
    norm_groups: posInt.default(32),
    logvar_clamp: z.tuple([z.number(), z.number()]).default([-30, 20]),
    /**
     * Decoder layout: 'mirror' (conv_in, per stage residual blocks then a transposed conv, norm_out) or
     * 'tats' (the public LVDM/TATS decoder: per stage a transposed conv first - temporal upsampling in
     * the first stages - then residual blocks; no conv_in / norm_out; set by `lvdm import`).
     */
    decoder: z.enum(['mirror', 'tats']).default('mirror'),
    /** Frame-wise 2D autoencoder (text-to-video, lvdm-facts.md section 6): every kernel 1 x k x k, no temporal mixing; needs temporal_factor 1. */
    frame_wise: z.boolean().default(false),
    /**
     * Network: 'lvdm' (this file's 3D layout) or 'ldm' (LDM's 2D AutoencoderKL per frame, the public
     * text-to-video first stage: ResnetBlocks, stride-2 convs padded right/bottom, a self-attention
     * middle block, nearest upsampling; level widths base_channels then channels, enc_res_blocks per
     * encoder level, dec_res_blocks per decoder level; needs frame_wise; set by `lvdm import`).
     */
    arch: z.enum(['lvdm', 'ldm']).default('lvdm'),
  })
  .strict();

/**
 * A motion threshold without a motion weight changes nothing (lib/nn/motion-weights.ts): refused at
 * validation, so the error names the file and the key path (e.g. stages.dec.finetune.motion_threshold).
 */
function motionKeys(v: { motion_weight?: number; motion_threshold?: number }, ctx: z.RefinementCtx): void {
  if (v.motion_threshold !== undefined && !v.motion_weight)
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['motion_threshold'], message: `is ${v.motion_threshold} but motion_weight is unset or 0, so it would change nothing; set motion_weight > 0 or remove motion_threshold` });
}

export const AutoencoderLossConfig = z
  .object({
    pixel: z.enum(['l1', 'mse']).default('l1'),
    /** Weight of the L1/MSE term (LDM's pixelloss_weight, which its LPIPSWithDiscriminator accepts but never applies; applied here). */
    pixel_weight: z.number().nonnegative().default(1),
    /**
     * Weight of the gradient difference loss added to the per-pixel term (lib/autoencoder/gdl.ts;
     * Mathieu et al. 2016); absent = 0. Optional rather than defaulted so that configs without it
     * keep their content keys (and the shipped models stay reusable).
     */
    edge_weight: z.number().nonnegative().optional(),
    /**
     * Weight of moving pixels in the reconstruction term, lambda >= 0 (unset = 0 = uniform, as LDM):
     * each pixel's term is multiplied by 1 + lambda * max(m - tau, 0), m = max over colours of
     * |x - x's mean over the clip's frames| in [-1, 1] units (lib/nn/motion-weights.ts). For a small
     * moving actor the autoencoder otherwise blurs (experiments/RESULTS.md, "Ucf fs2: an autoencoder
     * weighted towards what moves"). Optional so that configs without it keep their content keys.
     */
    motion_weight: z.number().nonnegative().optional(),
    /** Threshold tau >= 0 of motion_weight (unset = 0); needs motion_weight > 0. */
    motion_threshold: z.number().nonnegative().optional(),
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
  .strict()
  .superRefine(motionKeys);

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
    /**
     * Relative-key term of temporal attention: 'shaw' (correct orientation, 1/sqrt(d)); 'public' = the
     * public LVDM code's transposed term scaled by d^-1/4, needed by its released weights (set by `lvdm import`).
     */
    relative_key: z.enum(['shaw', 'public']).default('shaw'),
    /**
     * GroupNorm statistics of the residual blocks and the output layer: per frame ('frame'), or over
     * the whole clip ('clip': the public LVDM code's GroupNorm on [B, C, T, H, W]; set by `lvdm import`).
     */
    norm_scope: z.enum(['frame', 'clip']).default('frame'),
    /** Temporal attention in the attention blocks (false: spatial only). */
    temporal_attention: z.boolean().default(true),
    /** Adaptive GroupNorm: GN(h) * (1 + scale) + shift from the timestep embedding; false adds the embedding. */
    scale_shift_norm: z.boolean().default(true),
    norm_groups: posInt.default(32),
    dropout: z.number().min(0).lt(1).default(0),
    /** Extra input channel: 1 = given condition frame, 0 = frame to generate (long-video models). */
    mask_channel: z.boolean().default(false),
    /**
     * Self-conditioning (Chen, Zhang & Hinton 2022, "Analog Bits", arXiv 2208.04202, section 3.2):
     * the network also reads its own earlier estimate of x_0 (in_channels more input channels, cond
     * key 'self_cond', zeros when absent). Training feeds, for half the batches, the estimate of a
     * first forward without gradient at the same step; samplers feed the previous step's estimate.
     * Optional (unset = off) so that no stored config or content key changes.
     */
    self_condition: z.boolean().optional(),
    /** Embedding of the condition noise level s: none, a learned table of s_levels rows, or sinusoid + MLP. */
    s_embed: z.enum(['none', 'table', 'sinusoid']).default('none'),
    s_levels: posInt.default(251),
    /** 'add': s embedding added to the time embedding of every frame; 'per_frame': condition frames use it instead. */
    s_mode: z.enum(['add', 'per_frame']).default('add'),
    /**
     * Class-conditional model (ADM, Dhariwal & Nichol 2021, section 3; classifier-free guidance, Ho &
     * Salimans 2022): a learned table of num_classes + 1 rows, indexed by the clip's class label
     * (cond key 'class_label', [B] integers; row num_classes is the null label, the unconditional
     * score), joins the time embedding of every frame. Training drops labels to the null label with
     * probability diffusion.class_p_uncond. Optional (unset = unconditional) so that no stored
     * config or content key changes.
     */
    num_classes: posInt.optional(),
    /** Text-to-video: channels of the text tokens (text.width); adds cross-attention to every attention block. */
    context_dim: posInt.optional(),
    /** Feed-forward layer in every attention block, hidden size ff_mult x channels (0: none; text-to-video uses 4; GEGLU in 'st_transformer' blocks). */
    ff_mult: nonNegInt.default(0),
    /**
     * Attention block layout: 'lvdm' (GroupNorm + qkv self-attentions, then cross-attention and
     * feed-forward) or 'st_transformer' (the public text-to-video code's SpatialTemporalTransformer:
     * GroupNorm, proj_in, transformer_depth blocks of LayerNorm'd spatial self-, temporal self-,
     * spatial cross-, temporal self-attention and a GEGLU feed-forward, proj_out; set by `lvdm import`).
     */
    attention_block: z.enum(['lvdm', 'st_transformer']).default('lvdm'),
    /** Transformer blocks per 'st_transformer' attention block. */
    transformer_depth: posInt.default(1),
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
    /** DDIM timesteps: 'trailing' (from T - 1) or 'leading' (LDM/LVDM's "uniform": i * floor(T / S) + 1; set by `lvdm import`). */
    spacing: z.enum(['trailing', 'leading']).default('trailing'),
    /** DDIM's last step ends at abar = 1 ('one') or at abar_0 ('alpha0': LDM/LVDM's DDIMSampler; set by `lvdm import`). */
    final_alpha: z.enum(['one', 'alpha0']).default('one'),
    /** Samples written by `lvdm sample` / the demo when not given on the command line. */
    n: posInt.default(16),
    batch_size: posInt.default(4),
    fps: posInt.default(8),
    /** Precision of the sampler's convolutions (`lvdm sample`'s default; unset = 'fp32'); as `train.precision`. */
    precision: z.enum(['fp32', 'bf16']).optional(),
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
    /**
     * Input scaling b (Chen 2023, "On the importance of noise scheduling for diffusion models"): the
     * normalised latents are multiplied by b before diffusion and divided by it after sampling, so
     * every step's signal-to-noise ratio falls by b^2. Larger latent grids need b < 1: neighbouring
     * latents are correlated, so at the last step the mean of a patch still carries the signal,
     * which pure-noise starts lack (Hoogeboom et al. 2023 shift the schedule by the resolution
     * ratio). Unset = 1; kept in the model's stored latent scale.
     */
    input_scale: z.number().positive().finite().optional(),
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
    /**
     * Per-sample weight of the eps loss by timestep: unset = uniform (L_simple). 'v' weights each
     * sample by the factor that turns its eps error into the v-prediction error
     * (v = sqrt(abar) eps - sqrt(1 - abar) x0, so |v^ - v| = |eps^ - eps| / sqrt(abar); Salimans & Ho
     * 2022): 1 / sqrt(abar_t) for 'l1', 1 / abar_t for 'mse', as a weighted mean over the batch. It
     * moves the loss towards the high-noise steps where eps-prediction barely sees x0
     * (experiments/RESULTS.md, "Larger shapes"). The network still predicts eps.
     */
    timestep_weighting: z.enum(['v']).optional(),
    /**
     * How training draws t: unset = uniformly from {0, ..., T-1} (DDPM, LVDM). `logit_normal`:
     * t = min(T - 1, floor(T * sigmoid(n))), n ~ N(mean, std) (Esser et al. 2024, "Scaling rectified
     * flow transformers", section 3.1): more of each batch at the middle steps, fewer at both ends.
     * On shapes the object's kind is decided at steps 300-600 (experiments/RESULTS.md, "Where the
     * corners are lost"). Also used by the long-video models' conditional batches.
     */
    timestep_sampling: z
      .object({ logit_normal: z.object({ mean: z.number().finite().default(0), std: z.number().positive().finite().default(1) }).strict() })
      .strict()
      .optional(),
    /**
     * What the network predicts: unset = 'eps' (LVDM). 'v' = sqrt(abar) eps - sqrt(1 - abar) x0
     * (Salimans & Ho 2022): the loss is on v and samplers convert v to eps
     * (lib/diffusion/prediction.ts). At the noisiest steps an eps network must carry x0 in a small
     * correction to x_t; a v network outputs it directly (experiments/RESULTS.md, "v-prediction").
     * Not together with timestep_weighting 'v', which already equals the v loss.
     */
    prediction: z.enum(['eps', 'v']).optional(),
    /**
     * Weight of moving latents in the loss, lambda >= 0 (unset = 0 = uniform, as LVDM): each
     * element counts 1 + lambda * m, m = its mean over channels of |z0 - z0's mean over the clip's
     * frames|, in a weighted mean (lib/diffusion/loss.ts motionWeights). For small moving objects
     * the models otherwise treat as noise (experiments/RESULTS.md, "Ucf fs2: a larger short-video UNet").
     */
    motion_weight: z.number().min(0).optional(),
    /**
     * Threshold tau >= 0 of the motion weight (unset = 0): elements count 1 + motion_weight *
     * max(m - tau, 0), so changes smaller than tau keep weight 1 and only larger ones are weighted
     * up. On ucf's latents large changes are not only the actor's (experiments/RESULTS.md, "Ucf fs2:
     * the motion weight above a threshold").
     */
    motion_threshold: z.number().min(0).optional(),
    /**
     * Class-conditional models (unet.num_classes): the probability that a training clip's label is
     * replaced by the null label, so that one network also learns the unconditional score for
     * classifier-free guidance (Ho & Salimans 2022; unset = 0.1, as text.p_uncond).
     */
    class_p_uncond: z.number().min(0).max(1).optional(),
    /**
     * Input perturbation gamma >= 0 against exposure bias (Ning et al. 2023, "Input Perturbation
     * Reduces Exposure Bias in Diffusion Models", eq. 9; unset = 0, plain DDPM): the network reads
     * x_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) (eps + gamma xi), xi ~ N(0, I), and still learns the
     * target of the unperturbed eps, so it learns to correct inputs a little off the forward process,
     * as the sampler's own estimates are (the paper's gamma: 0.1). Short-video models only (plain,
     * class-conditional and text batches); xi comes from a stream forked off the training rng, so
     * every other draw (data order, t, eps, self-conditioning) is the unperturbed training's.
     */
    input_perturbation: z.number().min(0).max(1).optional(),
    /**
     * Joint image-video training (Ho et al. 2022, "Video Diffusion Models"): each step
     * also trains on this many single latent frames, each a random frame of a random training clip,
     * passed through the same network as one-frame videos (temporal attention then attends to the
     * frame itself, the paper's masking). The loss is the mean over all frames, clips' and images',
     * as if the images were concatenated to the batch. More distinct scenes per step for the
     * per-frame layers at a fraction of a clip's cost. Short-video models only; unset = none.
     */
    image_batch: posInt.optional(),
    optim: OptimConfig.default({ kind: 'adamw', lr: 6e-5, weight_decay: 0.01 }),
    train: TrainConfig,
    latents: LatentCacheConfig.default({}),
    sampling: SamplingConfig.default({}),
  })
  .strict()
  .superRefine(motionKeys);

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

/**
 * Text-to-video conditioning (lvdm-facts.md section 6; lib/text): a CLIP tokenizer and text
 * transformer whose last hidden state the UNet cross-attends to (unet.context_dim = width).
 */
export const TextConfig = z
  .object({
    /** CLIP tokenizer files (Hugging Face format: vocab.json + merges.txt); give both, or `words`. */
    vocab: z.string().optional(),
    merges: z.string().optional(),
    /** Without tokenizer files: a CLIP-format vocabulary of the 256 bytes plus these whole words (small models trained here). */
    words: z.array(z.string().min(1)).optional(),
    /** safetensors export of Hugging Face CLIPTextModel (text_model.* keys; lib/t2v/README.md); absent: random initialisation. */
    weights: z.string().optional(),
    width: posInt.default(768),
    layers: posInt.default(12),
    heads: posInt.default(12),
    /** Tokens per prompt including start and end (CLIP: 77). */
    context_length: z.number().int().min(2).default(77),
    mlp_ratio: posInt.default(4),
    /** Train the text encoder with the UNet (default: true without `weights`, false with them). */
    train: z.boolean().optional(),
    /** Probability that a training caption is replaced by the empty prompt (classifier-free guidance). */
    p_uncond: z.number().min(0).max(1).default(0.1),
    /** Padding tokens excluded from the cross-attention softmax (false: attend to all context_length tokens, as LDM does). */
    mask_padding: z.boolean().default(true),
    /** Padding id: 'end' (<|endoftext|>, Hugging Face) or a number (OpenAI CLIP: 0). */
    pad: z.union([z.literal('end'), nonNegInt]).default('end'),
  })
  .strict();

/** What every config file starts with: its name, seed, description and data. */
const experimentHeader = {
  name: z.string().min(1),
  seed: z.number().int().default(0),
  description: z.string().optional(),
  data: DataConfig,
};

export const ExperimentConfig = z
  .object({
    ...experimentHeader,
    autoencoder: AutoencoderConfig.optional(),
    unet: UNetConfig.optional(),
    diffusion: DiffusionConfig.optional(),
    long: LongVideoConfig.optional(),
    text: TextConfig.optional(),
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
export type TimestepSampling = NonNullable<DiffusionConfig['timestep_sampling']>;
export type LongVideoConfig = z.infer<typeof LongVideoConfig>;
export type ExperimentConfig = z.infer<typeof ExperimentConfig>;
export type TextConfig = z.infer<typeof TextConfig>;

// ---------------------------------------------------------------------------------------------
// Experiment files (`lvdm run`, lib/experiments): stages, sweeps and evaluation in one YAML file.
// `include:` files are deep-merged first and every stage's `data` is merged over the top-level
// `data` before validation (lib/experiments/resolve.ts), so errors name keys like
// 'stages.pred.data.frames'.
// ---------------------------------------------------------------------------------------------

/** The name of another stage of the same experiment file (its output is this stage's input). */
const StageRef = z.string().min(1);
const oneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1)]).transform((v): z.infer<T>[] => (Array.isArray(v) ? v : [v]));

export const PrepareStage = z
  .object({
    kind: z.literal('prepare'),
    data: DataConfig,
    /** Target shard size in MiB and videos decoded concurrently (data/shards.ts). */
    shard_mb: posInt.default(64),
    jobs: posInt.default(2),
  })
  .strict();

export const AutoencoderStage = z
  .object({
    kind: z.literal('autoencoder'),
    seed: z.number().int().optional(),
    data: DataConfig,
    /** A 'prepare' stage whose shards replace the raw data (ignored for synthetic sources). */
    shards: StageRef.optional(),
    autoencoder: AutoencoderConfig,
  })
  .strict();

/**
 * Decoder fine-tuning on noised latents (lib/autoencoder/noise-finetune.ts): the encoder and the
 * latent statistics of the named autoencoder stay fixed, the decoder learns to decode
 * z_n + sigma * eps, sigma ~ U(0, sigma_max), with L1 + edge_weight * gradient difference loss.
 */
export const DecoderFinetuneConfig = z
  .object({
    /** Largest latent noise, in units of the normalised latents the diffusion models work in. */
    sigma_max: z.number().nonnegative(),
    edge_weight: z.number().nonnegative().default(1),
    /** Weight of moving pixels in the loss, as `autoencoder.loss.motion_weight` (optional; unset = uniform). */
    motion_weight: z.number().nonnegative().optional(),
    /** Its threshold, as `autoencoder.loss.motion_threshold`; needs motion_weight > 0. */
    motion_threshold: z.number().nonnegative().optional(),
    /**
     * Train the encoder too (optional; absent = false, the encoder frozen). The noise is then
     * sigma times the batch's own latent std, so the encoder cannot beat it by growing its latents,
     * and must carry what the decoder needs in features larger than the noise; the latent
     * statistics are measured again afterwards. The latents change: latent models must learn this
     * stage's latents (`autoencoder: <this stage>`).
     */
    train_encoder: z.boolean().optional(),
    optim: OptimConfig,
    train: TrainConfig,
  })
  .strict()
  .superRefine(motionKeys);

export const DecoderStage = z
  .object({
    kind: z.literal('decoder'),
    seed: z.number().int().optional(),
    data: DataConfig,
    shards: StageRef.optional(),
    /** The 'autoencoder' stage whose decoder is fine-tuned (its encoder, hence its latents, unchanged unless finetune.train_encoder). */
    autoencoder: StageRef,
    finetune: DecoderFinetuneConfig,
  })
  .strict();

const latentStageFields = {
  seed: z.number().int().optional(),
  data: DataConfig,
  shards: StageRef.optional(),
  /** The 'autoencoder' stage whose latents this model learns (or a 'decoder' stage over one). */
  autoencoder: StageRef,
  unet: UNetConfig,
  /** Text-to-video conditioning (short models; see TextConfig). */
  text: TextConfig.optional(),
  diffusion: DiffusionConfig.refine((d) => d.autoencoder === undefined, {
    message: "must not be set in an experiment file: the stage's 'autoencoder: <stage>' names it",
    path: ['autoencoder'],
  }),
};

/**
 * A short stage's start from another short stage's trained weights (lib/lvdm/init.ts): image-model
 * pretraining for video models (VideoLDM, Blattmann et al. 2023): the other stage is the same
 * network trained on one-frame latents (data.frames = the autoencoder's temporal factor).
 */
export const StageInit = z
  .object({
    /** The short stage whose weights start this one (same unet section, same latents). */
    stage: StageRef,
    /** Temporal attention: 'fresh' (the identity: the image model on each frame) or 'copy'. */
    temporal: z.enum(['fresh', 'copy']).default('fresh'),
    /** 'all' trains every parameter; 'temporal' only the temporal attention layers (the rest frozen). */
    train: z.enum(['all', 'temporal']).default('all'),
  })
  .strict();

export const ShortStage = z.object({ kind: z.literal('short'), ...latentStageFields, init: StageInit.optional() }).strict();
export const PredictionStage = z.object({ kind: z.literal('prediction'), ...latentStageFields, long: LongVideoConfig }).strict();
export const InterpolationStage = z.object({ kind: z.literal('interpolation'), ...latentStageFields, long: LongVideoConfig }).strict();

export const StageConfig = z.discriminatedUnion('kind', [PrepareStage, AutoencoderStage, DecoderStage, ShortStage, PredictionStage, InterpolationStage]);

/** One grid of the sweep: the cartesian product of its lists (a scalar is a one-value list). */
export const SweepGrid = z
  .object({
    mode: oneOrMany(z.enum(['autoregressive', 'hierarchical', 'short'])),
    /** Perturbation strength s of the condition latents (long modes; ignored by 'short'). */
    s: oneOrMany(nonNegInt).default([0]),
    /** Unconditional guidance scale w (long modes; ignored by 'short'). */
    w: oneOrMany(z.number().nonnegative()).default([0]),
    /** Video length in pixel frames. */
    frames: oneOrMany(posInt),
    /** Sampler steps (DDIM) per window. */
    steps: oneOrMany(posInt).default([50]),
    /**
     * DDIM eta of this grid's points (default: sweep.eta). Set, it is a swept coordinate: it names
     * the point ('-eta1') and its setting; unset, the point's key and id are those of before.
     */
    eta: oneOrMany(z.number().min(0).max(1)).optional(),
    seed: oneOrMany(z.number().int()).default([1]),
  })
  .strict();

export const SweepConfig = z
  .object({
    /** Which stages each mode samples with. */
    models: z
      .object({
        autoregressive: z.object({ pred: StageRef }).strict().optional(),
        hierarchical: z.object({ pred: StageRef, interp: StageRef }).strict().optional(),
        /**
         * `guide`: a weaker short stage of the same latents (smaller, trained less) for autoguidance
         * (Karras et al. 2024): a short point's w then weights it, eps = (1 + w) eps_model - w eps_guide
         * (lib/diffusion/samplers.ts autoguidedModel, s = 1 + w). Points with w = 0 do not use it.
         */
        short: z.object({ model: StageRef, guide: StageRef.optional() }).strict().optional(),
      })
      .strict(),
    /**
     * The stage whose decoder turns sampled latents (and the reconstruction floor's) into frames:
     * a 'decoder' stage over the models' autoencoder. Default: the models' autoencoder itself.
     */
    decoder: StageRef.optional(),
    /**
     * Named grids; the sweep is their union (a point in several grids runs once). `null` removes an
     * included grid. `sweep.defaults` (any grid keys, e.g. frames, steps, seed) is merged under every
     * grid by the loader before validation.
     */
    grids: z.record(SweepGrid.nullable()),
    /** Videos per sweep point (= generated clips per metric window). */
    n: posInt,
    sampler: z.enum(['ddim', 'ddpm']).default('ddim'),
    eta: z.number().min(0).max(1).default(0),
    /** Largest batch per network forward. */
    max_batch: posInt.default(16),
    /** Decode windows and their context on each side, in latent frames (lib/hierarchical/decode.ts). */
    decode_window: posInt.default(4),
    decode_overlap: nonNegInt.default(1),
    fps: posInt.default(8),
    /** Videos per point written as animated GIF for the report. */
    gifs: nonNegInt.default(2),
    /**
     * Precision of the sampling networks' convolutions at every point: unset = 'fp32'; 'bf16' as
     * `train.precision` (lib/backend/precision.ts; libtorch on a CPU with bf16 units). Part of the
     * sample tasks' keys when set.
     */
    precision: z.enum(['fp32', 'bf16']).optional(),
  })
  .strict();

export const EvaluateConfig = z
  .object({
    /** Feature extractor: 'i3d' (needs `i3d`, a weights file: real FVD) or a proxy such as 'synthetic-motion' (fvd_proxy). */
    features: z.string().min(1).default('synthetic-motion'),
    i3d: z.string().optional(),
    /** Frames per metric clip: FVD per window of this many frames (default: the shortest swept length). */
    window: posInt.optional(),
    /** Real clips (held-out split) the generated sets are compared with. */
    n_real: posInt.default(64),
    /** Held-out clips for the floors (real vs real, autoencoder reconstructions); default sweep.n. */
    n_floor: posInt.optional(),
    covariance: z.enum(['unbiased', 'biased']).default('unbiased'),
    /** Seed of the real-clip selection. */
    seed: z.number().int().default(0),
  })
  .strict();

export const ExperimentFile = z
  .object({
    ...experimentHeader,
    /** Files merged under this one (paths relative to this file); consumed by the loader. */
    include: z.array(z.string()).optional(),
    stages: z.record(StageConfig),
    sweep: SweepConfig.optional(),
    evaluate: EvaluateConfig.default({}),
    /** The setting paired comparisons are made against, e.g. { mode: autoregressive, s: 0, w: 0 }. */
    baseline: z
      .object({
        mode: z.enum(['autoregressive', 'hierarchical', 'short']).optional(),
        /** null: no s, as short points have (a short baseline over an included file's s: 0). */
        s: nonNegInt.nullable().optional(),
        w: z.number().nonnegative().optional(),
        frames: posInt.optional(),
        steps: posInt.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type StageConfig = z.infer<typeof StageConfig>;
export type StageInit = z.infer<typeof StageInit>;
export type DecoderFinetuneConfig = z.infer<typeof DecoderFinetuneConfig>;
export type SweepGrid = z.infer<typeof SweepGrid>;
export type SweepConfig = z.infer<typeof SweepConfig>;
export type EvaluateConfig = z.infer<typeof EvaluateConfig>;
export type ExperimentFile = z.infer<typeof ExperimentFile>;
