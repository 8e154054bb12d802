/**
 * Pixel-space still frames (issue 12: does the network draw squares and triangles when it models
 * pixels instead of autoencoder latents?). The shipped short model's network (48 channels,
 * self-conditioned, v-prediction MSE; runs/shipped-eval/store/short/9713e82afb84d99d/config.json)
 * is trained by the library's LvdmTrainer on single frames of synthetic-shapes-large, 32x32x3
 * pixels in [-1, 1] instead of latents, with one more level (channel_mult [1, 2, 2]) and
 * attention at 16x16 and 8x8 only. It then samples still frames, to compare with the same network
 * trained on single latent frames (experiments/shapes-image.yaml).
 *
 * The pixels pass through the latent machinery unchanged by a "pixel codec" (LatentCodec, factors
 * [2, 1, 1]): a 2-frame clip encodes to its first frame with logvar -30 (a posterior sample is the
 * pixels), and a frame decodes to a 2-frame clip of it repeated. The latent cache is built with
 * LatentCache.build (normalised by its own statistics, statsNorm) times diffusion.latents.input_scale
 * 0.5, as lib/lvdm/pipeline.ts prepareLatents does; training runs through trainAndExport, so the
 * run folder has checkpoint-last.safetensors (--resume), snapshots/lvdm-<step>.safetensors,
 * metrics.jsonl and lvdm.safetensors as any latent stage's. Sampling loads the weights with
 * loadLvdm and generates with generateVideos (DDIM 100 steps, eta 1), and writes samples.npz
 * ('videos', uint8 N x 2 x 32 x 32 x 3, both frames the same) and grid.png as `lvdm sample --npz`
 * does (writeSampleOutputs).
 *
 *   node --import tsx experiments/pixel-image.ts [--steps 2000] [--batch 16] [--seed 0] \
 *     [--out runs/pixel-image] [--resume | --force] [--n 32] [--sample-seed 1] [--samples-out DIR]
 *   node --import tsx experiments/pixel-image.ts --sample-only [--out runs/pixel-image] [--n 32] [--sample-seed 1]
 *   node --import tsx experiments/pixel-image.ts --ckpt runs/pixel-image/snapshots/lvdm-500.safetensors [--n 32]
 *   node --import tsx experiments/still-kinds.ts --sheet pixel.png runs/pixel-image/samples-seed1/samples.npz
 *
 * --sample-only samples <out>/lvdm.safetensors without training; --ckpt FILE samples FILE (a
 * snapshot, lvdm.safetensors or a checkpoint-last.safetensors of this script: EMA weights) without
 * training. Samples go to --samples-out, default <out>/samples-seed<sample seed> (for a --ckpt
 * other than lvdm.safetensors: <out>/samples-<its name>-seed<sample seed>); an existing samples.npz
 * there is kept unless --force. An existing run folder needs --resume (continue it) or --force
 * (start over). Smoke test: --steps 4 --batch 2 --n 4 --out /tmp/pixel-test.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ExperimentConfig } from '../lib/config/schema';
import { validateConfig } from '../lib/config/load';
import { writeJsonAtomic } from '../lib/io/atomic';
import { LatentCache, type LatentCodec } from '../lib/lvdm/latents';
import { trainAndExport } from '../lib/lvdm/pipeline';
import { LvdmTrainer } from '../lib/lvdm/trainer';
import { LVDM_WEIGHTS, loadLvdm } from '../lib/lvdm/weights';
import { generateVideos, writeSampleOutputs } from '../lib/lvdm/generate';
import { datasetFromConfig } from '../data/from-config';
import { mean } from '../lib/results/stats';

/** Recorded as the model's "autoencoder" (and diffusion.autoencoder), so `lvdm sample` refuses it and this script recognises its models. */
export const PIXEL_CODEC = 'pixel-codec:experiments/pixel-image.ts';
const FRAMES = 2;
const SIZE = 32;
const SAMPLE_STEPS = 100;
const SAMPLE_ETA = 1;
const SAMPLE_BATCH = 16;
const LOGVAR = -30;

/**
 * Pixels as "latents": a clip [B, T, H, W, 3] (T even) encodes to its frames 0, 2, 4, ... with
 * logvar -30 (posterior samples equal the pixels to ~3e-7); latents [B, t, H, W, 3] decode to each
 * frame repeated twice ([B, 2t, H, W, 3]).
 */
