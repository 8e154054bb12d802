import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import {
  LVDM_SCHEDULE,
  NoiseSchedule,
  EpsModel,
  ddimSteps,
  ddimTimesteps,
  diffusionLoss,
  guidedEps,
  autoguidedModel,
  noiseLevelExperts,
  epsilonScaledModel,
  predictEpsFromX0,
  predictX0FromEps,
  qPosterior,
  qSample,
  sample,
  sampleTimesteps,
  makeBetas,
  vLossWeights,
  motionWeights,
  withExtraWeights,
  vFromEps,
  epsFromV,
  epsModelFor,
  predictionTarget,
  x0FromPrediction,
} from '../lib/diffusion';
import { withSelfCondition } from '../lib/diffusion/types';
import { microBatched } from '../lib/hierarchical/sample';
import { DiffusionConfig } from '../lib/config/schema';

interface Fixture {
  idx: number[];
  linear: Record<'betas' | 'alphas_cumprod' | 'posterior_variance' | 'posterior_mean_coef1' | 'posterior_mean_coef2', number[]>;
  cosine: Record<'betas' | 'alphas_cumprod', number[]>;
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'diffusion_schedule.json'), 'utf8')) as Fixture;

const ready = initBackend({ quiet: true });

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function close(a: number, b: number, rel: number, what: string): void {
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-300), `${what}: ${a} vs ${b}`);
}

test('linear schedule matches its closed form and numpy (float64)', () => {
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  assert.equal(s.T, 1000);
  const a = Math.sqrt(0.0015);
  const b = Math.sqrt(0.0155);
  let logProd = 0;
  for (let t = 0; t < s.T; t++) {
    const beta = (a + ((b - a) * t) / 999) ** 2;
    close(s.betas[t], beta, 1e-13, `beta[${t}]`);
    logProd += Math.log1p(-beta);
    close(s.alphasCumprod[t], Math.exp(logProd), 1e-10, `abar[${t}]`);
    // beta~_t = 1 / (1 / (1 - abar_{t-1}) + alpha_t / beta_t) (Ho et al., below eq. 7)
    if (t > 0) close(s.posteriorVariance[t], 1 / (1 / (1 - s.alphasCumprod[t - 1]) + (1 - beta) / beta), 1e-10, `beta~[${t}]`);
    // Noise-free consistency: x_t = sqrt(abar_t) x0 has posterior mean sqrt(abar_{t-1}) x0.
    close(s.posteriorMeanCoef1[t] + s.posteriorMeanCoef2[t] * Math.sqrt(s.alphasCumprod[t]), Math.sqrt(s.alphasCumprodPrev[t]), 1e-12, `coefs[${t}]`);
  }
  assert.equal(s.posteriorVariance[0], 0);
  assert.equal(s.posteriorLogVarianceClipped[0], Math.log(s.posteriorVariance[1]));
  fixture.idx.forEach((t, i) => {
    close(s.betas[t], fixture.linear.betas[i], 1e-12, `numpy beta[${t}]`);
    close(s.alphasCumprod[t], fixture.linear.alphas_cumprod[i], 1e-12, `numpy abar[${t}]`);
    close(s.posteriorVariance[t] || 1e-300, fixture.linear.posterior_variance[i] || 1e-300, 1e-10, `numpy beta~[${t}]`);
    close(s.posteriorMeanCoef1[t], fixture.linear.posterior_mean_coef1[i], 1e-10, `numpy coef1[${t}]`);
    close(s.posteriorMeanCoef2[t] || 1e-300, fixture.linear.posterior_mean_coef2[i] || 1e-300, 1e-10, `numpy coef2[${t}]`);
  });
});

test('cosine schedule: abar_t = f(t + 1) / f(0) where unclipped', () => {
  const s = NoiseSchedule.fromConfig({ ...LVDM_SCHEDULE, kind: 'cosine' });
  const f = (t: number): number => Math.cos(((t / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  for (const t of [0, 1, 100, 500, 900]) close(s.alphasCumprod[t], f(t + 1) / f(0), 1e-9, `abar[${t}]`);
  fixture.idx.forEach((t, i) => {
    close(s.betas[t], fixture.cosine.betas[i], 1e-9, `numpy cos beta[${t}]`);
    close(s.alphasCumprod[t], fixture.cosine.alphas_cumprod[i], 1e-9, `numpy cos abar[${t}]`);
  });
  assert.ok(Math.max(...s.betas) <= 0.999);
});

test('schedule errors name the problem', () => {
  assert.throws(() => makeBetas({ ...LVDM_SCHEDULE, timesteps: 0 }), /timesteps must be a positive integer/);
  assert.throws(() => makeBetas({ ...LVDM_SCHEDULE, linearStart: 0.5, linearEnd: 0.1 }), /linear_start <= linear_end/);
});

test('q_sample: exact mean with zero noise, empirical mean and variance, inverse by predictX0FromEps', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const rng = new Rng(3);
  const before = tf.memory().numTensors;
  const t = new Int32Array([0, 250, 999]);
  const x0 = tf.tidy(() => tf.mul(tf.ones([3, 2, 64, 64, 1]), tf.tensor([0.7, -1.2, 2.0]).reshape([3, 1, 1, 1, 1]))) as tf.Tensor5D;
  const zero = tf.zerosLike(x0);
  const noise = tf.tensor(rng.normalArray(x0.size), x0.shape) as tf.Tensor5D;
  const mean = qSample(s, x0, t, zero);
  const xt = qSample(s, x0, t, noise);
  const m = await mean.data();
  const xv = await xt.data();
  const per = x0.size / 3;
  [0.7, -1.2, 2.0].forEach((c, b) => {
    const ab = s.alphasCumprod[t[b]];
    close(m[b * per], Math.sqrt(ab) * c, 1e-6, `mean[${b}]`);
    let mu = 0;
    for (let i = 0; i < per; i++) mu += xv[b * per + i];
    mu /= per;
    let v = 0;
    for (let i = 0; i < per; i++) v += (xv[b * per + i] - mu) ** 2;
    v /= per - 1;
    assert.ok(Math.abs(mu - Math.sqrt(ab) * c) < 4 * Math.sqrt((1 - ab) / per), `empirical mean ${mu} vs ${Math.sqrt(ab) * c}`);
    assert.ok(Math.abs(v / (1 - ab) - 1) < 0.05, `empirical variance ${v} vs ${1 - ab}`);
  });
  const x0hat = predictX0FromEps(s, xt, t, noise);
  // eps from (x_t, x_0) at t = 250, 999 (at t = 0 the division by sqrt(1 / abar - 1) amplifies rounding).
  const xt12 = xt.slice(1, 2) as tf.Tensor5D;
  const x012 = x0.slice(1, 2) as tf.Tensor5D;
  const epsHat = predictEpsFromX0(s, xt12, t.slice(1), x012);
  assert.ok(maxAbsDiff(x0hat, x0) < 2e-3);
  const noise12 = noise.slice(1, 2);
  assert.ok(maxAbsDiff(epsHat, noise12) < 1e-3);
  // Posterior: with x_t from x_0 and zero noise the mean is sqrt(abar_{t-1}) x_0.
  const post = qPosterior(s, x0, mean, t);
  const pm = await post.mean.data();
  [0.7, -1.2, 2.0].forEach((c, b) => close(pm[b * per], Math.sqrt(s.alphasCumprodPrev[t[b]]) * c, 1e-5, `posterior mean[${b}]`));
  assert.equal(post.variance[0], 0);
  close(post.variance[1], s.posteriorVariance[250], 1e-15, 'posterior variance');
  assert.throws(() => qSample(s, x0, new Int32Array([1, 2]), noise), /batch of x is 3 but 2 timesteps/);
  tf.dispose([x0, zero, noise, mean, xt, x0hat, epsHat, post.mean, xt12, x012, noise12]);
  assert.equal(tf.memory().numTensors, before);
});

test('diffusionLoss: L1 / MSE and the weighted mean over selected frames', async () => {
  await ready;
  const pred = tf.tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2, 1]);
  const target = tf.zeros([1, 2, 2, 2, 1]);
  close(diffusionLoss(pred, target, 'l1').dataSync()[0], 4.5, 1e-7, 'l1');
  close(diffusionLoss(pred, target, 'mse').dataSync()[0], 204 / 8, 1e-7, 'mse');
  // Only frame 1 counts: values 5..8.
  const w = tf.tensor([0, 1], [1, 2, 1, 1, 1]);
  close(diffusionLoss(pred, target, 'l1', w).dataSync()[0], 6.5, 1e-7, 'weighted l1');
  assert.throws(() => diffusionLoss(pred, tf.zeros([1, 2, 2, 2, 2]), 'l1'), /differ in shape/);
  const ts = sampleTimesteps(new Rng(1), 10000, 1000);
  assert.ok(Math.min(...ts) === 0 && Math.max(...ts) === 999);
  assert.deepEqual(sampleTimesteps(new Rng(5), 8, 1000), sampleTimesteps(new Rng(5), 8, 1000));
});

