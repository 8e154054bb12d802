/**
 * LvdmTrainer: epsilon-prediction training of the UNet3D on cached, normalised latents
 * (lvdm-facts.md section 2): z_0 from the cache, t ~ U{0..T-1} (or diffusion.timestep_sampling), eps ~ N(0, I),
 * x_t = q(z_0, t, eps), loss = |eps - eps_theta(x_t, t)| (L1) or squared (MSE), or the same on
 * v = sqrt(abar_t) eps - sqrt(1 - abar_t) z_0 when diffusion.prediction is 'v'; AdamW; EMA of the
 * weights for sampling. Implements the shared `Trainer` (run folders, resume, logs: lib/train/loop).
 *
 * The batch construction is a hook (`prepareBatch`), so conditional training (masks, perturbed
 * condition frames, s; issue 6) reuses this trainer with its own preparer.
 *
 * Self-conditioning (unet.self_condition): for half the batches the network also reads its own
 * x_0 estimate from a first forward without gradient (`selfConditionInput`).
 *
 * Joint image-video training (diffusion.image_batch; Ho et al. 2022): each step also regresses on
 * single frames of random clips as one-frame clips (`imageLossInputs`), the loss the mean over all frames.
 *
 * Text-to-video (config `text`, lvdm-facts.md section 6): a CLIP text encoder is built in the same
 * ParamStore (trained jointly unless frozen), each batch carries its clips' captions as tokens,
 * each caption replaced by the empty prompt with probability text.p_uncond, and the tokens are
 * encoded inside the gradient tape.
 *
 * Class-conditional models (unet.num_classes; ADM with classifier-free guidance): each batch carries
 * its clips' class labels as `class_label`, each replaced by the null label (num_classes) with
 * probability diffusion.class_p_uncond.
 */
import * as tf from '@tensorflow/tfjs';
import { ExperimentConfig, UNetConfig, DiffusionConfig, TimestepSampling } from '../config/schema';
import { NamedArray, ParamStore } from '../nn/params';
import { Rng, RngState, hashString } from '../nn/rng';
import { Adam, Ema, clipGradNorm, lrAt } from '../train/optim';
import { Trainer } from '../train/loop';
import { prefixed, subTensors } from '../train/checkpoint';
import { NoiseSchedule } from '../diffusion/schedule';
import { qSample } from '../diffusion/process';
import { diffusionLoss, gaussianNoise, motionWeights, sampleTimesteps, vLossWeights, withExtraWeights } from '../diffusion/loss';
import { checkMotionKeys } from '../nn/motion-weights';
import { predictionTarget, x0FromPrediction } from '../diffusion/prediction';
import { Cond } from '../diffusion/types';
import { UNet3D } from '../models/unet3d/unet';
import { TextConditioner } from '../text/conditioner';
import { LatentCache } from './latents';
import { InitReport, InitSpec, initFromWeights } from './init';

/** One training batch: the network input, its timesteps and conditioning, and the target. */
export interface PreparedBatch {
  x: tf.Tensor5D;
  t: Int32Array;
  /** The noise eps that made the generated positions of x from x0 (the target of eps-prediction). */
  target: tf.Tensor5D;
  /** The clean latents z_0 that eps noised (v-prediction needs them for its target). */
  x0: tf.Tensor5D;
  cond?: Cond;
  /** Loss weights broadcastable to target (e.g. [B, T, 1, 1, 1]: only generated frames count). */
  weights?: tf.Tensor;
}

/** What one part of a step's loss needs: the batch, its target and its self-conditioning input. */
interface LossInputs {
  batch: PreparedBatch;
  target: tf.Tensor5D;
  selfCond: tf.Tensor5D | null;
}

function disposeLossInputs({ batch, target, selfCond }: LossInputs): void {
  tf.dispose([batch.x, batch.target, batch.x0, target, ...(batch.weights ? [batch.weights] : []), ...Object.values(batch.cond ?? {}), ...(selfCond ? [selfCond] : [])]);
}

export interface BatchContext {
  schedule: NoiseSchedule;
  rng: Rng;
  step: number;
  /** Captions of the batch's clips, when the latent cache has them. */
  captions?: readonly string[];
  /** Class labels of the batch's clips, when the latent cache has them. */
  labels?: readonly number[];
  /** How t is drawn (`diffusion.timestep_sampling`; unset = uniform). */
  timestepSampling?: TimestepSampling;
  /** gamma of input perturbation (`diffusion.input_perturbation`; unset = none). */
  inputPerturbation?: number;
}

