/**
 * The first n clips of a run's real.npz encoded into a short model's normalised latents (the
 * autoencoder's posterior mean, then z_n = scale * (z + shift) with the model's normalisation, input
 * scale included): what the probes of experiments/corner-probe.ts and experiments/exposure-bias.ts
 * noise with q(x_t | x_0).
 */
import * as tf from '@tensorflow/tfjs';
import { clipsToTensor, type LoadedAutoencoder } from '../lib/autoencoder/io';
import { readNpz } from '../lib/io/npy';
import type { LoadedLvdm } from '../lib/lvdm/weights';

export interface RealLatents {
  /** Normalised latents [n, t, h, w, c] (the caller disposes them). */
  zn: tf.Tensor5D;
  n: number;
  frames: number;
  height: number;
  width: number;
}

export function encodeRealClips(realFile: string, n: number, model: LoadedLvdm, ae: LoadedAutoencoder): RealLatents {
  const videos = readNpz(realFile).get('videos');
  if (!videos || videos.shape.length !== 5 || !(videos.data instanceof Uint8Array)) throw new Error(`${realFile}: expected uint8 'videos' [N, T, H, W, 3]`);
  const [count, frames, height, width] = videos.shape;
  const m = Math.min(n, count);
  const per = frames * height * width * 3;
  const data = videos.data;
  const clips = Array.from({ length: m }, (_, i) => data.subarray(i * per, (i + 1) * per));
  const { shift, scale } = model.state.latent;
  const x = clipsToTensor(clips, frames, height, width);
  const zn = tf.tidy(() => tf.mul(tf.add(ae.ae.encode(x).mean, shift), scale) as tf.Tensor5D);
  x.dispose();
  return { zn, n: m, frames, height, width };
}