test('sampleTimesteps logit_normal: the empirical CDF of t matches scipy Phi((logit(k / T) - mean) / std)', () => {
  const ref = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'timestep_sampling.json'), 'utf8')) as {
    T: number;
    k: number[];
    cases: { mean: number; std: number; cdf: number[] }[];
  };
  const n = 40000;
  for (const c of ref.cases) {
    const ts = sampleTimesteps(new Rng(3), n, ref.T, { logit_normal: { mean: c.mean, std: c.std } });
    assert.ok(ts.every((t) => Number.isInteger(t) && t >= 0 && t < ref.T), 'every t in {0..T-1}');
    ref.k.forEach((k, i) => {
      const below = ts.reduce((a, t) => a + (t < k ? 1 : 0), 0) / n;
      // Binomial standard error at most 0.0025 for 40,000 draws; 0.01 is four of them.
      assert.ok(Math.abs(below - c.cdf[i]) < 0.01, `mean ${c.mean} std ${c.std}: P(t < ${k}) = ${below}, scipy ${c.cdf[i]}`);
    });
  }
  // Unset draws the uniform timesteps, the same draws as before the option existed.
  const r = new Rng(9);
  const uniform = Int32Array.from({ length: 16 }, () => r.int(0, 999));
  assert.deepEqual(sampleTimesteps(new Rng(9), 16, 1000, undefined), uniform);
  // The schema rejects a non-positive std, naming the key.
  const bad = DiffusionConfig.safeParse({ train: { steps: 1, batch_size: 1 }, timestep_sampling: { logit_normal: { std: 0 } } });
  assert.ok(!bad.success && bad.error.issues.some((i) => i.path.join('.') === 'timestep_sampling.logit_normal.std'));
});

test('vLossWeights: the eps error times the weight is the v-prediction error (v = sqrt(abar) eps - sqrt(1 - abar) x0)', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const rng = new Rng(21);
  const t = Int32Array.from([0, 250, 700, 999]);
  const shape = [4, 2, 3, 3, 2];
  const n = shape.reduce((a, b) => a * b, 1) / 4;
  const x0 = rng.normalArray(4 * n);
  const eps = rng.normalArray(4 * n);
  const epsHat = rng.normalArray(4 * n);
  const wl1 = (await vLossWeights(s, t, 'l1').data()) as Float32Array;
  const wmse = (await vLossWeights(s, t, 'mse').data()) as Float32Array;
  for (let i = 0; i < 4; i++) {
    const ab = s.alphasCumprod[t[i]];
    let l1v = 0;
    let l1e = 0;
    let l2v = 0;
    let l2e = 0;
    for (let k = i * n; k < (i + 1) * n; k++) {
      // x_t from (x0, eps); the x0 implied by epsHat at x_t; v and v^ from their definitions.
      const xt = Math.sqrt(ab) * x0[k] + Math.sqrt(1 - ab) * eps[k];
      const x0Hat = (xt - Math.sqrt(1 - ab) * epsHat[k]) / Math.sqrt(ab);
      const dv = Math.sqrt(ab) * epsHat[k] - Math.sqrt(1 - ab) * x0Hat - (Math.sqrt(ab) * eps[k] - Math.sqrt(1 - ab) * x0[k]);
      l1v += Math.abs(dv);
      l1e += Math.abs(epsHat[k] - eps[k]);
      l2v += dv * dv;
      l2e += (epsHat[k] - eps[k]) ** 2;
    }
    close(wl1[i] * l1e, l1v, 1e-4, `l1 at t = ${t[i]}`);
    close(wmse[i] * l2e, l2v, 1e-4, `mse at t = ${t[i]}`);
  }
  assert.ok(wl1[3] > 30 && Math.abs(wl1[0] - 1) < 0.01, `weights ${Array.from(wl1)}`);
});

