/**
 * Training of the VideoAutoencoder with LDM's LPIPSWithDiscriminator objective
 * (lvdm-facts.md section 1; Esser et al. 2021 / Rombach et al. 2022):
 *   rec   = pixel_weight * |x - x_hat| (or squared) + lpips_weight * LPIPS(x, x_hat)        per pixel
 *           + edge_weight * GDL(x, x_hat)   (gradient difference, gdl.ts; not in LDM, off by default)
 *           times 1 + motion_weight * max(m - tau, 0) (moving pixels, lib/nn/motion-weights.ts; not in LDM, off by default)
 *   nll   = sum(rec / exp(logvar) + logvar) / B      (logvar: one learned scalar)
 *   L_G   = nll + kl_weight * KL + d_weight * [step >= disc_start] * (-mean D(x_hat))
 *   d_weight = clamp(|grad_last nll| / (|grad_last L_adv| + 1e-4), 0, 1e4) * disc_weight
 *   L_D   = [step >= disc_start] * hinge(D(x), D(x_hat))
 * Adam with betas (0.5, 0.9) for both the autoencoder and the PatchGAN discriminator.
 */
import * as tf from '@tensorflow/tfjs';
import { AutoencoderConfig, ExperimentConfig } from '../config/schema';
import { NamedArray, ParamStore, Scope, init } from '../nn/params';
import { Rng, RngState, hashString } from '../nn/rng';
import { Adam, clipGradNorm, lrAt } from '../train/optim';
import { Trainer } from '../train/loop';
import { prefixed, subTensors } from '../train/checkpoint';
import { ClipLoader, LoaderState } from '../../data/loader';
import type { ClipDataset } from '../../data/types';
import { VideoAutoencoder, klDivergence } from './model';
import { Lpips } from './lpips';
import { gradientDifference } from './gdl';
import { checkMotionKeys, motionWeights } from '../nn/motion-weights';
import { NLayerDiscriminator, adaptiveWeight, generatorAdvLoss, hingeDLoss } from './discriminator';

export interface AutoencoderTrainerOptions {
  config: ExperimentConfig;
  dataset: ClipDataset;
  /** Logged once (e.g. the LPIPS notice). */
  log?: (msg: string) => void;
}

/** Maps tfjs variable ids to parameter names for tf.variableGrads results. */
export function gradsByName(params: [string, tf.Variable][], grads: tf.NamedTensorMap): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, v] of params) {
    const g = grads[v.name];
    if (g) out.set(name, g);
  }
  return out;
}

export class AutoencoderTrainer implements Trainer {
  readonly kind = 'autoencoder';
  readonly store: ParamStore;
  readonly ae: VideoAutoencoder;
  readonly logvar: tf.Variable;
  readonly discStore: ParamStore;
  readonly disc: NLayerDiscriminator | null;
  readonly lpips: Lpips | null;
  readonly loader: ClipLoader;
  readonly cfg: AutoencoderConfig;
  private readonly optAe: Adam;
  private readonly optDisc: Adam | null;
  private rng: Rng;

  constructor(readonly opts: AutoencoderTrainerOptions) {
    const ae = opts.config.autoencoder;
    if (!ae) throw new Error('config: the `autoencoder` section is required to train an autoencoder');
    this.cfg = ae;
    checkMotionKeys('autoencoder.loss', ae.loss.motion_weight, ae.loss.motion_threshold, `config '${opts.config.name}'`);
    const seed = opts.config.seed;
    const log = opts.log ?? ((m: string) => process.stderr.write(`[lvdm] ${m}\n`));
    const root = new Rng(seed);
    this.store = new ParamStore(root.fork('init-autoencoder'));
    this.ae = new VideoAutoencoder(this.store, ae.model);
    this.logvar = new Scope(this.store, 'loss').param('logvar', [], init.constant(ae.loss.logvar_init));
    this.discStore = new ParamStore(root.fork('init-discriminator'));
    this.disc =
      ae.loss.disc_weight > 0 ? new NLayerDiscriminator(new Scope(this.discStore, 'disc'), { nLayers: ae.loss.disc_layers, channels: ae.loss.disc_channels }) : null;
    if (ae.loss.lpips_weight > 0) {
      if (!ae.loss.lpips_weights)
        throw new Error('autoencoder.loss.lpips_weight > 0 needs autoencoder.loss.lpips_weights (a weights file; see lib/autoencoder/LPIPS.md)');
      this.lpips = Lpips.load(ae.loss.lpips_weights, ae.loss.lpips_net);
      log(`LPIPS (${ae.loss.lpips_net}) from ${ae.loss.lpips_weights}, weight ${ae.loss.lpips_weight}`);
    } else {
      this.lpips = null;
      log('LPIPS weight 0: no LPIPS weights file given (autoencoder.loss.lpips_weights), so the perceptual loss is off');
    }
    const o = ae.optim;
    const adamCfg = { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay, kind: o.kind };
    this.optAe = new Adam(this.store.trainable(), adamCfg);
    this.optDisc = this.disc ? new Adam(this.discStore.trainable(), { ...adamCfg, lr: ae.loss.disc_lr ?? o.lr }) : null;
    this.loader = new ClipLoader(opts.dataset, { batchSize: ae.train.batch_size, seed: (seed ^ hashString('loader')) >>> 0 });
    this.rng = root.fork('posterior-noise');
  }