/** Builds a batch from clean normalised latents z0 [B, t, h, w, c] (z0 is disposed by the caller). */
export type BatchPreparer = (z0: tf.Tensor5D, ctx: BatchContext) => PreparedBatch;

/**
 * Unconditional LVDM: x_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps, target eps; with input
 * perturbation gamma the input is made from eps + gamma xi instead (inputPerturbationNoise).
 */
export const plainBatch: BatchPreparer = (z0, { schedule, rng, timestepSampling, inputPerturbation }) => {
  const t = sampleTimesteps(rng, z0.shape[0], schedule.T, timestepSampling);
  const noise = gaussianNoise(rng, z0.shape) as tf.Tensor5D;
  if (!inputPerturbation) return { x: qSample(schedule, z0, t, noise), t, target: noise, x0: z0.clone() };
  const perturbed = inputPerturbationNoise(noise, inputPerturbation, rng);
  const x = qSample(schedule, z0, t, perturbed);
  perturbed.dispose();
  return { x, t, target: noise, x0: z0.clone() };
};

/**
 * DDPM-IP's input noise eps + gamma xi (Ning et al. 2023, eq. 9), xi ~ N(0, I) drawn from a stream
 * forked off `rng` (forking leaves `rng` where it was, so the training's other draws are unchanged).
 */
export function inputPerturbationNoise(noise: tf.Tensor5D, gamma: number, rng: Rng): tf.Tensor5D {
  const xi = gaussianNoise(rng.fork('input-perturbation'), noise.shape);
  const out = tf.tidy(() => tf.add(noise, tf.mul(xi, gamma)) as tf.Tensor5D);
  xi.dispose();
  return out;
}

/** Each value replaced by `none` with probability p (one uniform draw per value): classifier-free guidance's condition dropout. */
export function dropConditions<T>(values: readonly T[], p: number, none: T, rng: Rng): T[] {
  return values.map((c) => (rng.uniform() < p ? none : c));
}

/** Each caption replaced by the empty prompt with probability p (one uniform draw per caption). */
export function dropCaptions(captions: readonly string[], p: number, rng: Rng): string[] {
  return dropConditions(captions, p, '', rng);
}

/** Probability of the null label in class-conditional training when diffusion.class_p_uncond is unset. */
export const DEFAULT_CLASS_P_UNCOND = 0.1;

/** Class-conditional LVDM: plainBatch with the clips' labels (the null label num_classes with probability pUncond) as `class_label`. */
export function classBatch(numClasses: number, pUncond: number): BatchPreparer {
  return (z0, ctx) => {
    if (!ctx.labels) throw new Error(`class-conditional training (unet.num_classes) needs class labels, but the latent cache has none (does data.source provide labels?)`);
    for (const v of ctx.labels)
      if (!Number.isInteger(v) || v < 0 || v >= numClasses) throw new Error(`class label ${v} of the training data is outside unet.num_classes (${numClasses} classes: 0..${numClasses - 1})`);
    const base = plainBatch(z0, ctx);
    return { ...base, cond: { class_label: tf.tensor1d(dropConditions(ctx.labels, pUncond, numClasses, ctx.rng), 'int32') } };
  };
}

/** The batch preparer of a config: text-to-video, class-conditional or plain. */
function batchPreparerFor(config: ExperimentConfig, text: TextConditioner | null): BatchPreparer {
  const classes = config.unet?.num_classes;
  if (text && classes !== undefined) throw new Error(`config '${config.name}': unet.num_classes and a 'text' section together are not supported; condition on one of them`);
  if (text) return textBatch(text, config.text!.p_uncond);
  if (classes !== undefined) return classBatch(classes, config.diffusion?.class_p_uncond ?? DEFAULT_CLASS_P_UNCOND);
  if (config.diffusion?.class_p_uncond !== undefined) throw new Error(`config '${config.name}': diffusion.class_p_uncond is set but the model is not class-conditional (unet.num_classes is unset)`);
  return plainBatch;
}

/** Text-to-video: plainBatch with the captions (empty with probability pUncond) as `tokens` / `token_mask`. */
export function textBatch(text: TextConditioner, pUncond: number): BatchPreparer {
  return (z0, ctx) => {
    if (!ctx.captions) throw new Error(`text-to-video training needs captions, but the latent cache has none (does data.source provide captions?)`);
    const base = plainBatch(z0, ctx);
    return { ...base, cond: text.tokenize(dropCaptions(ctx.captions, pUncond, ctx.rng)) };
  };
}