/** m per [clip, frame, pixel] of x [B, T, H, W, C]: |x - x's mean over frames|, averaged ('mean') or maximised ('max') over channels, in float64 loops. */
function referenceMotion(x: Float32Array, [B, T, H, W, C]: number[], reduce: 'mean' | 'max'): number[] {
  const at = (b: number, t: number, p: number, c: number): number => x[((b * T + t) * H * W + p) * C + c];
  const out: number[] = [];
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let p = 0; p < H * W; p++) {
        let m = 0;
        for (let c = 0; c < C; c++) {
          let mean = 0;
          for (let u = 0; u < T; u++) mean += at(b, u, p, c) / T;
          const d = Math.abs(at(b, t, p, c) - mean);
          m = reduce === 'mean' ? m + d / C : Math.max(m, d);
        }
        out.push(m);
      }
  return out;
}

test('motionWeights: 1 + lambda * mean over channels of |x0 - its mean over frames|, and the weighted loss it gives', async () => {
  await ready;
  const before = tf.memory().numTensors;
  const [B, T, H, W, C] = [2, 3, 2, 2, 2];
  const x = new Rng(4).normalArray(B * T * H * W * C);
  // Clip 1 is still: every frame equal to its first, so its weights are exactly 1.
  for (let t = 1; t < T; t++) for (let k = 0; k < H * W * C; k++) x[(T + t) * H * W * C + k] = x[T * H * W * C + k];
  const x0 = tf.tensor5d(x, [B, T, H, W, C]);
  const w = motionWeights(x0, 2.5);
  assert.deepEqual(w.shape, [B, T, H, W, 1]);
  const wv = w.dataSync();
  referenceMotion(x, [B, T, H, W, C], 'mean').forEach((m, e) => close(wv[e], 1 + 2.5 * m, 1e-5, `weight of element ${e} ([clip, frame, pixel] order)`));
  assert.ok(wv.slice(T * H * W).every((v) => Math.abs(v - 1) < 1e-6), 'a still clip weighs 1 everywhere');
  const ones = motionWeights(x0, 0);
  assert.ok(ones.dataSync().every((v) => v === 1));
  ones.dispose();
  assert.throws(() => motionWeights(x0, -1), /lambda must be >= 0/);
  // With per-sample weights multiplied in, the loss is sum(w * l) / sum(w) over every element.
  const pred = tf.tensor5d(new Rng(5).normalArray(x0.size), x0.shape);
  const perSample = tf.tensor5d([1, 3], [B, 1, 1, 1, 1]);
  const both = withExtraWeights(perSample, motionWeights(x0, 2.5));
  const lossT = diffusionLoss(pred, x0, 'mse', both);
  const loss = lossT.dataSync()[0];
  const pv = pred.dataSync();
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.floor(i / C); // [b, t, p] index of element i
    const wi = wv[e] * (Math.floor(e / (T * H * W)) === 0 ? 1 : 3);
    num += wi * (pv[i] - x[i]) ** 2;
    den += wi;
  }
  close(loss, num / den, 1e-5, 'weighted mse');
  tf.dispose([x0, w, pred, both, lossT]);
  assert.equal(tf.memory().numTensors, before);
});

test('motionWeights with a threshold: 1 + lambda * max(m - tau, 0), so motion below tau weighs 1', async () => {
  await ready;
  const before = tf.memory().numTensors;
  const [B, T, H, W, C] = [1, 4, 3, 3, 2];
  const x0 = tf.tensor5d(new Rng(6).normalArray(B * T * H * W * C), [B, T, H, W, C]);
  const plainT = motionWeights(x0, 1); // 1 + m
  const plain = plainT.dataSync();
  const m = Array.from(plain, (v) => v - 1);
  const tau = m.slice().sort((a, b) => a - b)[Math.floor(m.length / 2)]; // the median: half the elements fall below
  const w = motionWeights(x0, 4, tau);
  const wv = w.dataSync();
  let below = 0;
  m.forEach((mi, i) => {
    close(wv[i], 1 + 4 * Math.max(mi - tau, 0), 1e-5, `element ${i}`);
    if (mi <= tau) below += 1;
  });
  assert.ok(below >= m.length / 2 && wv.filter((v) => v === 1).length === below, 'every element at or below tau weighs exactly 1');
  assert.throws(() => motionWeights(x0, 4, -0.1), /threshold tau must be >= 0, got -0.1/);
  tf.dispose([x0, w, plainT]);
  assert.equal(tf.memory().numTensors, before);
});

test('v-prediction: v = sqrt(abar) eps - sqrt(1 - abar) x0, and eps (hence x0) is recovered from (x_t, v)', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const rng = new Rng(31);
  const t = Int32Array.from([0, 300, 800, 999]);
  const shape: [number, number, number, number, number] = [4, 2, 3, 3, 2];
  const n = 2 * 3 * 3 * 2;
  const x0 = tf.tensor5d(rng.normalArray(4 * n), shape);
  const eps = tf.tensor5d(rng.normalArray(4 * n), shape);
  const before = tf.memory().numTensors;
  const xt = qSample(s, x0, t, eps);
  const v = vFromEps(s, x0, t, eps);
  const back = epsFromV(s, xt, t, v);
  const target = predictionTarget(s, 'v', x0, t, eps);
  const [x0h, epsh, vh, backh, th] = [x0, eps, v, back, target].map((a) => a.dataSync());
  for (let i = 0; i < 4; i++) {
    const ab = s.alphasCumprod[t[i]];
    for (let k = i * n; k < (i + 1) * n; k++) {
      const ref = Math.sqrt(ab) * epsh[k] - Math.sqrt(1 - ab) * x0h[k];
      assert.ok(Math.abs(vh[k] - ref) < 1e-5 && th[k] === vh[k], `v at t = ${t[i]}: ${vh[k]} vs ${ref}`);
      assert.ok(Math.abs(backh[k] - epsh[k]) < 1e-4, `eps from v at t = ${t[i]}: ${backh[k]} vs ${epsh[k]}`);
    }
  }
  // At the noisiest step v is almost -x0 (an eps network carries x0 only in a correction of order sqrt(abar)).
  const ab = s.alphasCumprod[999];
  assert.ok(Math.sqrt(1 - ab) > 0.99 && Math.sqrt(ab) < 0.1);
  const e = predictionTarget(s, 'eps', x0, t, eps);
  assert.deepEqual(Array.from(e.dataSync()), Array.from(epsh));
  assert.throws(() => predictionTarget(s, 'x0' as never, x0, t, eps), /unknown prediction 'x0'/);
  tf.dispose([xt, v, back, target, e]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x0, eps]);
});

