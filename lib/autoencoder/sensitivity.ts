/**
 * Latent sensitivity of a decoder (issue 12, experiments/RESULTS.md): the diffusion model's samples
 * are never exact latents, so what matters for generation is how much decoded quality a given
 * error in the normalised latent space costs, not only the reconstruction PSNR at zero error.
 * Clips are encoded (posterior mean), normalised as the latent models see them
 * (z_n = scale * (z + shift)), perturbed by sigma * N(0, I), decoded, and compared with the clips.
 */
import * as tf from '@tensorflow/tfjs';
import { clipsToTensor, type LoadedAutoencoder } from './io';
import { Rng } from '../nn/rng';
import { psnr } from '../../metrics/quality';

/** Decoded PSNR (dB) of uint8 `clips` [T, H, W, 3] for each latent noise level in `sigmas`. */
export async function latentNoisePsnr(loaded: LoadedAutoencoder, clips: Uint8Array[], shape: [number, number, number], sigmas: number[], seed: number): Promise<number[]> {
  const [t, h, w] = shape;
  const real = new Uint8Array(clips.length * t * h * w * 3);
  clips.forEach((c, i) => real.set(c, i * c.length));
  const x = clipsToTensor(clips, t, h, w);
  const post = loaded.ae.encode(x);
  const zn = loaded.normalize(post.mean);
  tf.dispose([x, post.mean, post.logvar]);
  // One noise draw for every sigma, so the levels differ only in scale.
  const noise = tf.tensor(new Rng(seed).normalArray(zn.size), zn.shape);
  const out: number[] = [];
  try {
    for (const sigma of sigmas) {
      const y = tf.tidy(() => {
        const z = loaded.denormalize(tf.add(zn, tf.mul(noise, sigma)) as tf.Tensor5D);
        return tf.clipByValue(tf.round(tf.mul(tf.add(loaded.ae.decode(z), 1), 127.5)), 0, 255);
      });
      const decoded = Uint8Array.from(await y.data());
      y.dispose();
      out.push(psnr(real, decoded));
    }
  } finally {
    tf.dispose([zn, noise]);
  }
  return out;
}
