/** `lvdm train-ae --config experiments/<file>.yaml`: trains the video autoencoder. */
import { Command } from '../types';
import { initBackend } from '../../backend';
import { trainAutoencoder } from '../../autoencoder/pipeline';
import { TRAIN_OPTIONS, trainArgs } from './common';

export const command: Command = {
  name: 'train-ae',
  summary: 'train the 3D video autoencoder (reconstruction + LPIPS + adversarial losses)',
  description: `Writes to the run folder: checkpoint-last.safetensors (resumable), metrics.jsonl,
config.json, autoencoder.safetensors (weights + latent shift/scale) and eval.json (held-out PSNR/SSIM).

Example:
  lvdm train-ae --config experiments/ae-shapes-demo.yaml --out runs/ae-demo`,
  options: TRAIN_OPTIONS,
  async run(values) {
    const args = trainArgs(values, 'autoencoder');
    await initBackend({ quiet: !args.progress });
    const r = await trainAutoencoder(args);
    console.log(`trained ${r.steps} steps in ${r.trainSeconds.toFixed(1)} s -> ${r.weights}`);
    console.log(`held-out reconstruction (${r.heldOut.clips} clips): PSNR ${r.heldOut.psnr.toFixed(2)} dB, SSIM ${r.heldOut.ssim.toFixed(4)}`);
    return 0;
  },
};