test('DDIM timesteps: trailing covers T-1 (and every step when S = T), leading is LDM uniform', () => {
  assert.deepEqual(ddimTimesteps(1000, 4), [249, 499, 749, 999]);
  assert.deepEqual(ddimTimesteps(10, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const lead = ddimTimesteps(1000, 50, 'leading');
  assert.equal(lead[0], 1);
  assert.equal(lead[49], 981);
  assert.throws(() => ddimTimesteps(1000, 0), /steps must be an integer/);
});

/** eps* for data concentrated at one point c: eps = (x_t - sqrt(abar) c) / sqrt(1 - abar). */
function deltaDenoiser(s: NoiseSchedule, c: number): EpsModel {
  return (x, t) =>
    tf.tidy(() => {
      const tv = t instanceof Int32Array ? t : (t.dataSync() as Int32Array);
      const ab = s.alphasCumprod[tv[0]];
      return tf.div(tf.sub(x, Math.sqrt(ab) * c), Math.sqrt(1 - ab)) as tf.Tensor5D;
    });
}

/** eps* = E[eps | x_t] for x_0 ~ N(mu, sd^2): sqrt(1 - abar) (x_t - sqrt(abar) mu) / (abar sd^2 + 1 - abar). */
function gaussianDenoiser(s: NoiseSchedule, mu: number, sd: number): EpsModel {
  return (x, t) =>
    tf.tidy(() => {
      const tv = t instanceof Int32Array ? t : (t.dataSync() as Int32Array);
      const ab = s.alphasCumprod[tv[0]];
      return tf.mul(tf.sub(x, Math.sqrt(ab) * mu), Math.sqrt(1 - ab) / (ab * sd * sd + 1 - ab)) as tf.Tensor5D;
    });
}

function moments(v: Float32Array | Int32Array | Uint8Array): { mean: number; sd: number } {
  let m = 0;
  for (const x of v) m += x;
  m /= v.length;
  let q = 0;
  for (const x of v) q += (x - m) ** 2;
  return { mean: m, sd: Math.sqrt(q / (v.length - 1)) };
}

test('optimal denoiser for a point mass: DDPM and DDIM (eta 0 and 1) return the point', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const model = deltaDenoiser(s, 0.8);
  const shape = [2, 2, 4, 4, 1];
  for (const spec of [
    { kind: 'ddim' as const, steps: 20, eta: 0, rng: new Rng(1) },
    { kind: 'ddim' as const, steps: 20, eta: 1, rng: new Rng(2) },
    { kind: 'ddpm' as const, rng: new Rng(3) },
  ]) {
    const x = await sample(model, s, shape, spec);
    const v = await x.data();
    x.dispose();
    for (const e of v) assert.ok(Math.abs(e - 0.8) < 1e-3, `${spec.kind} eta ${'eta' in spec ? spec.eta : '-'}: ${e}`);
  }
});

test('DDIM from startT (SDEdit): steps at startT then the grid below it; the exact denoiser of one clip returns it; errors', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const model = deltaDenoiser(s, -0.4);
  const shape: [number, number, number, number, number] = [1, 2, 3, 3, 1];
  const x0 = tf.fill(shape, -0.4) as tf.Tensor5D;
  const noise = tf.tensor5d(new Rng(5).normalArray(18), shape);
  const xt = qSample(s, x0, [130], noise);
  const seen: number[] = [];
  const out = await sample(model, s, shape, { kind: 'ddim', steps: 25, eta: 0, xT: xt, startT: 130 }, (st) => void seen.push(st.t));
  assert.deepEqual(seen, [130, 119, 79, 39], 'startT, then the 25-step trailing grid below it');
  for (const v of await out.data()) assert.ok(Math.abs(v + 0.4) < 1e-4, `landed at ${v}`);
  // startT = T - 1 on the trailing grid is plain DDIM from x_T.
  const a = await sample(gaussianDenoiser(s, 0.3, 0.5), s, shape, { kind: 'ddim', steps: 10, xT: noise, startT: 999 });
  const b = await sample(gaussianDenoiser(s, 0.3, 0.5), s, shape, { kind: 'ddim', steps: 10, xT: noise });
  assert.deepEqual(await a.data(), await b.data());
  await assert.rejects(sample(model, s, shape, { kind: 'ddim', steps: 5, startT: 50 }), /startT needs xT/);
  await assert.rejects(sample(model, s, shape, { kind: 'ddim', steps: 5, xT: xt, startT: 1000 }), /startT must be an integer in \[0, 999\], got 1000/);
  tf.dispose([x0, noise, xt, out, a, b]);
});