/** The text conditioner of a config with a `text` section, built in `store` (checks unet.context_dim). */
export function textConditionerFor(config: ExperimentConfig, store: ParamStore, source = `config '${config.name}'`): TextConditioner | null {
  if (!config.text) return null;
  const ctx = config.unet?.context_dim;
  if (ctx !== config.text.width) throw new Error(`${source}: unet.context_dim must equal text.width (${config.text.width}) for text-to-video, got ${ctx ?? 'unset'}`);
  return new TextConditioner(store, config.text, source);
}

export function scheduleFromConfig(d: DiffusionConfig): NoiseSchedule {
  const s = d.schedule;
  return NoiseSchedule.fromConfig({ kind: s.kind, timesteps: s.timesteps, linearStart: s.linear_start, linearEnd: s.linear_end, cosineS: s.cosine_s });
}

/** Checks that the config has what latent diffusion needs; returns the two sections. */
export function lvdmSections(config: ExperimentConfig, source = `config '${config.name}'`): { unet: UNetConfig; diffusion: DiffusionConfig } {
  if (!config.unet) throw new Error(`${source}: the 'unet' section is required for latent diffusion`);
  if (!config.diffusion) throw new Error(`${source}: the 'diffusion' section is required for latent diffusion`);
  return { unet: config.unet, diffusion: config.diffusion };
}

export interface LvdmTrainerOptions {
  config: ExperimentConfig;
  latents: LatentCache;
  /** Checkpoint kind (default 'lvdm'). */
  kind?: string;
  prepareBatch?: BatchPreparer;
  /** Start from another model's weights (a short stage's `init`; lib/lvdm/init.ts). */
  init?: InitSpec;
}

interface OrderState {
  epoch: number;
  position: number;
}

export class LvdmTrainer implements Trainer {
  readonly kind: string;
  readonly store: ParamStore;
  readonly unet: UNet3D;
  readonly schedule: NoiseSchedule;
  readonly unetCfg: UNetConfig;
  readonly cfg: DiffusionConfig;
  readonly ema: Ema | null;
  /** Text encoder of a text-to-video model (config `text`). */
  readonly text: TextConditioner | null;
  /** What `opts.init` copied, left fresh and froze (null without init). */
  readonly initReport: InitReport | null;
  private readonly opt: Adam;
  private readonly params: [string, tf.Variable][];
  private readonly prepare: BatchPreparer;
  private rng: Rng;
  private order: OrderState = { epoch: 0, position: 0 };
  private perm: number[] | null = null;

  constructor(readonly opts: LvdmTrainerOptions) {
    const { unet, diffusion } = lvdmSections(opts.config);
    this.unetCfg = unet;
    this.cfg = diffusion;
    this.kind = opts.kind ?? 'lvdm';
    const [, , , c] = opts.latents.shape;
    if (unet.in_channels !== c) throw new Error(`unet.in_channels is ${unet.in_channels} but the autoencoder's latents have ${c} channels`);
    const root = new Rng(opts.config.seed);
    this.store = new ParamStore(root.fork('init-unet'));
    this.unet = new UNet3D(this.store, unet);
    this.text = textConditionerFor(opts.config, this.store);
    this.text?.loadPretrained(this.store);
    try {
      this.initReport = opts.init ? initFromWeights(this.store, this.unet, opts.init) : null;
    } catch (e) {
      this.store.dispose();
      throw e;
    }
    if (diffusion.prediction === 'v' && diffusion.timestep_weighting === 'v')
      throw new Error(
        `config '${opts.config.name}': diffusion.timestep_weighting 'v' weights the eps loss to equal the v loss, and diffusion.prediction 'v' already regresses on v; set one of them, not both`,
      );
    checkMotionKeys('diffusion', diffusion.motion_weight, diffusion.motion_threshold, `config '${opts.config.name}'`);
    this.schedule = scheduleFromConfig(diffusion);
    this.params = this.store.trainable();
    const o = diffusion.optim;
    this.opt = new Adam(this.params, { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay, kind: o.kind });
    this.ema = diffusion.train.ema_decay > 0 ? new Ema(this.params, diffusion.train.ema_decay) : null;
    this.rng = root.fork('train-lvdm');
    if (opts.prepareBatch && diffusion.input_perturbation)
      throw new Error(
        `config '${opts.config.name}': diffusion.input_perturbation is for short-video models (plain, class-conditional and text batches); the long-video models' conditional batches do not support it`,
      );
    if (diffusion.image_batch !== undefined && opts.prepareBatch)
      throw new Error(
        `config '${opts.config.name}': diffusion.image_batch (joint image-video training) is for short-video models; the long-video models' conditional batches need their condition frames`,
      );
    if (diffusion.image_batch !== undefined && diffusion.motion_weight)
      throw new Error(`config '${opts.config.name}': diffusion.image_batch and diffusion.motion_weight together are not supported: single frames have no motion to weight`);
    this.prepare = opts.prepareBatch ?? batchPreparerFor(opts.config, this.text);
  }

