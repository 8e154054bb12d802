/**
 * Decoder fine-tuning on noised latents (issue 12, experiments/RESULTS.md): the encoder is frozen,
 * so the latents (and every latent model trained on them) stay valid, and the decoder learns to
 * reconstruct clips from z = denormalize(normalize(mean) + sigma * eps), sigma ~ U(0, sigma_max) per
 * clip, eps ~ N(0, I): the errors a diffusion model's samples carry in the normalised latent space
 * it works in. Loss: L1 plus edge_weight times the gradient difference loss (Mathieu et al. 2016)
 * that the shapes autoencoders train with, each pixel's term times the motion weight where
 * `motion_weight` is set (lib/nn/motion-weights.ts). Noise augmentation of the decoder's input is the remedy
 * for a decoder that reconstructs well but does not tolerate latent error (sensitivity.ts).
 *
 * With `train_encoder` the encoder trains too, against noise of sigma times the batch's latent std
 * (`relativeLatentNoise`): a channel of fixed signal-to-noise ratio, so what the decoder needs
 * (e.g. a shape's corners) must be carried by latent features larger than the noise, which a
 * diffusion model's low-noise steps then keep (experiments/RESULTS.md, "Where the corners are lost"). The
 * latent statistics are measured again at the end, since the latents changed.
 *
 * `DecoderNoiseTrainer` is the training step (resumable through lib/train/loop.ts);
 * `finetuneDecoder` is the runner's 'decoder' stage end to end.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { DataConfig, DecoderFinetuneConfig } from '../config/schema';
import type { ClipDataset } from '../../data/types';
import { ClipLoader, LoaderState } from '../../data/loader';
import { datasetFromConfig } from '../../data/from-config';
import { writeJsonAtomic } from '../io/atomic';
import { NamedArray } from '../nn/params';
import { Rng, RngState, hashString } from '../nn/rng';
import { Adam, clipGradNorm, lrAt } from '../train/optim';
import { Trainer, runTraining, trainLoopOptions } from '../train/loop';
import { prefixed, subTensors } from '../train/checkpoint';
import { gradientDifference } from './gdl';
import { checkMotionKeys, motionWeights } from '../nn/motion-weights';
import { computeLatentStats, loadAutoencoder, saveAutoencoderWeights, withLatentStats, type LatentStats, type LoadedAutoencoder } from './io';
import { gradsByName } from './train';
import { latentNoisePsnr } from './sensitivity';

/** Parameters the fine-tuning trains: the decoder and the conv in front of it. */
export const isDecoderParam = (name: string): boolean => name.startsWith('decoder.') || name.startsWith('post_quant_conv.');

/**
 * z + sigma * std(z) * eps, std over the whole batch: noise relative to the latents' spread, so
 * scaling z scales the result (an encoder in training cannot outgrow the noise). `sigma` is [b].
 */
export function relativeLatentNoise(z: tf.Tensor5D, sigma: number[], eps: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const { variance } = tf.moments(z);
    const s = tf.mul(tf.tensor(sigma, [sigma.length, 1, 1, 1, 1]), tf.sqrt(variance));
    return tf.add(z, tf.mul(eps, s)) as tf.Tensor5D;
  });
}

/** The decoded-PSNR noise levels the stage's eval.json reports (sensitivity.ts). */
export const EVAL_SIGMAS = [0, 0.4, 0.8];

export class DecoderNoiseTrainer implements Trainer {
  readonly kind = 'decoder';
  private readonly params: [string, tf.Variable][];
  private readonly opt: Adam;
  private readonly loader: ClipLoader;
  private rng: Rng;

  /** Trains `loaded`'s decoder in place. */
  constructor(readonly loaded: LoadedAutoencoder, dataset: ClipDataset, readonly cfg: DecoderFinetuneConfig, seed: number) {
    checkMotionKeys('finetune', cfg.motion_weight, cfg.motion_threshold);
    if (!(cfg.sigma_max >= 0)) throw new Error(`decoder fine-tuning: sigma_max must be >= 0, got ${cfg.sigma_max}`);
    if (!loaded.latent && !cfg.train_encoder) throw new Error('decoder fine-tuning: the autoencoder has no latent statistics (shift/scale); the noise is defined in the normalised latent space');
    this.params = loaded.store.entries().filter(([n]) => cfg.train_encoder || isDecoderParam(n));
    if (this.params.length === 0) throw new Error('decoder fine-tuning: the autoencoder has no decoder parameters');
    const o = cfg.optim;
    this.opt = new Adam(this.params, { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay, kind: o.kind });
    this.loader = new ClipLoader(dataset, { batchSize: cfg.train.batch_size, seed: (seed ^ hashString('decoder-loader')) >>> 0 });
    this.rng = new Rng(seed).fork('latent-noise');
  }

