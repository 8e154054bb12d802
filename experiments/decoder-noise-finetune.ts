/**
 * Fine-tunes an autoencoder's decoder on noised latents, encoder frozen (issue 12;
 * lib/autoencoder/noise-finetune.ts), on the training data its config names; writes a new
 * autoencoder file with the same latents and latent statistics, for `lvdm sample --ae` and
 * experiments/latent-sensitivity.ts.
 *
 *   node --import tsx experiments/decoder-noise-finetune.ts AE_IN.safetensors AE_OUT.safetensors [--steps 1000] [--sigma-max 0.6] [--lr 1e-4] [--batch 8] [--seed 0]
 */
import { parseArgs } from 'node:util';
import { initBackend } from '../lib/backend';
import { loadAutoencoder, saveAutoencoderWeights } from '../lib/autoencoder/io';
import { finetuneDecoderOnNoisedLatents } from '../lib/autoencoder/noise-finetune';
import { datasetFromConfig } from '../data/from-config';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      steps: { type: 'string', default: '1000' },
      'sigma-max': { type: 'string', default: '0.6' },
      lr: { type: 'string', default: '1e-4' },
      batch: { type: 'string', default: '8' },
      seed: { type: 'string', default: '0' },
    },
  });
  const [inFile, outFile] = positionals;
  if (!inFile || !outFile) throw new Error('usage: decoder-noise-finetune.ts AE_IN.safetensors AE_OUT.safetensors [--steps N] [--sigma-max S] [--lr LR]');
  await initBackend({ quiet: true });
  const loaded = loadAutoencoder(inFile);
  const cfg = loaded.config;
  if (!cfg.data) throw new Error(`${inFile}: its config has no 'data' section to train on`);
  if (!loaded.latent) throw new Error(`${inFile}: no latent statistics (shift/scale); the noise is defined in the normalised latent space`);
  const dataset = datasetFromConfig(cfg.data, 'train', cfg.seed);
  const steps = Number(values.steps);
  const t0 = Date.now();
  await finetuneDecoderOnNoisedLatents(loaded, dataset, {
    steps,
    sigmaMax: Number(values['sigma-max']),
    lr: Number(values.lr),
    batchSize: Number(values.batch),
    seed: Number(values.seed),
    log: (step, loss) => { if (step % 50 === 0) console.log(`step ${step}/${steps} loss ${loss.toFixed(4)} ${((Date.now() - t0) / 1000).toFixed(0)} s`); },
  });
  saveAutoencoderWeights(outFile, loaded.store, cfg, loaded.latent, steps);
  loaded.dispose();
  console.log(`wrote ${outFile} (${((Date.now() - t0) / 60000).toFixed(1)} min)`);
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