test('optimal denoiser for a finite training set: DDIM lands on one of its clips, and different starts on different clips', async () => {
  await ready;
  // The exact E[x0 | x_t] of K equally likely clips: softmax weights over ||x_t - sqrt(abar) X_j||^2 / (2 (1 - abar)).
  // A model that memorised its training clips should sample them back; the sampler must not stand in the way.
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const K = 6;
  const shape = [2, 4, 4, 2];
  const per = shape.reduce((a, b) => a * b, 1);
  const clips = tf.tensor2d(new Rng(11).normalArray(K * per), [K, per]);
  // The same exact denoiser as an eps network and as a v network (v = sqrt(abar) eps - sqrt(1 - abar) x0).
  const exact =
    (prediction: 'eps' | 'v'): EpsModel =>
    (x, t) =>
      tf.tidy(() => {
        const b = x.shape[0];
        const ab = s.alphasCumprod[(t as ArrayLike<number>)[0]];
        const xf = tf.reshape(x, [b, per]);
        const d2 = tf.sum(tf.square(tf.sub(tf.reshape(xf, [b, 1, per]), tf.reshape(tf.mul(clips, Math.sqrt(ab)), [1, K, per]))), 2);
        const x0 = tf.matMul(tf.softmax(tf.div(d2, -2 * (1 - ab)), 1), clips);
        const eps = tf.div(tf.sub(xf, tf.mul(x0, Math.sqrt(ab))), Math.sqrt(1 - ab));
        const out = prediction === 'eps' ? eps : tf.sub(tf.mul(eps, Math.sqrt(ab)), tf.mul(x0, Math.sqrt(1 - ab)));
        return tf.reshape(out, x.shape) as tf.Tensor5D;
      });
  const ref = (await clips.data()) as Float32Array;
  const n = 12;
  for (const prediction of ['eps', 'v'] as const) {
    const model = epsModelFor(exact(prediction), s, prediction);
    const x = await sample(model, s, [n, ...shape], { kind: 'ddim', steps: 25, eta: 0, rng: new Rng(4) });
    const got = (await x.data()) as Float32Array;
    x.dispose();
    const hit = new Set<number>();
    for (let i = 0; i < n; i++) {
      let best = Infinity;
      let at = -1;
      for (let j = 0; j < K; j++) {
        let e = 0;
        for (let k = 0; k < per; k++) e = Math.max(e, Math.abs(got[i * per + k] - ref[j * per + k]));
        if (e < best) [best, at] = [e, j];
      }
      assert.ok(best < 1e-3, `${prediction}: sample ${i}: max |x - nearest clip| = ${best}`);
      hit.add(at);
    }
    assert.ok(hit.size >= 3, `${prediction}: 12 starts landed on only ${hit.size} of ${K} clips`);
  }
  // A v network read as if it predicted eps does not land on the clips.
  const wrong = await sample(exact('v'), s, [n, ...shape], { kind: 'ddim', steps: 25, eta: 0, rng: new Rng(4) });
  const w = (await wrong.data()) as Float32Array;
  wrong.dispose();
  clips.dispose();
  let far = Infinity;
  for (let j = 0; j < K; j++) {
    let e = 0;
    for (let k = 0; k < per; k++) e = Math.max(e, Math.abs(w[k] - ref[j * per + k]));
    far = Math.min(far, e);
  }
  assert.ok(far > 0.1, `the unconverted v network landed within ${far} of a clip`);
});

/**
 * Exact mean and sd of a sampler's output when the data are N(mu, sd^2) and the denoiser is
 * optimal: every step is affine in x plus independent Gaussian noise, so the moments follow a
 * recursion. Independent of the sampler code (it re-derives each step from the formulas).
 */
function predictedMoments(
  s: NoiseSchedule,
  mu: number,
  sd: number,
  spec: { kind: 'ddpm' } | { kind: 'ddim'; steps: number; eta: number },
): { mean: number; sd: number } {
  const epsHat = (x: number, ab: number): number => (Math.sqrt(1 - ab) * (x - Math.sqrt(ab) * mu)) / (ab * sd * sd + 1 - ab);
  let m = 0;
  let v = 1;
  const ts = spec.kind === 'ddpm' ? Array.from({ length: s.T }, (_, i) => i) : ddimTimesteps(s.T, spec.steps);
  for (let i = ts.length - 1; i >= 0; i--) {
    const t = ts[i];
    const ab = s.alphasCumprod[t];
    let step: (x: number) => number;
    let noiseVar: number;
    if (spec.kind === 'ddpm') {
      step = (x) => s.posteriorMeanCoef1[t] * ((x - Math.sqrt(1 - ab) * epsHat(x, ab)) / Math.sqrt(ab)) + s.posteriorMeanCoef2[t] * x;
      noiseVar = t > 0 ? s.posteriorVariance[t] : 0;
    } else {
      const abp = i > 0 ? s.alphasCumprod[ts[i - 1]] : 1;
      const sig = spec.eta * Math.sqrt((1 - abp) / (1 - ab)) * Math.sqrt(1 - ab / abp);
      step = (x) => Math.sqrt(abp) * ((x - Math.sqrt(1 - ab) * epsHat(x, ab)) / Math.sqrt(ab)) + Math.sqrt(1 - abp - sig * sig) * epsHat(x, ab);
      noiseVar = sig * sig;
    }
    const c = step(0);
    const k = step(1) - c;
    m = k * m + c;
    v = k * k * v + noiseVar;
  }
  return { mean: m, sd: Math.sqrt(v) };
}

test('optimal denoiser for a Gaussian: samples have the predicted moments, which approach N(mu, sd^2)', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const mu = 1.5;
  const sd = 0.5;
  const model = gaussianDenoiser(s, mu, sd);
  const shape = [1, 1, 64, 64, 1]; // 4096 independent samples
  const before = tf.memory().numTensors;
  const specs = [
    { kind: 'ddpm' as const, rng: new Rng(11) },
    { kind: 'ddim' as const, steps: 50, eta: 0, rng: new Rng(12) },
    { kind: 'ddim' as const, steps: 50, eta: 1, rng: new Rng(13) },
    { kind: 'ddim' as const, steps: 1000, eta: 0, rng: new Rng(15) },
  ];
  for (const spec of specs) {
    const x = await sample(model, s, shape, spec);
    const m = moments(await x.data());
    x.dispose();
    const p = predictedMoments(s, mu, sd, spec);
    const label = `${spec.kind}${'eta' in spec ? ` ${spec.steps} steps eta ${spec.eta}` : ''}`;
    // Sampling error of the mean ~ sd / 64, of the sd ~ sd / 90.
    assert.ok(Math.abs(m.mean - p.mean) < 0.03, `${label}: mean ${m.mean}, predicted ${p.mean}`);
    assert.ok(Math.abs(m.sd / p.sd - 1) < 0.05, `${label}: sd ${m.sd}, predicted ${p.sd}`);
    // The target distribution: DDPM (1000 steps) and DDIM with every timestep are within 2%;
    // 50 DDIM steps shrink the sd by 8-13% (coarse discretisation), measured and predicted alike.
    const tol = spec.kind === 'ddim' && spec.steps === 50 ? 0.15 : 0.02;
    assert.ok(Math.abs(p.mean - mu) < 0.05 && Math.abs(p.sd / sd - 1) < tol, `${label}: predicted N(${p.mean}, ${p.sd}^2) vs N(${mu}, ${sd}^2)`);
    assert.ok(Math.abs(m.mean - mu) < 0.06 && Math.abs(m.sd / sd - 1) < tol + 0.05, `${label}: sampled N(${m.mean}, ${m.sd}^2)`);
  }
  // A denoiser for the wrong Gaussian gives the wrong distribution (the check can fail).
  const wrong = await sample(gaussianDenoiser(s, mu, 2 * sd), s, shape, { kind: 'ddim', steps: 50, eta: 0, rng: new Rng(14) });
  assert.ok(Math.abs(moments(await wrong.data()).sd / sd - 1) > 0.5);
  wrong.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('DDIM with eta = 0 is deterministic given x_T; eta = 1 depends on the noise', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const model = gaussianDenoiser(s, 0.3, 0.7);
  const shape: [number, number, number, number, number] = [2, 3, 4, 4, 2];
  const xT = tf.tensor(new Rng(7).normalArray(2 * 3 * 4 * 4 * 2), shape) as tf.Tensor5D;
  const a = await sample(model, s, shape, { kind: 'ddim', steps: 25, eta: 0, xT, rng: new Rng(1) });
  const b = await sample(model, s, shape, { kind: 'ddim', steps: 25, eta: 0, xT, rng: new Rng(2) });
  assert.deepEqual(await a.data(), await b.data());
  const c = await sample(model, s, shape, { kind: 'ddim', steps: 25, eta: 1, xT, rng: new Rng(1) });
  const d = await sample(model, s, shape, { kind: 'ddim', steps: 25, eta: 1, xT, rng: new Rng(2) });
  assert.ok(maxAbsDiff(c, d) > 1e-2);
  // Same seed, same result.
  const e = await sample(model, s, shape, { kind: 'ddim', steps: 25, eta: 1, xT, rng: new Rng(1) });
  assert.deepEqual(await c.data(), await e.data());
  assert.equal(xT.isDisposed, false);
  tf.dispose([xT, a, b, c, d, e]);
});