  lr(step: number): number {
    const o = this.cfg.optim;
    return lrAt(step, { lr: o.lr, warmupSteps: o.warmup_steps, decay: o.decay, totalSteps: this.cfg.train.steps, minLr: o.min_lr });
  }

  /** Next clip indices: a fresh permutation of the cache per epoch (derived from seed and epoch). */
  private nextIndices(b: number): number[] {
    const n = this.opts.latents.count;
    const out: number[] = [];
    while (out.length < b) {
      if (!this.perm) this.perm = new Rng((this.opts.config.seed ^ hashString(`lvdm-epoch-${this.order.epoch}`)) >>> 0).permutation(n);
      out.push(this.perm[this.order.position]);
      this.order.position += 1;
      if (this.order.position >= n) {
        this.order = { epoch: this.order.epoch + 1, position: 0 };
        this.perm = null;
      }
    }
    return out;
  }

  async trainStep(step: number): Promise<Record<string, number>> {
    const b = this.cfg.train.batch_size;
    const indices = this.nextIndices(b);
    const z0 = this.opts.latents.sample(indices, this.rng);
    const batch = this.prepareFrom(z0, indices, step, this.rng);
    z0.dispose();
    const dropRng = this.unetCfg.dropout > 0 ? this.rng.fork(`dropout-${step}`) : undefined;
    const video = this.lossInputs(batch, this.rng, dropRng);
    const imageDrop = dropRng?.fork('images');
    const images = this.cfg.image_batch ? this.imageLossInputs(step, imageDrop) : null;
    const parts: Record<string, number> = {};
    const { value, grads } = tf.variableGrads(
      () => {
        const lv = this.partLoss(video, dropRng);
        if (!images) return lv;
        // Joint image-video training (Ho et al. 2022): the mean over all frames, each part's mean
        // weighted by its frame count, as if the images were concatenated to the clips.
        const li = this.partLoss(images, imageDrop);
        parts.loss_video = lv.dataSync()[0];
        parts.loss_image = li.dataSync()[0];
        const nv = batch.x.shape[0] * batch.x.shape[1];
        const ni = images.batch.x.shape[0];
        return tf.div(tf.add(tf.mul(lv, nv), tf.mul(li, ni)), nv + ni) as tf.Scalar;
      },
      this.params.map(([, v]) => v),
    );
    const named = new Map<string, tf.Tensor>();
    for (const [name, v] of this.params) {
      const g = grads[v.name];
      if (g) named.set(name, g);
    }
    const logs: Record<string, number> = { loss: value.dataSync()[0], ...parts };
    const lr = this.lr(step);
    logs.lr = lr;
    if (this.cfg.optim.grad_clip > 0) logs.grad_norm = clipGradNorm(named, this.cfg.optim.grad_clip);
    this.opt.apply(named, lr);
    this.ema?.update();
    tf.dispose([value, ...named.values()]);
    disposeLossInputs(video);
    if (images) disposeLossInputs(images);
    return logs;
  }

  /** The batch preparer's batch of clean latents z0 of the given clips, their captions and labels attached. */
  private prepareFrom(z0: tf.Tensor5D, indices: number[], step: number, rng: Rng): PreparedBatch {
    const { captions, labels } = this.opts.latents;
    return this.prepare(z0, {
      schedule: this.schedule,
      rng,
      step,
      captions: captions ? indices.map((i) => captions[i]) : undefined,
      labels: labels ? indices.map((i) => labels[i]) : undefined,
      timestepSampling: this.cfg.timestep_sampling,
      inputPerturbation: this.cfg.input_perturbation,
    });
  }

