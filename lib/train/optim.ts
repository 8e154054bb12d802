/**
 * Optimisers with checkpointable state: Adam (Kingma & Ba, 2015) and AdamW (decoupled weight decay,
 * Loshchilov & Hutter, 2019), global-norm gradient clipping, EMA of weights and LR warm-up.
 * State tensors are named after the parameters (`m.<name>`, `v.<name>`), so checkpoints are by name.
 */
import * as tf from '@tensorflow/tfjs';
import { NamedArray } from '../nn/params';
import { FUSED_KERNELS, hasKernel, listInputs, runKernel } from '../backend/fused';

export interface AdamConfig {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** 'adamw' decouples weight decay from the gradient; 'adam' adds wd * p to the gradient (L2). */
  kind: 'adam' | 'adamw';
}

/** A non-trainable variable holding `t`'s values; `t` is disposed (the variable keeps the data). */
function ownedVariable(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, false);
  t.dispose();
  return v;
}

export class Adam {
  /** Number of updates applied so far (t in the bias corrections). */
  t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(readonly params: [string, tf.Variable][], readonly cfg: AdamConfig) {
    for (const [name, p] of params) {
      this.m.set(name, ownedVariable(tf.zerosLike(p)));
      this.v.set(name, ownedVariable(tf.zerosLike(p)));
    }
  }

  /** One update with learning rate `lr`; `grads` maps parameter names to gradients (missing = skip). */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    this.t += 1;
    const [b1, b2] = this.cfg.betas;
    const c1 = 1 - Math.pow(b1, this.t);
    const c2 = 1 - Math.pow(b2, this.t);
    const stepSize = lr / c1; // Adam, Algorithm 1 with the bias corrections folded into the step size
    const wd = this.cfg.weightDecay;
    if (hasKernel(FUSED_KERNELS.adamStep)) {
      this.applyFused(grads, lr, stepSize, c2);
      return;
    }
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        let g = grads.get(name);
        if (!g) continue;
        if (this.cfg.kind === 'adam' && wd > 0) g = tf.add(g, tf.mul(p, wd));
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        m.assign(m1);
        v.assign(v1);
        const denom = tf.add(tf.sqrt(tf.div(v1, c2)), this.cfg.eps);
        let p1 = tf.sub(p, tf.mul(tf.div(m1, denom), stepSize));
        if (this.cfg.kind === 'adamw' && wd > 0) p1 = tf.sub(p1, tf.mul(p, lr * wd));
        p.assign(p1);
      }
    });
  }

  /** The same update as `apply` for every parameter in one backend kernel (LvdmAdamStep). */
  private applyFused(grads: Map<string, tf.Tensor>, lr: number, stepSize: number, c2: number): void {
    const live = this.params.filter(([name]) => grads.has(name));
    if (live.length === 0) return;
    const wd = this.cfg.weightDecay;
    const ps = live.map(([, p]) => p);
    const ms = live.map(([name]) => this.m.get(name)!);
    const vs = live.map(([name]) => this.v.get(name)!);
    const inputs = listInputs(listInputs(listInputs(listInputs({}, 'p', ps), 'm', ms), 'v', vs), 'g', live.map(([name]) => grads.get(name)!));
    const k = live.length;
    const attrs = { k, beta1: this.cfg.betas[0], beta2: this.cfg.betas[1], eps: this.cfg.eps, stepSize, c2 };
    const decay = this.cfg.kind === 'adamw' ? { decoupled: lr * wd, l2: 0 } : { decoupled: 0, l2: wd };
    tf.tidy(() => {
      const out = runKernel(FUSED_KERNELS.adamStep, inputs, { ...attrs, ...decay });
      for (let i = 0; i < k; i++) {
        ms[i].assign(out[k + i]);
        vs[i].assign(out[2 * k + i]);
        ps[i].assign(out[i]);
      }
    });
  }

  stateTensors(prefix: string): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>();
    for (const [name, m] of this.m) out.set(`${prefix}m.${name}`, { shape: m.shape.slice(), data: m.dataSync() as Float32Array });
    for (const [name, v] of this.v) out.set(`${prefix}v.${name}`, { shape: v.shape.slice(), data: v.dataSync() as Float32Array });
    return out;
  }

  loadStateTensors(t: Map<string, NamedArray>, prefix: string, step: number, source: string): void {
    for (const [kind, map] of [['m', this.m], ['v', this.v]] as const) {
      for (const [name, variable] of map) {
        const a = t.get(`${prefix}${kind}.${name}`);
        if (!a) throw new Error(`${source}: optimiser state '${prefix}${kind}.${name}' missing`);
        checkShape(a, variable, `${source}: optimiser state '${prefix}${kind}.${name}'`);
        tf.tidy(() => variable.assign(tf.tensor(a.data, variable.shape)));
      }
    }
    this.t = step;
  }

  dispose(): void {
    for (const x of this.m.values()) x.dispose();
    for (const x of this.v.values()) x.dispose();
  }
}