  lr(step: number): number {
    const o = this.cfg.optim;
    return lrAt(step, { lr: o.lr, warmupSteps: o.warmup_steps, decay: o.decay, totalSteps: this.cfg.train.steps, minLr: o.min_lr });
  }

  async trainStep(step: number): Promise<Record<string, number>> {
    const { loaded, cfg } = this;
    const batch = await this.loader.next();
    const b = batch.batchSize;
    const x = tf.tensor5d(batch.video, [b, batch.frames, batch.height, batch.width, 3]);
    const sigma = Array.from({ length: b }, () => this.rng.uniform() * cfg.sigma_max);
    if (cfg.train_encoder) return this.jointStep(step, x, sigma);
    const z = tf.tidy(() => {
      const zn = loaded.normalize(loaded.ae.encode(x).mean);
      const noise = tf.mul(tf.tensor(this.rng.normalArray(zn.size), zn.shape), tf.tensor(sigma, [b, 1, 1, 1, 1]));
      return loaded.denormalize(tf.add(zn, noise) as tf.Tensor5D);
    });
    return this.descend(step, x, () => loaded.ae.decode(z), [z]);
  }

  /** Encoder and decoder together, the noise relative to the batch's latent spread. */
  private jointStep(step: number, x: tf.Tensor5D, sigma: number[]): Promise<Record<string, number>> {
    const { ae } = this.loaded;
    const shape: [number, number, number, number, number] = [x.shape[0], ...ae.latentShape(x.shape[1], x.shape[2], x.shape[3])];
    const eps = tf.tensor5d(this.rng.normalArray(shape.reduce((a, c) => a * c, 1)), shape);
    return this.descend(step, x, () => ae.decode(relativeLatentNoise(ae.encode(x).mean, sigma, eps)), [eps]);
  }

  /** One optimiser step on L1 + edge_weight * GDL of `reconstruct()` against x (times the motion weight); disposes x and `extra`. */
  private async descend(step: number, x: tf.Tensor5D, reconstruct: () => tf.Tensor5D, extra: tf.Tensor[]): Promise<Record<string, number>> {
    const { cfg } = this;
    const { value, grads } = tf.variableGrads(() => {
      const xr = reconstruct();
      const rec = cfg.edge_weight > 0 ? tf.add(tf.abs(tf.sub(x, xr)), tf.mul(gradientDifference(x, xr), cfg.edge_weight)) : tf.abs(tf.sub(x, xr));
      return tf.mean(cfg.motion_weight ? tf.mul(rec, motionWeights(x, cfg.motion_weight, cfg.motion_threshold ?? 0, 'max')) : rec) as tf.Scalar;
    }, this.params.map(([, v]) => v));
    const named = gradsByName(this.params, grads);
    if (cfg.optim.grad_clip > 0) clipGradNorm(named, cfg.optim.grad_clip);
    const lr = this.lr(step);
    this.opt.apply(named, lr);
    tf.dispose([...named.values(), x, ...extra]);
    const loss = value.dataSync()[0];
    value.dispose();
    return { loss, lr };
  }

  checkpointTensors(): Map<string, NamedArray> {
    return new Map<string, NamedArray>([...prefixed(this.loaded.store.snapshot(), 'model.'), ...this.opt.stateTensors('optim.')]);
  }

  checkpointState(): Record<string, unknown> {
    return { rng: this.rng.state(), loader: this.loader.state(), optim_t: this.opt.t };
  }

  restore(tensors: Map<string, NamedArray>, state: Record<string, unknown>, step: number, source: string): void {
    this.loaded.store.load(subTensors(tensors, 'model.'), { source });
    this.opt.loadStateTensors(tensors, 'optim.', Number(state.optim_t ?? step), source);
    this.rng = Rng.fromState(state.rng as RngState);
    this.loader.setState(state.loader as LoaderState);
  }

