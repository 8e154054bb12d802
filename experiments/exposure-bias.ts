/**
 * Exposure bias of a short-video model (issue 12; Ning et al. 2024, "Elucidating the Exposure Bias
 * in Diffusion Models", section 4). In training the network reads x_t = q(x_0, t) made from real
 * latents; in sampling it reads x_t built from its own earlier estimates. This measures the gap
 * where it shows, in the norm of the predicted noise:
 *   - "sampling": the mean of eps_theta(x_t, t)^2 along a DDIM run from pure noise (--steps, --eta);
 *   - "training": the same at the same t on x_t = q(x_0, t, eps) of real clips (encoded by the
 *     autoencoder), with self-conditioned models reading their own x_0 estimate from a first forward
 *     (the training's self-conditioned branch), and the error mean((eps_theta - eps)^2) there.
 * lambda_t = sqrt(sampling / training) is the factor epsilon scaling divides by (lvdm sample
 * --eps-scale); lambda_t > 1 means the sampler's network overshoots the noise it removes.
 *
 *   node --import tsx experiments/exposure-bias.ts MODEL.safetensors AE.safetensors REAL.npz \
 *     [--n 16] [--steps 100] [--eta 1] [--every 10] [--seed 1]
 * REAL.npz is a run's store/real/<key>/real.npz (uint8 videos [N, T, H, W, 3]); AE the autoencoder
 * whose encoder made the model's latents. Prints a markdown table, one row per --every-th DDIM step.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadLvdm } from '../lib/lvdm/weights';
import { unconditionalCond } from '../lib/lvdm/generate';
import { loadAutoencoder } from '../lib/autoencoder/io';
import { encodeRealClips } from './real-latents';
import { Rng } from '../lib/nn/rng';
import { predictX0FromEps, qSample } from '../lib/diffusion/process';
import { ddimTimesteps, sample } from '../lib/diffusion/samplers';
import { withSelfCondition, type Cond } from '../lib/diffusion/types';

/** mean(x^2) as a number. */
function meanSquare(x: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.square(x)).dataSync()[0]);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      n: { type: 'string', default: '16' },
      steps: { type: 'string', default: '100' },
      eta: { type: 'string', default: '1' },
      every: { type: 'string', default: '10' },
      seed: { type: 'string', default: '1' },
    },
  });
  if (positionals.length !== 3) throw new Error('usage: exposure-bias.ts MODEL.safetensors AE.safetensors REAL.npz [--n 16] [--steps 100] [--eta 1] [--every 10] [--seed 1]');
  const [modelFile, aeFile, realFile] = positionals;
  const [steps, eta, every, seed] = [Number(values.steps), Number(values.eta), Number(values.every), Number(values.seed)];
  if (!(Number.isInteger(every) && every >= 1)) throw new Error(`--every: expected a positive integer, got ${values.every}`);
  await initBackend({ quiet: true });
  const model = loadLvdm(modelFile);
  const ae = loadAutoencoder(aeFile);
  const { zn, n } = encodeRealClips(realFile, Number(values.n), model, ae);
  const cond: Cond | undefined = unconditionalCond(model, n, zn.shape[1]);

  // Sampling: record mean(eps^2) per timestep along one DDIM run.
  const seen = new Map<number, number>();
  const recording = withSelfCondition((xt, t, c) => {
    const e = model.eps(xt, t, c);
    seen.set(t instanceof Int32Array ? t[0] : t.dataSync()[0], meanSquare(e));
    return e;
  }, model.eps.selfCondition);
  const z = await sample(recording, model.schedule, zn.shape, { kind: 'ddim', steps, eta, rng: new Rng(seed), cond });
  z.dispose();

  // Training: the same t on q(x_0, t, eps) of the real clips.
  const grid = ddimTimesteps(model.schedule.T, steps).slice().reverse();
  console.log('| t | mean eps_theta^2, sampling | mean eps_theta^2, training (real x_0) | lambda_t = sqrt(ratio) | training error mean (eps_theta - eps)^2 |\n|---|---|---|---|---|');
  for (let k = 0; k < grid.length; k += every) {
    const t = grid[k];
    const ts = new Int32Array(n).fill(t);
    const noise = tf.tensor(new Rng(seed).fork(`train-${t}`).normalArray(zn.size), zn.shape) as tf.Tensor5D;
    const xt = qSample(model.schedule, zn, ts, noise);
    // Self-conditioned models read their own first estimate (the training's self-conditioned branch).
    const x0 = model.eps.selfCondition ? tf.tidy(() => predictX0FromEps(model.schedule, xt, ts, model.eps(xt, ts, { ...cond, self_cond: tf.zerosLike(xt) }))) : null;
    const e = model.eps(xt, ts, x0 ? { ...cond, self_cond: x0 } : cond);
    const train = meanSquare(e);
    const err = tf.tidy(() => meanSquare(tf.sub(e, noise)));
    const samp = seen.get(t) ?? Number.NaN;
    console.log(`| ${t} | ${samp.toFixed(4)} | ${train.toFixed(4)} | ${Math.sqrt(samp / train).toFixed(4)} | ${err.toFixed(4)} |`);
    tf.dispose([noise, xt, e, ...(x0 ? [x0] : [])]);
  }
  tf.dispose([zn, ...Object.values(cond ?? {})]);
  model.dispose();
  ae.dispose();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
