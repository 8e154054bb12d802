/** Autoencoder training throughput (steps/s) at the demo configuration. */
import * as path from 'node:path';
import { BenchModule, BenchResult, timeMs } from './types';
import { loadConfig } from '../lib/config/load';
import { AutoencoderTrainer } from '../lib/autoencoder/train';
import { datasetFromConfig } from '../data/from-config';

export const run: BenchModule = async (opts) => {
  const config = loadConfig(path.join(__dirname, '..', 'experiments', 'demo.yaml'));
  const ae = config.autoencoder!;
  const dataset = datasetFromConfig(config.data, 'train', config.seed);
  const trainer = new AutoencoderTrainer({ config, dataset, log: () => {} });
  let step = 0;
  const ms = await timeMs(() => trainer.trainStep(step++), opts.quick ? 2 : 8, 1);
  const d = config.data;
  const result: BenchResult = {
    name: 'autoencoder-train-demo',
    params: trainer.store.numParams(),
    timings_ms: { train_step_ms: ms },
    extra: {
      steps_per_s: 1000 / ms,
      batch: ae.train.batch_size,
      clip: `${d.frames}x${d.size}x${d.size}`,
      channels: ae.model.channels.join('/'),
      factors: `ft${ae.model.temporal_factor} fs${ae.model.spatial_factor}`,
    },
    note: 'experiments/demo.yaml: one Adam step of the autoencoder (discriminator not yet active)',
  };
  trainer.dispose();
  return [result];
};