function checkShape(a: NamedArray, v: tf.Variable, what: string): void {
  if (a.shape.length !== v.shape.length || a.shape.some((d, i) => d !== v.shape[i]) || a.data.length !== v.size)
    throw new Error(`${what} has shape [${a.shape}] (${a.data.length} values), expected [${v.shape}]`);
}

/**
 * Scales gradients in place so their global L2 norm is at most `maxNorm`; returns the norm before
 * clipping (one device read).
 */
export function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): number {
  if (grads.size === 0) return 0;
  const gs = [...grads.values()];
  const normT = tf.tidy(() =>
    tf.sqrt(hasKernel(FUSED_KERNELS.sumSquares) ? runKernel(FUSED_KERNELS.sumSquares, listInputs({}, 'x', gs), {})[0] : tf.addN(gs.map((g) => tf.sum(tf.square(g))))),
  );
  const norm = normT.dataSync()[0];
  normT.dispose();
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const [k, g] of grads) {
      grads.set(k, tf.mul(g, s));
      g.dispose();
    }
  }
  return norm;
}

/**
 * Exponential moving average of weights with the LDM warm-up: decay_n = min(d, (1 + n) / (10 + n))
 * (LVDM facts, section 2), n = 1 for the first update (LDM's LitEma increments its counter before
 * computing the decay). Shadows are used for sampling via `swap`.
 */
export class Ema {
  updates = 0;
  readonly shadow = new Map<string, tf.Variable>();

  constructor(readonly params: [string, tf.Variable][], readonly decay: number) {
    for (const [name, p] of params) this.shadow.set(name, ownedVariable(p.clone()));
  }

  /** The decay the next `update()` applies. */
  currentDecay(): number {
    const n = this.updates + 1;
    return Math.min(this.decay, (1 + n) / (10 + n));
  }

  update(): void {
    const d = this.currentDecay();
    this.updates += 1;
    if (hasKernel(FUSED_KERNELS.emaUpdate)) {
      const shadows = this.params.map(([name]) => this.shadow.get(name)!);
      const inputs = listInputs(listInputs({}, 's', shadows), 'p', this.params.map(([, p]) => p));
      tf.tidy(() => runKernel(FUSED_KERNELS.emaUpdate, inputs, { k: shadows.length, decay: d }).forEach((s, i) => shadows[i].assign(s)));
      return;
    }
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const s = this.shadow.get(name)!;
        s.assign(tf.add(tf.mul(s, d), tf.mul(p, 1 - d)));
      }
    });
  }

  /** Swaps EMA and live weights (call twice to restore). */
  swap(): void {
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const s = this.shadow.get(name)!;
        const tmp = p.clone();
        p.assign(s);
        s.assign(tmp);
      }
    });
  }

  stateTensors(prefix: string): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>();
    for (const [name, s] of this.shadow) out.set(`${prefix}${name}`, { shape: s.shape.slice(), data: s.dataSync() as Float32Array });
    return out;
  }

  loadStateTensors(t: Map<string, NamedArray>, prefix: string, updates: number, source: string): void {
    for (const [name, s] of this.shadow) {
      const a = t.get(`${prefix}${name}`);
      if (!a) throw new Error(`${source}: EMA tensor '${prefix}${name}' missing`);
      checkShape(a, s, `${source}: EMA tensor '${prefix}${name}'`);
      tf.tidy(() => s.assign(tf.tensor(a.data, s.shape)));
    }
    this.updates = updates;
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
  }
}

export interface LrSchedule {
  lr: number;
  warmupSteps: number;
  /** 'constant' after warm-up, or cosine decay to `minLr` at `totalSteps`. */
  decay: 'constant' | 'cosine';
  totalSteps: number;
  minLr: number;
}

/** Learning rate at (0-based) step: linear warm-up, then constant or cosine. */
export function lrAt(step: number, s: LrSchedule): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.decay === 'constant') return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / span);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * p));
}
