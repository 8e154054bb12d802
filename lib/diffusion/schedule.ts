/**
 * Noise schedules of the forward process q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
 * (Ho et al., 2020, "Denoising Diffusion Probabilistic Models", arXiv 2006.11239) and every
 * quantity derived from them, tabulated in float64 ("use float64 for accuracy"). Timesteps are
 * 0-based: index t = 0 is one step of noise, t = T - 1 the last (LDM convention).
 */

export type BetaScheduleKind = 'linear' | 'cosine';

export interface ScheduleConfig {
  /** 'linear': LDM/LVDM's betas = linspace(sqrt(b0), sqrt(b1), T)^2; 'cosine': Nichol & Dhariwal (2021). */
  kind: BetaScheduleKind;
  timesteps: number;
  linearStart: number;
  linearEnd: number;
  /** Offset s of the cosine schedule. */
  cosineS: number;
}

/** LVDM's schedule (lvdm-facts.md section 2): T = 1000, linear, b0 = 0.0015, b1 = 0.0155. */
export const LVDM_SCHEDULE: ScheduleConfig = { kind: 'linear', timesteps: 1000, linearStart: 0.0015, linearEnd: 0.0155, cosineS: 0.008 };

/** betas[t], t = 0..T-1, in float64. */
export function makeBetas(cfg: ScheduleConfig): Float64Array {
  const T = cfg.timesteps;
  if (!Number.isInteger(T) || T < 1) throw new Error(`noise schedule: timesteps must be a positive integer, got ${T}`);
  const betas = new Float64Array(T);
  if (cfg.kind === 'linear') {
    if (!(cfg.linearStart > 0 && cfg.linearEnd >= cfg.linearStart && cfg.linearEnd < 1))
      throw new Error(`noise schedule: expected 0 < linear_start <= linear_end < 1, got ${cfg.linearStart}, ${cfg.linearEnd}`);
    const a = Math.sqrt(cfg.linearStart);
    const b = Math.sqrt(cfg.linearEnd);
    for (let t = 0; t < T; t++) {
      const v = T === 1 ? a : a + ((b - a) * t) / (T - 1);
      betas[t] = v * v;
    }
  } else if (cfg.kind === 'cosine') {
    // Improved DDPM, eq. 17: abar(t) = f(t) / f(0), f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2);
    // beta_t = 1 - abar(t + 1) / abar(t), clipped to 0.999.
    const s = cfg.cosineS;
    const f = (t: number): number => Math.cos((((t / T) + s) / (1 + s)) * (Math.PI / 2)) ** 2;
    for (let t = 0; t < T; t++) betas[t] = Math.min(1 - f(t + 1) / f(t), 0.999);
  } else {
    throw new Error(`noise schedule: unknown kind '${String(cfg.kind)}' (expected 'linear' or 'cosine')`);
  }
  return betas;
}

/**
 * All per-timestep constants of the forward process and its posterior, float64.
 * Symbols: alpha_t = 1 - beta_t, abar_t = prod_{s<=t} alpha_s (Ho et al., eq. 4).
 */
export class NoiseSchedule {
  readonly T: number;
  readonly betas: Float64Array;
  readonly alphas: Float64Array;
  /** abar_t */
  readonly alphasCumprod: Float64Array;
  /** abar_{t-1}, with abar_{-1} = 1. */
  readonly alphasCumprodPrev: Float64Array;
  readonly sqrtAlphasCumprod: Float64Array;
  readonly sqrtOneMinusAlphasCumprod: Float64Array;
  readonly logOneMinusAlphasCumprod: Float64Array;
  /** 1 / sqrt(abar_t) */
  readonly sqrtRecipAlphasCumprod: Float64Array;
  /** sqrt(1 / abar_t - 1) */
  readonly sqrtRecipm1AlphasCumprod: Float64Array;
  /** beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) (eq. 7); 0 at t = 0. */
  readonly posteriorVariance: Float64Array;
  /** log beta~_t with the t = 0 entry replaced by beta~_1 (it is 0 there). */
  readonly posteriorLogVarianceClipped: Float64Array;
  /** mu~_t = coef1 * x_0 + coef2 * x_t (eq. 7). */
  readonly posteriorMeanCoef1: Float64Array;
  readonly posteriorMeanCoef2: Float64Array;

  constructor(betas: Float64Array) {
    const T = betas.length;
    if (T < 1) throw new Error('NoiseSchedule: empty betas');
    for (let t = 0; t < T; t++) {
      if (!(betas[t] > 0 && betas[t] < 1)) throw new Error(`NoiseSchedule: beta[${t}] = ${betas[t]} outside (0, 1)`);
    }
    this.T = T;
    this.betas = Float64Array.from(betas);
    const f = (): Float64Array => new Float64Array(T);
    this.alphas = f();
    this.alphasCumprod = f();
    this.alphasCumprodPrev = f();
    this.sqrtAlphasCumprod = f();
    this.sqrtOneMinusAlphasCumprod = f();
    this.logOneMinusAlphasCumprod = f();
    this.sqrtRecipAlphasCumprod = f();
    this.sqrtRecipm1AlphasCumprod = f();
    this.posteriorVariance = f();
    this.posteriorLogVarianceClipped = f();
    this.posteriorMeanCoef1 = f();
    this.posteriorMeanCoef2 = f();
    let prod = 1;
    for (let t = 0; t < T; t++) {
      const a = 1 - betas[t];
      this.alphas[t] = a;
      this.alphasCumprodPrev[t] = prod;
      prod *= a;
      this.alphasCumprod[t] = prod;
    }
    for (let t = 0; t < T; t++) {
      const ab = this.alphasCumprod[t];
      const abPrev = this.alphasCumprodPrev[t];
      const b = betas[t];
      this.sqrtAlphasCumprod[t] = Math.sqrt(ab);
      this.sqrtOneMinusAlphasCumprod[t] = Math.sqrt(1 - ab);
      this.logOneMinusAlphasCumprod[t] = Math.log(1 - ab);
      this.sqrtRecipAlphasCumprod[t] = Math.sqrt(1 / ab);
      this.sqrtRecipm1AlphasCumprod[t] = Math.sqrt(1 / ab - 1);
      this.posteriorVariance[t] = (b * (1 - abPrev)) / (1 - ab);
      this.posteriorMeanCoef1[t] = (b * Math.sqrt(abPrev)) / (1 - ab);
      this.posteriorMeanCoef2[t] = ((1 - abPrev) * Math.sqrt(this.alphas[t])) / (1 - ab);
    }
    for (let t = 0; t < T; t++) {
      const v = t === 0 && T > 1 ? this.posteriorVariance[1] : this.posteriorVariance[t];
      this.posteriorLogVarianceClipped[t] = Math.log(Math.max(v, 1e-20));
    }
  }

  static fromConfig(cfg: ScheduleConfig): NoiseSchedule {
    return new NoiseSchedule(makeBetas(cfg));
  }

  /** Throws unless every entry of `t` is an integer timestep in [0, T). */
  checkTimesteps(t: ArrayLike<number>, what = 'timestep'): void {
    for (let i = 0; i < t.length; i++) {
      const v = t[i];
      if (!Number.isInteger(v) || v < 0 || v >= this.T) throw new Error(`${what} ${v} outside [0, ${this.T - 1}]`);
    }
  }
}
