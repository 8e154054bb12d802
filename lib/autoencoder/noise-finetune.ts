/**
 * Decoder fine-tuning on noised latents (issue 12, experiments/RESULTS.md): the encoder is frozen,
 * so the latents (and every latent model trained on them) stay valid, and the decoder learns to
 * reconstruct clips from z = denormalize(normalize(mean) + sigma * eps), sigma ~ U(0, sigma_max) per
 * clip, eps ~ N(0, I): the errors a diffusion model's samples carry in the normalised latent space
 * it works in. Loss: L1 plus the gradient difference loss (Mathieu et al. 2016) that the shapes
 * autoencoders train with. Noise augmentation of the decoder's input is the remedy for a decoder
 * that reconstructs well but does not tolerate latent error (lib/autoencoder/sensitivity.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { ClipDataset } from '../../data/types';
import { ClipLoader } from '../../data/loader';
import { Adam, clipGradNorm } from '../train/optim';
import { Rng } from '../nn/rng';
import { gradientDifference } from './gdl';
import type { LoadedAutoencoder } from './io';
import { gradsByName } from './train';

export interface NoiseFinetuneOptions {
  steps: number;
  /** Per-clip noise scale sigma ~ U(0, sigmaMax), in units of the normalised latents. */
  sigmaMax: number;
  lr: number;
  batchSize: number;
  seed: number;
  gradClip?: number;
  log?: (step: number, loss: number) => void;
}

/** Parameters the fine-tuning trains: the decoder and the conv in front of it. */
export const isDecoderParam = (name: string): boolean => name.startsWith('decoder.') || name.startsWith('post_quant_conv.');

/** Fine-tunes `loaded`'s decoder in place; returns the loss of each step. */
export async function finetuneDecoderOnNoisedLatents(loaded: LoadedAutoencoder, dataset: ClipDataset, o: NoiseFinetuneOptions): Promise<number[]> {
  if (!(o.sigmaMax >= 0)) throw new Error(`decoder fine-tuning: sigma_max must be >= 0, got ${o.sigmaMax}`);
  const params = loaded.store.entries().filter(([n]) => isDecoderParam(n));
  if (params.length === 0) throw new Error('decoder fine-tuning: the autoencoder has no decoder parameters');
  const opt = new Adam(params, { lr: o.lr, betas: [0.5, 0.9], eps: 1e-8, weightDecay: 0, kind: 'adam' });
  const loader = new ClipLoader(dataset, { batchSize: o.batchSize, seed: o.seed });
  const rng = new Rng(o.seed).fork('latent-noise');
  const losses: number[] = [];
  try {
    for (let step = 1; step <= o.steps; step++) {
      const batch = await loader.next();
      const b = batch.batchSize;
      const x = tf.tensor5d(batch.video, [b, batch.frames, batch.height, batch.width, 3]);
      const sigma = Array.from({ length: b }, () => rng.uniform() * o.sigmaMax);
      const z = tf.tidy(() => {
        const zn = loaded.normalize(loaded.ae.encode(x).mean);
        const noise = tf.mul(tf.tensor(rng.normalArray(zn.size), zn.shape), tf.tensor(sigma, [b, 1, 1, 1, 1]));
        return loaded.denormalize(tf.add(zn, noise) as tf.Tensor5D);
      });
      const { value, grads } = tf.variableGrads(() => {
        const xr = loaded.ae.decode(z);
        return tf.mean(tf.add(tf.abs(tf.sub(x, xr)), gradientDifference(x, xr))) as tf.Scalar;
      }, params.map(([, v]) => v));
      const named = gradsByName(params, grads);
      clipGradNorm(named, o.gradClip ?? 1.0);
      opt.apply(named, o.lr);
      tf.dispose([...named.values(), x, z]);
      const loss = value.dataSync()[0];
      value.dispose();
      losses.push(loss);
      o.log?.(step, loss);
    }
  } finally {
    loader.close();
    opt.dispose();
  }
  return losses;
}
