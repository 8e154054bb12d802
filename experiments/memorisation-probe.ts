/**
 * Memorisation probe of a short-video model (issue 12: why do the shapes models draw blobs?).
 * Train the short model on a handful of clips (`--set stages.lvdm.data.num_videos=16`), then ask
 * two questions of it with its own latent cache (its first --clips clips, default 64):
 *   1. Do samples from pure noise land on a training clip? For each sample, the relative squared
 *      distance to the nearest training latent, ||x - x0_j||^2 / ||x0_j||^2 (0 = that clip; 1 = no
 *      better than predicting zeros), and the per-latent-frame std (training clips: uniform).
 *      With the exact denoiser of the set, DDIM lands on a clip to float precision
 *      (test/diffusion.test.ts), so a miss is the model's, not the sampler's.
 *   2. How well does one step recover x0 from x_t at each timestep? The relative squared error of
 *      x0^ = (x_t - sqrt(1 - abar) eps^) / sqrt(abar), and the mean |eps^ - eps|.
 *
 *   node --import tsx experiments/memorisation-probe.ts MODEL.safetensors LATENT_CACHE.safetensors [--n 16] [--clips 64] [--steps 25] [--seed 1]
 * The cache is the run's cache/latents/latents-*.safetensors; the input scale is the ratio of the
 * model's stored latent scale to the cache's. Prints one line per sample and per timestep.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadLvdm } from '../lib/lvdm/weights';
import { sampleLatents } from '../lib/lvdm/generate';
import { LatentCache } from '../lib/lvdm/latents';
import { Rng } from '../lib/nn/rng';
import { qSample } from '../lib/diffusion/process';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { n: { type: 'string', default: '16' }, clips: { type: 'string', default: '64' }, steps: { type: 'string', default: '25' }, seed: { type: 'string', default: '1' } },
  });
  if (positionals.length !== 2) throw new Error('usage: memorisation-probe.ts MODEL.safetensors LATENT_CACHE.safetensors [--n 16] [--clips 64] [--steps 25] [--seed 1]');
  await initBackend();
  const model = loadLvdm(positionals[0]);
  const raw = LatentCache.load(positionals[1]);
  if (!raw) throw new Error(`${positionals[1]}: no latent cache there`);
  const cache = raw.withInputScale(model.state.latent.scale / raw.norm.scale);
  const x0 = cache.sample([...Array(Math.min(cache.count, Number(values.clips))).keys()], new Rng(5)); // the first --clips training clips
  const [count, frames, h, w, c] = x0.shape;
  const per = frames * h * w * c;
  const pf = h * w * c;
  const train = x0.dataSync();
  const frameStd = (d: ArrayLike<number>, i: number): string =>
    Array.from({ length: frames }, (_, f) => {
      let s = 0;
      let s2 = 0;
      for (let k = 0; k < pf; k++) {
        const v = d[i * per + f * pf + k];
        s += v;
        s2 += v * v;
      }
      return Math.sqrt(s2 / pf - (s / pf) ** 2).toFixed(2);
    }).join(' ');
  console.log(`training clips: ${count}; input scale ${(model.state.latent.scale / raw.norm.scale).toFixed(3)}; clip 0 per-frame std ${frameStd(train, 0)}`);
  const n = Number(values.n);
  const gen = await sampleLatents(model, n, frames, 0, { n, steps: Number(values.steps), eta: 0, seed: Number(values.seed), sampler: 'ddim', batchSize: 8, spacing: 'trailing', finalAlpha: 'one' });
  const g = gen.dataSync();
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let at = -1;
    for (let j = 0; j < count; j++) {
      let e = 0;
      let r = 0;
      for (let k = 0; k < per; k++) {
        e += (g[i * per + k] - train[j * per + k]) ** 2;
        r += train[j * per + k] ** 2;
      }
      if (e / r < best) [best, at] = [e / r, j];
    }
    sum += best;
    console.log(`sample ${i}: nearest training clip ${at}, relative squared distance ${best.toFixed(3)}; per-frame std ${frameStd(g, i)}`);
  }
  console.log(`mean relative squared distance to the nearest training clip: ${(sum / n).toFixed(3)}`);
  gen.dispose();
  const eps = model.eps;
  const rng = new Rng(9);
  for (const t of [50, 200, 400, 600, 800, 950, 999]) {
    const ab = model.schedule.alphasCumprod[t];
    const tt = new Int32Array(count).fill(t);
    const [relX0, epsL1] = tf.tidy(() => {
      const noise = tf.tensor(rng.normalArray(x0.size), x0.shape) as tf.Tensor5D;
      const xt = qSample(model.schedule, x0, tt, noise);
      const e = eps(xt, tt);
      const x0h = tf.div(tf.sub(xt, tf.mul(e, Math.sqrt(1 - ab))), Math.sqrt(ab));
      return [tf.sum(tf.square(tf.sub(x0h, x0))).dataSync()[0] / tf.sum(tf.square(x0)).dataSync()[0], tf.mean(tf.abs(tf.sub(e, noise))).dataSync()[0]];
    });
    console.log(`t ${t}: abar ${ab.toFixed(4)}, one-step x0 relative squared error ${relX0.toFixed(3)}, mean |eps^ - eps| ${epsL1.toFixed(3)}`);
  }
  x0.dispose();
  model.dispose();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