export class PixelCodec implements LatentCodec {
  readonly factors = [2, 1, 1] as const;

  encode(x: tf.Tensor5D): { mean: tf.Tensor5D; logvar: tf.Tensor5D } {
    const [, t, , , c] = x.shape;
    if (t % 2 !== 0 || c !== 3) throw new Error(`PixelCodec.encode: expected clips [B, T, H, W, 3] with T even, got [${x.shape}]`);
    return tf.tidy(() => {
      const mean = tf.gather(x, tf.range(0, t, 2, 'int32'), 1) as tf.Tensor5D;
      return { mean, logvar: tf.fill(mean.shape, LOGVAR) as tf.Tensor5D };
    });
  }

  decode(z: tf.Tensor5D): tf.Tensor5D {
    const [, t, , , c] = z.shape;
    if (c !== 3) throw new Error(`PixelCodec.decode: expected frames [B, t, H, W, 3], got [${z.shape}]`);
    return tf.tidy(() => tf.gather(z, tf.tensor1d(Array.from({ length: 2 * t }, (_, i) => i >> 1), 'int32'), 1) as tf.Tensor5D);
  }

  latentShape(frames: number, height: number, width: number): [number, number, number, number] {
    if (!Number.isInteger(frames) || frames < 2 || frames % 2 !== 0) throw new Error(`PixelCodec: clips need an even number of frames, got ${frames}`);
    return [frames / 2, height, width, 3];
  }
}

/**
 * The experiment's config, validated by the project's schema (defaults filled). Data, unet and
 * diffusion keys are the shipped short model's (runs/shipped-eval/store/short/9713e82afb84d99d/
 * config.json) except 2-frame clips, 3 channels, channel_mult [1, 2, 2], attention at 16x16 and 8x8,
 * AdamW 1e-3 and the sampler (DDIM 100 steps, eta 1).
 */
export function pixelImageConfig(opts: { steps: number; batch: number; seed: number }): ExperimentConfig {
  return validateConfig(
    {
      name: 'pixel-image',
      seed: opts.seed,
      description: 'issue 12 diagnostic: the shipped short-model UNet trained in pixel space on single frames of synthetic-shapes-large (experiments/pixel-image.ts)',
      data: { source: 'synthetic-shapes-large', frames: FRAMES, size: SIZE, frame_stride: 1, num_videos: 2000, held_out: 16, split: 'train', fold: 1 },
      unet: {
        in_channels: 3,
        out_channels: 3,
        model_channels: 48,
        channel_mult: [1, 2, 2],
        num_res_blocks: 1,
        attention_resolutions: [2, 4],
        head_channels: 48,
        temporal_length: 8,
        relative_position: true,
        relative_key: 'shaw',
        norm_scope: 'frame',
        temporal_attention: true,
        scale_shift_norm: true,
        norm_groups: 32,
        dropout: 0,
        mask_channel: false,
        self_condition: true,
        s_embed: 'none',
        s_levels: 251,
        s_mode: 'add',
        ff_mult: 0,
        attention_block: 'lvdm',
        transformer_depth: 1,
      },
      diffusion: {
        autoencoder: PIXEL_CODEC,
        schedule: { kind: 'linear', timesteps: 1000, linear_start: 0.0015, linear_end: 0.0155, cosine_s: 0.008 },
        loss: 'mse',
        prediction: 'v',
        optim: { kind: 'adamw', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, warmup_steps: 100, decay: 'cosine', min_lr: 5e-5, grad_clip: 1 },
        train: { steps: opts.steps, batch_size: opts.batch, ckpt_every: 500, log_every: 50, ema_decay: 0.999, snapshots: true },
        latents: { windows_per_video: 1, batch_size: 16, input_scale: 0.5 },
        sampling: { sampler: 'ddim', steps: SAMPLE_STEPS, eta: SAMPLE_ETA, spacing: 'trailing', final_alpha: 'one', n: 32, batch_size: SAMPLE_BATCH, fps: 8 },
      },
    },
    'experiments/pixel-image.ts',
  );
}

