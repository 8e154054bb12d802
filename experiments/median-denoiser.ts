/**
 * Does the L1 loss make a diffusion model draw discs? (issue 12, experiments/RESULTS.md, "The loss on
 * robust latents"). A toy with exact denoisers, no network: K binary 8x8 images
 * (a disc, a square and a triangle of similar area, each at a few positions), equally likely.
 * Given x_t, the posterior over the K images has weights softmax(-||x_t - sqrt(abar) X_j||^2 /
 * (2 (1 - abar))). The denoiser that minimises the MSE loss returns the posterior mean of x0
 * (L_simple, Ho et al. 2020); the one that minimises the L1 loss returns the per-pixel posterior
 * median (eps and v are affine in x0 given x_t, so the same holds for eps- and v-prediction). Both
 * run through the project's DDIM sampler from noise; each sample is read as the kind of its
 * nearest image.
 *
 *   node --import tsx experiments/median-denoiser.ts [--n 300] [--steps 25] [--seed 3]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { LVDM_SCHEDULE, NoiseSchedule } from '../lib/diffusion/schedule';
import { sample } from '../lib/diffusion/samplers';
import { predictEpsFromX0 } from '../lib/diffusion/process';
import type { EpsModel } from '../lib/diffusion/types';

const SIZE = 8;
const KINDS = ['disc', 'square', 'triangle'] as const;

/** +1 inside the shape centred at (cx, cy), -1 outside. */
function shape(kind: (typeof KINDS)[number], cx: number, cy: number): Float32Array {
  const img = new Float32Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const inside =
        kind === 'disc' ? dx * dx + dy * dy <= 2.6 * 2.6 : kind === 'square' ? Math.abs(dx) <= 2.3 && Math.abs(dy) <= 2.3 : dy <= 2.3 && dy >= -2.9 && Math.abs(dx) <= (dy + 2.9) * 0.62;
      img[y * SIZE + x] = inside ? 1 : -1;
    }
  return img;
}

/** The exact posterior weights of the K images given x_t (one row per sample). */
function posterior(xt: Float32Array, n: number, images: Float32Array[], abar: number): Float64Array {
  const K = images.length;
  const per = SIZE * SIZE;
  const w = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < K; j++) {
      let d2 = 0;
      for (let k = 0; k < per; k++) d2 += (xt[i * per + k] - Math.sqrt(abar) * images[j][k]) ** 2;
      w[i * K + j] = -d2 / (2 * (1 - abar));
      max = Math.max(max, w[i * K + j]);
    }
    let sum = 0;
    for (let j = 0; j < K; j++) sum += w[i * K + j] = Math.exp(w[i * K + j] - max);
    for (let j = 0; j < K; j++) w[i * K + j] /= sum;
  }
  return w;
}

/** x0 estimate per pixel: posterior mean (MSE-optimal) or weighted posterior median (L1-optimal). */
function estimate(kind: 'mean' | 'median', w: Float64Array, n: number, images: Float32Array[]): Float32Array {
  const K = images.length;
  const per = SIZE * SIZE;
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < per; k++) {
      if (kind === 'mean') {
        let m = 0;
        for (let j = 0; j < K; j++) m += w[i * K + j] * images[j][k];
        out[i * per + k] = m;
      } else {
        // binary images: the median is +1 when more than half the posterior mass is inside
        let inside = 0;
        for (let j = 0; j < K; j++) if (images[j][k] > 0) inside += w[i * K + j];
        out[i * per + k] = inside > 0.5 ? 1 : inside < 0.5 ? -1 : 0;
      }
    }
  return out;
}

function exactEps(kind: 'mean' | 'median', s: NoiseSchedule, images: Float32Array[]): EpsModel {
  return (x, t) => {
    const n = x.shape[0];
    const steps = t as ArrayLike<number>;
    const x0 = estimate(kind, posterior(x.dataSync() as Float32Array, n, images, s.alphasCumprod[steps[0]]), n, images);
    return tf.tidy(() => predictEpsFromX0(s, x, steps, tf.tensor5d(x0, x.shape)));
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '300' }, steps: { type: 'string', default: '25' }, seed: { type: 'string', default: '3' } } });
  await initBackend({ quiet: true });
  const n = Number(values.n);
  const s = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  const centres = [
    [3.5, 3.5],
    [4.5, 4.5],
    [3.5, 4.5],
    [4.5, 3.5],
  ];
  const images: Float32Array[] = [];
  const kindOf: number[] = [];
  KINDS.forEach((k, ki) =>
    centres.forEach(([cx, cy]) => {
      images.push(shape(k, cx, cy));
      kindOf.push(ki);
    }),
  );
  const area = KINDS.map((k) => shape(k, 4, 4).filter((v) => v > 0).length);
  console.log(`${images.length} images (${KINDS.map((k, i) => `${k} ${area[i]} px`).join(', ')}), ${n} samples, DDIM ${values.steps} steps, linear LVDM schedule`);
  console.log('| denoiser (loss it minimises) | sampler | disc / square / triangle | samples on an image (max error < 0.1) |\n|---|---|---|---|');
  for (const kind of ['mean', 'median'] as const)
    for (const eta of [0, 1]) {
      const x = await sample(exactEps(kind, s, images), s, [n, 1, SIZE, SIZE, 1], { kind: 'ddim', steps: Number(values.steps), eta, rng: new Rng(Number(values.seed)) });
      const got = (await x.data()) as Float32Array;
      x.dispose();
      const counts = [0, 0, 0];
      let landed = 0;
      for (let i = 0; i < n; i++) {
        let best = Infinity;
        let at = 0;
        images.forEach((img, j) => {
          let e = 0;
          for (let k = 0; k < img.length; k++) e = Math.max(e, Math.abs(got[i * img.length + k] - img[k]));
          if (e < best) [best, at] = [e, j];
        });
        counts[kindOf[at]]++;
        if (best < 0.1) landed++;
      }
      const frac = counts.map((c) => (c / n).toFixed(2)).join(' / ');
      console.log(`| ${kind === 'mean' ? 'posterior mean (MSE)' : 'per-pixel posterior median (L1)'} | DDIM eta ${eta} | ${frac} | ${(landed / n).toFixed(2)} |`);
    }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