test('guidance: eps = (1 + w) eps_c - w eps_u, batched in one forward; w = 0 is plain conditional', async () => {
  await ready;
  let calls = 0;
  let lastBatch = 0;
  // A model whose output depends on cond.k (a per-example scalar).
  const model: EpsModel = (x, _t, cond) => {
    calls += 1;
    lastBatch = x.shape[0];
    return tf.tidy(() => tf.add(tf.mul(x, 2), tf.reshape(cond!.k, [x.shape[0], 1, 1, 1, 1])) as tf.Tensor5D);
  };
  const x = tf.randomNormal([2, 2, 2, 2, 1]) as tf.Tensor5D;
  const t = new Int32Array([5, 5]);
  const cond = { k: tf.tensor1d([1, 2]) };
  const uncond = { k: tf.tensor1d([0, 0]) };
  const w = 0.7;
  const expected = tf.tidy(() => tf.add(tf.mul(x, 2), tf.mul(tf.reshape(cond.k, [2, 1, 1, 1, 1]), 1 + w)));
  const got = guidedEps(model, x, t, cond, { scale: w, uncond });
  assert.equal(calls, 1);
  assert.equal(lastBatch, 4);
  assert.ok(maxAbsDiff(got, expected) < 1e-5);
  const sep = guidedEps(model, x, t, cond, { scale: w, uncond, batched: false });
  assert.equal(calls, 3);
  assert.ok(maxAbsDiff(sep, expected) < 1e-5);
  const plain = guidedEps(model, x, t, cond, { scale: 0, uncond });
  assert.equal(calls, 4);
  assert.equal(lastBatch, 2);
  assert.deepEqual(await plain.data(), await model(x, t, cond).data());
  assert.throws(() => guidedEps(model, x, t, cond, { scale: 1, uncond: { other: tf.tensor1d([0, 0]) } }), /keys .* differ/);
  tf.dispose([x, cond.k, uncond.k, expected, got, sep, plain]);
});

test('autoguidance: eps = eps_bad + s (eps_good - eps_bad) against a float64 reference; s = 1 is the good model; cond reaches both; no leaks', async () => {
  await ready;
  const seenCond: string[] = [];
  // Two different affine "networks" of x, t and cond.k.
  const good: EpsModel = (x, t, cond) => {
    seenCond.push(`good ${cond?.k ? 'k' : '-'}`);
    return tf.tidy(() => tf.add(tf.mul(x, 0.9), tf.reshape(cond!.k, [x.shape[0], 1, 1, 1, 1])) as tf.Tensor5D);
  };
  const bad: EpsModel = (x, t, cond) => {
    seenCond.push(`bad ${cond?.k ? 'k' : '-'}`);
    const tt = t instanceof Int32Array ? t[0] : 0;
    return tf.tidy(() => tf.add(tf.mul(x, 0.5), tf.mul(tf.reshape(cond!.k, [x.shape[0], 1, 1, 1, 1]), 1 + tt / 100)) as tf.Tensor5D);
  };
  const xs = new Rng(3).normalArray(2 * 3 * 2 * 2 * 1);
  const x = tf.tensor5d(xs, [2, 3, 2, 2, 1]);
  const cond = { k: tf.tensor1d([0.5, -2]) };
  const t = new Int32Array([30, 30]);
  const before = tf.memory().numTensors;
  for (const s of [0, 0.5, 2, 3.5]) {
    const out = autoguidedModel(good, bad, s)(x, t, cond);
    const got = await out.data();
    out.dispose();
    for (let i = 0; i < xs.length; i++) {
      const k = i < xs.length / 2 ? 0.5 : -2;
      const g = 0.9 * xs[i] + k;
      const b = 0.5 * xs[i] + k * 1.3;
      assert.ok(Math.abs(got[i] - (b + s * (g - b))) < 1e-5, `s ${s}, element ${i}: ${got[i]} against ${b + s * (g - b)}`);
    }
  }
  assert.equal(tf.memory().numTensors, before); // both branches' outputs disposed inside
  assert.ok(seenCond.every((c) => c.endsWith(' k')));
  assert.equal(autoguidedModel(good, bad, 1), good); // s = 1: the good model alone, one forward
  for (const s of [-0.5, NaN, Infinity]) assert.throws(() => autoguidedModel(good, bad, s), /autoguidance: scale s must be a finite number >= 0/);
  tf.dispose([x, cond.k]);
});