/** LvdmTrainer that also times every step (wall seconds, including the read-back of the loss). */
class TimedTrainer extends LvdmTrainer {
  readonly seconds: number[] = [];

  override async trainStep(step: number): Promise<Record<string, number>> {
    const t0 = performance.now();
    const logs = await super.trainStep(step);
    this.seconds.push((performance.now() - t0) / 1000);
    return logs;
  }
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Builds the pixel cache (as prepareLatents would the latent one) and trains; returns the exported weights. */
async function train(config: ExperimentConfig, outDir: string, flags: { resume: boolean; force: boolean }): Promise<string> {
  const diffusion = config.diffusion!;
  const log = (m: string): void => void process.stderr.write(`[pixel-image] ${m}\n`);
  const dataset = datasetFromConfig(config.data, 'train', config.seed);
  const t0 = Date.now();
  let shown = 0;
  const built = await LatentCache.build({
    codec: new PixelCodec(),
    dataset,
    windowsPerVideo: diffusion.latents.windows_per_video,
    batchSize: diffusion.latents.batch_size,
    seed: config.seed,
    maxClips: diffusion.latents.max_clips,
    onProgress: (done, total) => {
      if (done === total || Date.now() - shown > 10000) {
        shown = Date.now();
        log(`pixels: ${done}/${total} clips`);
      }
    },
  });
  const b = diffusion.latents.input_scale ?? 1;
  const cache = b === 1 ? built : built.withInputScale(b);
  log(
    `pixels: ${cache.count} frames of [${cache.shape}] in ${((Date.now() - t0) / 1000).toFixed(1)} s (shift ${built.norm.shift.toFixed(4)}, scale ${built.norm.scale.toFixed(4)}, ` +
      `derived from the cache; input scale ${b} -> ${cache.norm.scale.toFixed(4)})`,
  );
  const trainer = new TimedTrainer({ config, latents: cache });
  try {
    console.log(`unet: ${trainer.store.numParams()} parameters; pixels [${cache.shape}], batch ${diffusion.train.batch_size}, ${diffusion.loss} loss on ${diffusion.prediction ?? 'eps'}, ${diffusion.train.steps} steps`);
    const r = await trainAndExport(trainer, config, cache, PIXEL_CODEC, { outDir, config, resume: flags.resume, force: flags.force }, 'pixel-image');
    const s = trainer.seconds;
    if (s.length > 0) {
      const rest = s.length > 1 ? s.slice(1) : s;
      console.log(
        `trained ${s.length} steps (to step ${r.steps}) in ${r.trainSeconds.toFixed(1)} s: ${median(rest).toFixed(3)} s/step median, ${mean(rest).toFixed(3)} s/step mean` +
          `${s.length > 1 ? ` (first step ${s[0].toFixed(3)} s, not counted)` : ''}; last loss ${r.lastLoss.toFixed(4)}`,
      );
    } else console.log(`nothing to train: ${outDir} is already at step ${r.steps}`);
    console.log(`weights: ${r.weights}`);
    return r.weights;
  } finally {
    trainer.dispose();
  }
}

/** Samples `n` still frames of a pixel model into `dir` (samples.npz, grid.png, samples.json). */
async function sampleStills(file: string, dir: string, n: number, seed: number): Promise<void> {
  const model = loadLvdm(file);
  try {
    if (model.state.autoencoder !== PIXEL_CODEC)
      throw new Error(`${file}: not a pixel-space model of this script (its autoencoder is '${model.state.autoencoder}', expected '${PIXEL_CODEC}')`);
    const codec = new PixelCodec();
    const [lt, h, w, c] = model.state.latent_shape;
    if (c !== 3 || h !== model.state.clip.height || w !== model.state.clip.width || lt !== codec.latentShape(model.state.clip.frames, h, w)[0])
      throw new Error(`${file}: latent shape [${model.state.latent_shape}] is not the pixels of its ${model.state.clip.frames}x${model.state.clip.height}x${model.state.clip.width} clips`);
    console.log(`sampling ${n} still frames: ${file} (step ${model.step}${model.state.ema ? ', EMA' : ''}, ${model.store.numParams()} parameters), DDIM ${SAMPLE_STEPS} steps, eta ${SAMPLE_ETA}, seed ${seed}`);
    const gen = await generateVideos(model, codec, {
      n,
      batchSize: Math.min(SAMPLE_BATCH, n),
      sampler: 'ddim',
      steps: SAMPLE_STEPS,
      eta: SAMPLE_ETA,
      spacing: 'trailing',
      finalAlpha: 'one',
      seed,
      onProgress: (done, total) => process.stderr.write(`[pixel-image] sampled ${done}/${total}\n`),
    });
    fs.mkdirSync(dir, { recursive: true });
    const files = await writeSampleOutputs(dir, gen, { fps: 8, npz: true, mp4: false, gif: false });
    writeJsonAtomic(path.join(dir, 'samples.json'), {
      ckpt: file,
      step: model.step,
      ema: model.state.ema,
      n,
      frames: gen.frames,
      height: gen.height,
      width: gen.width,
      sampler: 'ddim',
      steps: SAMPLE_STEPS,
      eta: SAMPLE_ETA,
      seed,
      sample_seconds: gen.sampleSeconds,
      decode_seconds: gen.decodeSeconds,
      files: files.map((f) => path.relative(dir, f)),
    });
    console.log(`${n} samples of ${gen.frames}x${gen.height}x${gen.width} in ${gen.sampleSeconds.toFixed(1)} s -> ${path.join(dir, 'samples.npz')}`);
  } finally {
    model.dispose();
  }
}

function intOption(values: Record<string, unknown>, name: string, min: number): number {
  const raw = values[name] as string;
  const v = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isInteger(v) || v < min) throw new Error(`--${name}: expected an integer >= ${min}, got '${raw}'`);
  return v;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      steps: { type: 'string', default: '2000' },
      batch: { type: 'string', default: '16' },
      seed: { type: 'string', default: '0' },
      out: { type: 'string', default: path.join('runs', 'pixel-image') },
      resume: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'sample-only': { type: 'boolean', default: false },
      ckpt: { type: 'string' },
      n: { type: 'string', default: '32' },
      'sample-seed': { type: 'string', default: '1' },
      'samples-out': { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new Error(`unexpected argument '${positionals[0]}' (options only; see the header of experiments/pixel-image.ts)`);
  const steps = intOption(values, 'steps', 1);
  const batch = intOption(values, 'batch', 1);
  const seed = intOption(values, 'seed', 0);
  const n = intOption(values, 'n', 1);
  const sampleSeed = intOption(values, 'sample-seed', 0);
  const out = values.out!;
  const ckpt = values.ckpt;
  const sampleOnly = values['sample-only']! || ckpt !== undefined;
  if (values.resume && values.force) throw new Error('--resume and --force: give one of them');
  if (sampleOnly && values.resume) throw new Error(`--resume: nothing is trained with ${ckpt !== undefined ? '--ckpt' : '--sample-only'}`);
  const weights = ckpt ?? path.join(out, LVDM_WEIGHTS);
  if (ckpt !== undefined && !fs.existsSync(ckpt)) throw new Error(`--ckpt: file ${ckpt} not found`);
  if (sampleOnly && !fs.existsSync(weights)) throw new Error(`${weights}: model not found (--sample-only samples ${LVDM_WEIGHTS} of --out; train first without --sample-only)`);
  const stem = path.basename(weights, '.safetensors');
  const samplesDir = values['samples-out'] ?? path.join(out, stem === path.basename(LVDM_WEIGHTS, '.safetensors') ? `samples-seed${sampleSeed}` : `samples-${stem}-seed${sampleSeed}`);
  // Checked before training, so a long run does not end in a refusal. (With --force a run folder holding the samples is cleared anyway.)
  const npz = path.join(samplesDir, 'samples.npz');
  if (fs.existsSync(npz) && !values.force) throw new Error(`${npz} exists; pass --force to overwrite it (or --samples-out / --sample-seed for another set)`);

  await initBackend();
  const config = pixelImageConfig({ steps, batch, seed });
  const trained = sampleOnly ? weights : await train(config, out, { resume: values.resume!, force: values.force! });
  await sampleStills(trained, samplesDir, n, sampleSeed);
  console.log(`shape kinds: node --import tsx experiments/still-kinds.ts --sheet ${path.join(samplesDir, 'still-kinds.png')} ${npz}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