  lr(step: number): number {
    const o = this.cfg.optim;
    return lrAt(step, { lr: o.lr, warmupSteps: o.warmup_steps, decay: o.decay, totalSteps: this.cfg.train.steps, minLr: o.min_lr });
  }

  /** Per-pixel reconstruction term (L1/MSE + gradient difference + LPIPS per frame, times the motion weight), [B, T, H, W, 3]. */
  private recLoss(x: tf.Tensor5D, xr: tf.Tensor5D): tf.Tensor {
    return tf.tidy(() => {
      const d = tf.sub(x, xr);
      const loss = this.cfg.loss;
      let rec: tf.Tensor = loss.pixel === 'l1' ? tf.abs(d) : tf.square(d);
      if (loss.pixel_weight !== 1) rec = tf.mul(rec, loss.pixel_weight);
      if (loss.edge_weight) rec = tf.add(rec, tf.mul(gradientDifference(x, xr), loss.edge_weight));
      if (this.lpips && loss.lpips_weight > 0) {
        const [b, t, h, w, c] = x.shape;
        const p = this.lpips.distance(tf.reshape(x, [b * t, h, w, c]), tf.reshape(xr, [b * t, h, w, c])); // [B*T]
        rec = tf.add(rec, tf.mul(tf.reshape(p, [b, t, 1, 1, 1]), loss.lpips_weight));
      }
      if (loss.motion_weight) rec = tf.mul(rec, motionWeights(x, loss.motion_weight, loss.motion_threshold ?? 0, 'max'));
      return rec;
    });
  }

  private nll(rec: tf.Tensor, batch: number): tf.Scalar {
    return tf.tidy(() => tf.div(tf.sum(tf.add(tf.div(rec, tf.exp(this.logvar)), this.logvar)), batch) as tf.Scalar);
  }

  /** Adaptive GAN weight from gradient norms at the decoder's last layer (computed on a detached trunk). */
  private adaptiveDWeight(x: tf.Tensor5D, z: tf.Tensor5D): number {
    const disc = this.disc!;
    const w = this.ae.decConvOut.weight;
    const [gNll, gAdv] = tf.tidy(() => {
      const trunk = this.ae.decodeTrunk(z);
      const head = (wt: tf.Tensor): tf.Tensor5D => this.ae.decConvOut.apply(trunk, wt);
      const nllGrad = tf.grad((wt: tf.Tensor) => this.nll(this.recLoss(x, head(wt)), x.shape[0]))(w);
      const advGrad = tf.grad((wt: tf.Tensor) => generatorAdvLoss(disc.applyVideo(head(wt))))(w);
      return [tf.norm(nllGrad), tf.norm(advGrad)];
    });
    const a = gNll.dataSync()[0];
    const b = gAdv.dataSync()[0];
    tf.dispose([gNll, gAdv]);
    return adaptiveWeight(a, b, this.cfg.loss.disc_weight);
  }