test('noise-level experts: the low model denoises t < below, the high model the rest, along a whole DDIM run; self_cond only to the model that reads it; straddling batches refused; no leaks', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const shape: [number, number, number, number, number] = [2, 2, 2, 2, 1];
  const calls: string[] = [];
  const first = (t: Int32Array | tf.Tensor1D): number => (t instanceof Int32Array ? t[0] : t.dataSync()[0]);
  const high = withSelfCondition((x, t, cond) => {
    calls.push(`high ${first(t)} ${cond && 'self_cond' in cond ? 'sc' : '-'}`);
    return tf.mul(x, 0.1) as tf.Tensor5D;
  }, true);
  const low: EpsModel = (x, t, cond) => {
    calls.push(`low ${first(t)} ${cond && 'self_cond' in cond ? 'sc' : '-'}`);
    return tf.mul(x, -0.2) as tf.Tensor5D;
  };
  const experts = noiseLevelExperts(high, low, 500);
  assert.equal(experts.selfCondition, true);
  const before = tf.memory().numTensors;
  const out = await sample(experts, s, shape, { kind: 'ddim', steps: 6, eta: 0, rng: new Rng(2) });
  out.dispose();
  assert.equal(tf.memory().numTensors, before, 'leaked tensors');
  const ts = ddimTimesteps(s.T, 6, 'trailing').slice().reverse();
  assert.deepEqual(calls, ts.map((t) => (t < 500 ? `low ${t} -` : `high ${t} sc`)));
  assert.ok(calls.some((c) => c.startsWith('low')) && calls.some((c) => c.startsWith('high')));
  // With noise (eta 1) the experts' samples equal sampling with one model that switches by hand.
  const byHand = withSelfCondition((x, t) => tf.mul(x, first(t) < 500 ? -0.2 : 0.1) as tf.Tensor5D, true);
  const [a, b] = [await sample(experts, s, shape, { kind: 'ddim', steps: 6, eta: 1, rng: new Rng(3) }), await sample(byHand, s, shape, { kind: 'ddim', steps: 6, eta: 1, rng: new Rng(3) })];
  assert.ok(maxAbsDiff(a, b) < 1e-6);
  tf.dispose([a, b]);
  const x = tf.zeros(shape) as tf.Tensor5D;
  assert.throws(() => experts(x, new Int32Array([400, 600])), /noise-level experts: one call with timesteps on both sides of t = 500 \(400 to 600\)/);
  const tt = tf.tensor1d([499, 499], 'int32');
  calls.length = 0;
  tf.dispose(experts(x, tt));
  assert.deepEqual(calls, ['low 499 -']);
  for (const bad of [0, 2.5, NaN]) assert.throws(() => noiseLevelExperts(high, low, bad), /noise-level experts: the switch timestep must be an integer >= 1/);
  tf.dispose([x, tt]);
});

test('epsilon scaling: eps / (lambda + k t) per batch element, along a whole DDIM run as a hand-scaled model; lambda 1 is the model; self_cond passed through; bad lambdas refused; no leaks', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const shape: [number, number, number, number, number] = [2, 2, 2, 2, 1];
  const net = withSelfCondition((x, _t, cond) => tf.add(tf.mul(x, 0.3), cond && 'self_cond' in cond ? tf.mul(cond.self_cond, 0.1) : 0) as tf.Tensor5D, true);
  const x = tf.tensor5d(Array.from({ length: 16 }, (_, i) => i / 7 - 1), shape);
  const t = new Int32Array([100, 900]);
  const before = tf.memory().numTensors;
  const out = epsilonScaledModel(net, 1.5, 0.001)(x, t);
  const [got, xs] = [out.dataSync(), x.dataSync()];
  out.dispose();
  for (let i = 0; i < xs.length; i++) {
    const l = 1.5 + 0.001 * t[i < 8 ? 0 : 1];
    assert.ok(Math.abs(got[i] - (0.3 * xs[i]) / l) < 1e-6, `element ${i}: ${got[i]} against ${(0.3 * xs[i]) / l}`);
  }
  assert.equal(tf.memory().numTensors, before);
  assert.equal(epsilonScaledModel(net, 1), net);
  assert.equal(epsilonScaledModel(net, 1.02).selfCondition, true);
  // Along DDIM with eta 1 the scaled model samples as a network that divides by hand.
  const byHand = withSelfCondition((xx, tt, cond) => tf.tidy(() => tf.div(net(xx, tt, cond), 1.02 + 0.0001 * (tt instanceof Int32Array ? tt[0] : tt.dataSync()[0])) as tf.Tensor5D), true);
  const [a, b] = [
    await sample(epsilonScaledModel(net, 1.02, 0.0001), s, shape, { kind: 'ddim', steps: 6, eta: 1, rng: new Rng(3) }),
    await sample(byHand, s, shape, { kind: 'ddim', steps: 6, eta: 1, rng: new Rng(3) }),
  ];
  const plain = await sample(net, s, shape, { kind: 'ddim', steps: 6, eta: 1, rng: new Rng(3) });
  assert.ok(maxAbsDiff(a, b) < 1e-5, `scaled vs by hand: ${maxAbsDiff(a, b)}`);
  assert.ok(maxAbsDiff(a, plain) > 1e-3, 'scaling changed nothing');
  tf.dispose([a, b, plain]);
  assert.equal(tf.memory().numTensors, before, 'leaked tensors');
  for (const bad of [0, -1, NaN, Infinity]) assert.throws(() => epsilonScaledModel(net, bad), /epsilon scaling: lambda must be a finite number > 0/);
  assert.throws(() => epsilonScaledModel(net, 1, NaN), /epsilon scaling: the slope k must be a finite number/);
  assert.throws(() => epsilonScaledModel(net, 1, -0.02)(x, t), /epsilon scaling: lambda_t = 1 \+ -0.02 t is -1 at t = 100; it must stay > 0/);
  x.dispose();
});

