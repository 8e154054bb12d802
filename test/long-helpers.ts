/** Shared by the long-video tests: a tiny untrained autoencoder on disk. */
import * as path from 'node:path';
import { Rng } from '../lib/nn/rng';
import { ParamStore } from '../lib/nn/params';
import { ExperimentConfig } from '../lib/config/schema';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { saveAutoencoderWeights } from '../lib/autoencoder/io';

/**
 * Writes an untrained 8x8 autoencoder (ft 2, fs 2, 2 latent channels) with the 3-clip synthetic-sky
 * data section it records, for tests of the long-video commands; returns the file and that data.
 */
export function writeTinyAutoencoder(dir: string): { file: string; data: { source: string; frames: number; size: number; num_videos: number; held_out: number } } {
  const data = { source: 'synthetic-sky', frames: 16, size: 8, num_videos: 3, held_out: 1 };
  const cfg = ExperimentConfig.parse({
    name: 'tiny-ae',
    data,
    autoencoder: { model: { channels: [8], temporal_factor: 2, spatial_factor: 2, latent_channels: 2, enc_res_blocks: 1, dec_res_blocks: 1, norm_groups: 4 }, train: { steps: 1, batch_size: 1 } },
  });
  const store = new ParamStore(new Rng(0));
  new VideoAutoencoder(store, cfg.autoencoder!.model);
  const file = path.join(dir, 'autoencoder.safetensors');
  saveAutoencoderWeights(file, store, cfg, null, 0);
  store.dispose();
  return { file, data };
}
