/**
 * `lvdm demo` (`npm run demo`): the whole pipeline on synthetic data with the demo config:
 * synthetic clips -> video autoencoder (train, held-out reconstructions) -> ...
 */
import * as path from 'node:path';
import { Command } from '../types';
import { flag, list, str } from '../args';
import { initBackend } from '../../backend';
import { loadConfig } from '../../config/load';
import { trainAutoencoder } from '../../autoencoder/pipeline';
import { writeReconstructionOutputs } from '../../autoencoder/outputs';
import { reconstructClips } from '../../autoencoder/pipeline';
import { loadAutoencoder } from '../../autoencoder/io';
import { datasetFromConfig } from '../../../data/from-config';
import { runLvdmDemoStage } from '../../lvdm/demo';

export const DEMO_CONFIG = path.join(__dirname, '..', '..', '..', 'experiments', 'demo.yaml');

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export const command: Command = {
  name: 'demo',
  summary: 'run the demo pipeline on synthetic data (no flags needed)',
  description: `Trains the demo autoencoder on synthetic moving shapes, reconstructs held-out clips and
prints their PSNR/SSIM; then trains a small latent video diffusion model (UNet3D) on the
autoencoder's latents and writes DDIM samples as MP4, GIF and one PNG grid. Outputs go to a new
folder runs/demo/<timestamp> (never overwritten).`,
  options: {
    config: { type: 'string', short: 'c', help: 'experiment YAML', default: 'experiments/demo.yaml' },
    out: { type: 'string', short: 'o', help: 'output folder (default runs/demo/<timestamp>)' },
    set: { type: 'string', multiple: true, help: 'override a config key, e.g. --set autoencoder.train.steps=50' },
    quiet: { type: 'boolean', help: 'no progress bars' },
  },
  async run(values) {
    const t0 = Date.now();
    const configFile = str(values, 'config') ?? DEMO_CONFIG;
    const config = loadConfig(configFile, list(values, 'set'));
    const out = str(values, 'out') ?? path.join('runs', 'demo', stamp());
    const progress = !flag(values, 'quiet');
    const info = await initBackend({ quiet: false });
    console.log(`demo: config ${configFile}, outputs in ${out} (backend ${info.name})`);

    console.log('\n== 1/2 video autoencoder ==');
    const aeDir = path.join(out, 'autoencoder');
    const ae = await trainAutoencoder({ config, outDir: aeDir, progress });
    const loaded = loadAutoencoder(ae.weights);
    try {
      const heldOut = datasetFromConfig(config.data, 'heldout', config.seed);
      const rec = await reconstructClips(loaded.ae, heldOut, Math.min(4, config.data.held_out), config.seed);
      const files = writeReconstructionOutputs(path.join(aeDir, 'reconstructions'), rec);
      console.log(`reconstructions: ${files.join(', ')}`);
    } finally {
      loaded.dispose();
    }
    console.log(`autoencoder: ${ae.steps} steps in ${ae.trainSeconds.toFixed(0)} s`);
    console.log(`held-out PSNR ${ae.heldOut.psnr.toFixed(2)} dB, SSIM ${ae.heldOut.ssim.toFixed(4)} (${ae.heldOut.clips} clips)`);

    console.log('\n== 2/2 latent video diffusion ==');
    const ldm = await runLvdmDemoStage({ config, aeWeights: ae.weights, outDir: path.join(out, 'lvdm'), progress });
    console.log(`UNet3D: ${ldm.params} parameters, ${ldm.steps} steps in ${ldm.trainSeconds.toFixed(0)} s (final loss ${ldm.lastLoss.toFixed(4)})`);
    console.log(`sampling + decoding: ${ldm.sampleSeconds.toFixed(1)} s; samples grid ${ldm.grid}`);
    console.log(`\ndemo finished in ${((Date.now() - t0) / 1000).toFixed(0)} s; outputs in ${out}`);
    return 0;
  },
};