test('self-conditioning: each step reads the previous step\'s x_0 estimate (zeros first), both guidance branches the same; wrappers keep the flag', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const shape: [number, number, number, number, number] = [2, 2, 2, 2, 1];
  const seen: Float32Array[] = [];
  // An affine "network" that reads its estimate: eps = 0.3 x + 0.2 self_cond (+ cond.k).
  const net = withSelfCondition((x, _t, cond) => {
    const sc = cond!.self_cond as tf.Tensor5D;
    seen.push(sc.dataSync() as Float32Array);
    return tf.tidy(() => {
      let e = tf.add(tf.mul(x, 0.3), tf.mul(sc, 0.2)) as tf.Tensor5D;
      if (cond!.k) e = tf.add(e, tf.reshape(cond!.k, [x.shape[0], 1, 1, 1, 1])) as tf.Tensor5D;
      return e;
    });
  }, true);
  const yielded: Float32Array[] = [];
  const before = tf.memory().numTensors;
  const out = await sample(net, s, shape, { kind: 'ddim', steps: 6, eta: 1, rng: new Rng(8) }, (st) => {
    yielded.push(st.x0.dataSync() as Float32Array);
  });
  out.dispose();
  assert.equal(tf.memory().numTensors, before, 'leaked tensors');
  assert.equal(seen.length, 6);
  assert.ok(seen[0].every((v) => v === 0), 'the first step reads zeros');
  for (let k = 1; k < 6; k++) assert.deepEqual(seen[k], yielded[k - 1], `step ${k} reads step ${k - 1}'s estimate`);
  assert.ok(yielded[2].some((v) => v !== 0));
  // Guidance (batched): both halves of the [x; x] forward read the same estimate.
  seen.length = 0;
  const cond = { k: tf.tensor1d([1, -1]) };
  const uncond = { k: tf.tensor1d([0, 0]) };
  const g = await sample(net, s, shape, { kind: 'ddim', steps: 3, rng: new Rng(9), cond, guidance: { scale: 0.5, uncond } });
  assert.equal(seen.length, 3);
  const half = seen[2].length / 2;
  assert.ok(seen[2].some((v) => v !== 0));
  assert.deepEqual(seen[2].slice(0, half), seen[2].slice(half));
  // Without the flag no self_cond is passed (a plain network would refuse the key).
  const keys: string[][] = [];
  const plain: EpsModel = (x, _t, c) => {
    keys.push(Object.keys(c ?? {}));
    return tf.zerosLike(x);
  };
  const p = await sample(plain, s, shape, { kind: 'ddim', steps: 2, rng: new Rng(1), cond });
  assert.deepEqual(keys, [['k'], ['k']]);
  // Wrappers keep the flag; autoguidance gives the estimate only to the model that reads it.
  assert.equal(epsModelFor(net, s, 'v').selfCondition, true);
  assert.equal(microBatched(net, 1).selfCondition, true);
  assert.equal(microBatched(plain, 1).selfCondition, undefined);
  keys.length = 0;
  const ag = autoguidedModel(net, plain, 2);
  assert.equal(ag.selfCondition, true);
  const x = tf.zeros(shape) as tf.Tensor5D;
  tf.dispose(ag(x, new Int32Array([5, 5]), { self_cond: tf.zerosLike(x) }));
  assert.deepEqual(keys, [[]]);
  // x0FromPrediction inverts the forward process for eps and for v.
  const x0 = tf.tensor(new Rng(4).normalArray(16), shape) as tf.Tensor5D;
  const eps = tf.tensor(new Rng(5).normalArray(16), shape) as tf.Tensor5D;
  const t = Int32Array.from([100, 800]);
  const xt = qSample(s, x0, t, eps);
  assert.ok(maxAbsDiff(x0FromPrediction(s, 'eps', xt, t, eps), x0) < 1e-4);
  assert.ok(maxAbsDiff(x0FromPrediction(s, 'v', xt, t, vFromEps(s, x0, t, eps)), x0) < 1e-4);
  tf.dispose([g, p, cond.k, uncond.k, x, x0, eps, xt]);
});

test('known values stay in place at every step and in the result', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const shape: [number, number, number, number, number] = [1, 4, 2, 2, 1];
  const values = tf.fill(shape, 3) as tf.Tensor5D;
  const mask = tf.tensor([1, 0, 0, 1], [1, 4, 1, 1, 1]);
  const seen: number[] = [];
  // The model records what it sees at frame 0 (a known frame).
  const model: EpsModel = (x) => {
    seen.push(x.slice([0, 0, 0, 0, 0], [1, 1, 1, 1, 1]).dataSync()[0]);
    return tf.zerosLike(x);
  };
  const out = await sample(model, s, shape, { kind: 'ddim', steps: 10, eta: 1, rng: new Rng(4), known: { values, mask } }, (step) => {
    const v = step.x.dataSync();
    assert.equal(v[0], 3);
    assert.equal(v[3 * 4], 3);
  });
  assert.equal(seen.length, 10);
  assert.ok(seen.every((v) => v === 3));
  const v = await out.data();
  assert.equal(v[0], 3);
  assert.notEqual(v[4], 3);
  tf.dispose([values, mask, out]);
});

test('samplers leak no tensors, also when the step loop is left early', async () => {
  await ready;
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const model = gaussianDenoiser(s, 0, 1);
  const before = tf.memory().numTensors;
  const out = await sample(model, s, [1, 2, 4, 4, 2], { kind: 'ddim', steps: 5, eta: 0.5, rng: new Rng(1) });
  assert.equal(tf.memory().numTensors, before + 1);
  out.dispose();
  let n = 0;
  for await (const step of ddimSteps(model, s, [1, 2, 4, 4, 2], { steps: 10, rng: new Rng(2) })) {
    n += 1;
    assert.equal(step.total, 10);
    if (step.index === 3) break;
  }
  assert.equal(n, 4);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(sample(model, s, [1, 2, 4, 4, 2], { kind: 'ddim', steps: 5 }), /neither options.rng nor options.noise/);
  assert.equal(tf.memory().numTensors, before);
});

test("motionWeights over pixels ('max'): 1 + lambda * max(m - tau, 0), m the largest colour change from the mean frame", async () => {
  await ready;
  const before = tf.memory().numTensors;
  const [B, T, H, W, C] = [2, 4, 3, 2, 3];
  const x = new Rng(8).normalArray(B * T * H * W * C);
  const x0 = tf.tensor5d(x, [B, T, H, W, C]);
  const [lambda, tau] = [3, 0.4];
  const w = motionWeights(x0, lambda, tau, 'max');
  assert.deepEqual(w.shape, [B, T, H, W, 1]);
  const wv = w.dataSync();
  let above = 0;
  referenceMotion(x, [B, T, H, W, C], 'max').forEach((m, e) => {
    if (m > tau) above++;
    close(wv[e], 1 + lambda * Math.max(m - tau, 0), 1e-5, `weight of element ${e} ([clip, frame, pixel] order)`);
  });
  assert.ok(above > 0 && above < wv.length, `the threshold should split the elements, ${above} of ${wv.length} above`);
  // 'max' differs from the latent models' 'mean' on the same data.
  const meanW = motionWeights(x0, lambda, tau);
  assert.ok(meanW.dataSync().some((v, i) => Math.abs(v - wv[i]) > 1e-3), "'mean' and 'max' gave the same weights");
  assert.throws(() => motionWeights(x0, 1, 0, 'min' as 'max'), /channels must be 'mean' or 'max', got 'min'/);
  tf.dispose([x0, w, meanW]);
  assert.equal(tf.memory().numTensors, before);
});