  dispose(): void {
    this.loader.close();
    this.opt.dispose();
  }
}

export interface FinetuneDecoderOptions {
  /** The autoencoder weights file whose decoder is fine-tuned (not modified). */
  autoencoder: string;
  data: DataConfig;
  seed: number;
  finetune: DecoderFinetuneConfig;
  outDir: string;
  resume?: boolean;
  force?: boolean;
  progress?: boolean;
  log?: (msg: string) => void;
}

export interface DecoderEval {
  steps: number;
  train_seconds: number;
  /** Held-out clips decoded from latents with sigma * N(0, I) added, before and after fine-tuning (each in its own normalised units). */
  held_out: { clips: number; sigmas: number[]; psnr_before: number[]; psnr: number[] };
  /** With train_encoder: the latent statistics measured again after training (else those of the autoencoder). */
  latent?: LatentStats;
}

/**
 * The 'decoder' stage: loads the autoencoder, fine-tunes its decoder (resumable), writes
 * `<outDir>/<weightsName>` with the same encoder and latent statistics (with train_encoder: the
 * trained encoder and statistics measured again), and eval.json with the held-out decoded PSNR at
 * EVAL_SIGMAS before and after.
 */
export async function finetuneDecoder(opts: FinetuneDecoderOptions, weightsName: string): Promise<DecoderEval> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`[lvdm] ${m}\n`));
  const loaded = loadAutoencoder(opts.autoencoder);
  const dataset = datasetFromConfig(opts.data, 'train', opts.seed);
  const heldOut = datasetFromConfig(opts.data, 'heldout', opts.seed);
  const rng = new Rng(opts.seed).fork('decoder-eval');
  const clips = await Promise.all(Array.from({ length: Math.min(opts.data.held_out, heldOut.size) }, (_, i) => heldOut.get(i, rng.fork(`clip-${i}`))));
  const shape: [number, number, number] = [heldOut.frames, heldOut.height, heldOut.width];
  const videos = clips.map((c) => c.video);
  const trainer = new DecoderNoiseTrainer(loaded, dataset, opts.finetune, opts.seed);
  try {
    const psnrBefore = videos.length ? await latentNoisePsnr(loaded, videos, shape, EVAL_SIGMAS, opts.seed) : [];
    const joint = opts.finetune.train_encoder === true;
    const noise = joint ? 'times the batch latent std, encoder trained' : 'encoder frozen';
    log(`decoder fine-tuning: ${opts.finetune.train.steps} steps, sigma ~ U(0, ${opts.finetune.sigma_max}), ${noise}`);
    const t0 = Date.now();
    const r = await runTraining(trainer, trainLoopOptions(opts.finetune.train, { ...opts, config: { data: opts.data, seed: opts.seed, finetune: opts.finetune } }, 'finetune-decoder'));
    const trainSeconds = (Date.now() - t0) / 1000;
    const statsClips = loaded.config.autoencoder!.latent_stats_clips;
    const tuned = joint ? withLatentStats(loaded, await computeLatentStats(loaded.ae, dataset, statsClips, opts.seed)) : loaded;
    if (joint) log(`latent statistics measured again on ${statsClips} clips: shift ${tuned.latent!.shift.toFixed(4)}, scale ${tuned.latent!.scale.toFixed(4)}`);
    saveAutoencoderWeights(path.join(opts.outDir, weightsName), tuned.store, tuned.config, tuned.latent, r.step);
    const psnr = videos.length ? await latentNoisePsnr(tuned, videos, shape, EVAL_SIGMAS, opts.seed) : [];
    const fmt = (v: number[]) => v.map((x) => x.toFixed(1)).join(' / ');
    log(`held-out decoded PSNR at sigma ${EVAL_SIGMAS.join(' / ')}: ${fmt(psnrBefore)} dB before, ${fmt(psnr)} dB after`);
    const ev: DecoderEval = { steps: r.step, train_seconds: trainSeconds, held_out: { clips: videos.length, sigmas: EVAL_SIGMAS, psnr_before: psnrBefore, psnr }, latent: joint ? tuned.latent! : undefined };
    writeJsonAtomic(path.join(opts.outDir, 'eval.json'), ev);
    return ev;
  } finally {
    trainer.dispose();
    loaded.dispose();
  }
}