  /** A prepared batch's regression target, loss weights and self-conditioning input. */
  private lossInputs(batch: PreparedBatch, rng: Rng, dropRng: Rng | undefined): LossInputs {
    const target = predictionTarget(this.schedule, this.cfg.prediction ?? 'eps', batch.x0, batch.t, batch.target);
    if (this.cfg.timestep_weighting === 'v') batch.weights = withExtraWeights(batch.weights, vLossWeights(this.schedule, batch.t, this.cfg.loss));
    if (this.cfg.motion_weight) batch.weights = withExtraWeights(batch.weights, motionWeights(batch.x0, this.cfg.motion_weight, this.cfg.motion_threshold ?? 0));
    return { batch, target, selfCond: this.selfConditionInput(batch, rng, dropRng) };
  }

  /**
   * The images of joint image-video training at `step`: diffusion.image_batch single frames, each a
   * random frame of a random training clip, as one-frame clips. Every draw comes from a stream
   * forked off the training rng by step, so the clips' draws are those of training without images.
   */
  private imageLossInputs(step: number, dropRng: Rng | undefined): LossInputs {
    const rng = this.rng.fork(`image-batch-${step}`);
    const { count, shape } = this.opts.latents;
    const n = this.cfg.image_batch!;
    const indices = Array.from({ length: n }, () => rng.int(0, count - 1));
    const frames = Array.from({ length: n }, () => rng.int(0, shape[0] - 1));
    const z0 = this.opts.latents.sampleFrames(indices, frames, rng);
    const batch = this.prepareFrom(z0, indices, step, rng);
    z0.dispose();
    return this.lossInputs(batch, rng, dropRng);
  }

  /** The diffusion loss of one part of a step's batch, inside the gradient tape. */
  private partLoss({ batch, target, selfCond }: LossInputs, dropRng: Rng | undefined): tf.Scalar {
    const encoded = this.text && batch.cond ? this.text.encodeCond(batch.cond) : batch.cond;
    const cond = selfCond ? { ...encoded, self_cond: selfCond } : encoded;
    return diffusionLoss(this.unet.apply(batch.x, batch.t, cond, { rng: dropRng }), target, this.cfg.loss, batch.weights);
  }

  /**
   * Self-conditioning (unet.self_condition; Chen et al. 2022, Algorithm 1): with probability 1/2 the
   * network's own x_0 estimate from a first forward at the same x_t and t, outside the gradient tape
   * (a constant input to the trained forward); otherwise null (the network reads zeros).
   */
  private selfConditionInput(batch: PreparedBatch, rng: Rng, dropRng: Rng | undefined): tf.Tensor5D | null {
    if (!this.unetCfg.self_condition || rng.uniform() >= 0.5) return null;
    return tf.tidy(() => {
      const cond = this.text && batch.cond ? this.text.encodeCond(batch.cond) : batch.cond;
      const out = this.unet.apply(batch.x, batch.t, cond, { rng: dropRng?.fork('self-cond') });
      return x0FromPrediction(this.schedule, this.cfg.prediction ?? 'eps', batch.x, batch.t, out);
    });
  }

  checkpointTensors(): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>([...prefixed(this.store.snapshot(), 'model.'), ...this.opt.stateTensors('optim.')]);
    if (this.ema) for (const [k, v] of this.ema.stateTensors('ema.')) out.set(k, v);
    return out;
  }

  checkpointState(): Record<string, unknown> {
    return {
      rng: this.rng.state(),
      order: { ...this.order },
      optim_t: this.opt.t,
      ema_updates: this.ema?.updates ?? 0,
      latent: this.opts.latents.norm,
      latent_shape: this.opts.latents.shape,
    };
  }

  restore(tensors: Map<string, NamedArray>, state: Record<string, unknown>, step: number, source: string): void {
    this.store.load(subTensors(tensors, 'model.'), { source });
    this.opt.loadStateTensors(tensors, 'optim.', Number(state.optim_t ?? step), source);
    if (this.ema) this.ema.loadStateTensors(tensors, 'ema.', Number(state.ema_updates ?? step), source);
    this.rng = Rng.fromState(state.rng as RngState);
    const o = state.order as OrderState | undefined;
    if (!o || !Number.isInteger(o.epoch) || !Number.isInteger(o.position)) throw new Error(`${source}: checkpoint state has no data order`);
    this.order = { epoch: o.epoch, position: o.position };
    this.perm = null;
  }

  /** Parameters to sample with: the EMA shadow when EMA is on, else the live weights. */
  samplingWeights(): Map<string, NamedArray> {
    const out = this.store.snapshot();
    if (this.ema) for (const [k, v] of this.ema.stateTensors('')) out.set(k, v);
    return out;
  }

  dispose(): void {
    this.opt.dispose();
    this.ema?.dispose();
    this.store.dispose();
  }
}