  async trainStep(step: number): Promise<Record<string, number>> {
    const batch = await this.loader.next();
    const lr = this.lr(step);
    const discOn = this.disc !== null && step >= this.cfg.loss.disc_start;
    const x = tf.tensor5d(batch.video, [batch.batchSize, batch.frames, batch.height, batch.width, 3]);
    const eps = tf.tensor(this.rng.normalArray(batch.batchSize * this.latentSize(batch)), undefined, 'float32');
    const logs: Record<string, number> = { lr };
    try {
      let dWeight = 0;
      if (discOn) {
        const zFixed = tf.tidy(() => {
          const p = this.ae.encode(x);
          return tf.add(p.mean, tf.mul(tf.exp(tf.mul(p.logvar, 0.5)), tf.reshape(eps, p.mean.shape)));
        }) as tf.Tensor5D;
        dWeight = this.adaptiveDWeight(x, zFixed);
        zFixed.dispose();
      }
      const params = this.store.trainable();
      const kept: Record<string, tf.Tensor> = {};
      let xrKept: tf.Tensor5D | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const p = this.ae.encode(x);
        const z = tf.add(p.mean, tf.mul(tf.exp(tf.mul(p.logvar, 0.5)), tf.reshape(eps, p.mean.shape))) as tf.Tensor5D;
        const xr = this.ae.decode(z);
        const rec = this.recLoss(x, xr);
        const nll = this.nll(rec, batch.batchSize);
        const kl = tf.mean(klDivergence(p));
        let loss = tf.add(nll, tf.mul(kl, this.cfg.loss.kl_weight)) as tf.Scalar;
        kept.rec = tf.keep(tf.mean(rec));
        kept.kl = tf.keep(kl);
        kept.nll = tf.keep(nll);
        if (discOn) {
          const g = generatorAdvLoss(this.disc!.applyVideo(xr));
          kept.g_loss = tf.keep(g);
          loss = tf.add(loss, tf.mul(g, dWeight)) as tf.Scalar;
          xrKept = tf.keep(xr);
        }
        return loss;
      }, params.map(([, v]) => v));
      const named = gradsByName(params, grads);
      if (this.cfg.optim.grad_clip > 0) logs.grad_norm = clipGradNorm(named, this.cfg.optim.grad_clip);
      this.optAe.apply(named, lr);
      tf.dispose([...named.values()]);
      logs.loss = value.dataSync()[0];
      value.dispose();
      for (const [k, t] of Object.entries(kept)) {
        logs[k] = t.dataSync()[0];
        t.dispose();
      }
      logs.logvar = this.logvar.dataSync()[0];
      if (discOn) {
        logs.d_weight = dWeight;
        const xr = xrKept as tf.Tensor5D | null;
        if (xr) {
          logs.d_loss = this.discStep(x, xr, lr);
          xr.dispose();
        }
      }
    } finally {
      x.dispose();
      eps.dispose();
    }
    return logs;
  }

  private discStep(x: tf.Tensor5D, xr: tf.Tensor5D, lr: number): number {
    const disc = this.disc!;
    const params = this.discStore.trainable();
    const { value, grads } = tf.variableGrads(() => hingeDLoss(disc.applyVideo(x), disc.applyVideo(xr)), params.map(([, v]) => v));
    const named = gradsByName(params, grads);
    this.optDisc!.apply(named, lr);
    tf.dispose([...named.values()]);
    const v = value.dataSync()[0];
    value.dispose();
    return v;
  }

  private latentSize(batch: { frames: number; height: number; width: number }): number {
    const [t, h, w, c] = this.ae.latentShape(batch.frames, batch.height, batch.width);
    return t * h * w * c;
  }

  checkpointTensors(): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>([...prefixed(this.store.snapshot(), 'model.'), ...this.optAe.stateTensors('optim.ae.')]);
    if (this.disc) {
      for (const [k, v] of prefixed(this.discStore.snapshot(), 'disc_model.')) out.set(k, v);
      for (const [k, v] of this.optDisc!.stateTensors('optim.disc.')) out.set(k, v);
    }
    return out;
  }

  checkpointState(): Record<string, unknown> {
    return { rng: this.rng.state(), loader: this.loader.state(), optim_ae_t: this.optAe.t, optim_disc_t: this.optDisc?.t ?? 0 };
  }

  restore(tensors: Map<string, NamedArray>, state: Record<string, unknown>, step: number, source: string): void {
    this.store.load(subTensors(tensors, 'model.'), { source });
    this.optAe.loadStateTensors(tensors, 'optim.ae.', Number(state.optim_ae_t ?? step), source);
    if (this.disc) {
      this.discStore.load(subTensors(tensors, 'disc_model.'), { source });
      this.optDisc!.loadStateTensors(tensors, 'optim.disc.', Number(state.optim_disc_t ?? 0), source);
    }
    this.rng = Rng.fromState(state.rng as RngState);
    this.loader.setState(state.loader as LoaderState);
  }

  dispose(): void {
    this.store.dispose();
    this.discStore.dispose();
    this.optAe.dispose();
    this.optDisc?.dispose();
  }
}

