/** `lvdm train-lvdm --config experiments/<file>.yaml [--ae autoencoder.safetensors]`: trains the latent diffusion UNet. */
import * as path from 'node:path';
import { Command } from '../types';
import { int, str } from '../args';
import { initBackend } from '../../backend';
import { trainLvdm } from '../../lvdm/pipeline';
import { generateVideos, writeSampleOutputs } from '../../lvdm/generate';
import { loadLvdm } from '../../lvdm/weights';
import { loadAutoencoder } from '../../autoencoder/io';
import { TRAIN_OPTIONS, trainArgs } from './common';
import { heldOutConditioning } from '../../lvdm/captions';

export const command: Command = {
  name: 'train-lvdm',
  summary: 'train the latent video diffusion UNet on cached autoencoder latents',
  description: `Encodes the training clips once with the autoencoder (cached under .cache/latents, reused
while the autoencoder file and data settings are unchanged), trains the UNet3D (epsilon prediction,
AdamW, EMA) and writes to the run folder: checkpoint-last.safetensors (resumable), metrics.jsonl,
config.json, lvdm.safetensors (EMA weights + latent normalisation + autoencoder path) and, unless
--preview 0, a few DDIM samples in preview/.

Example:
  lvdm train-lvdm --config experiments/lvdm-shapes.yaml --ae runs/ae/autoencoder.safetensors --out runs/lvdm`,
  options: {
    ...TRAIN_OPTIONS,
    ae: { type: 'string', help: 'autoencoder.safetensors (overrides diffusion.autoencoder)' },
    'cache-dir': { type: 'string', help: 'latent cache folder (default .cache/latents)' },
    preview: { type: 'string', help: 'number of preview samples written after training (default 4; 0 = none)' },
  },
  async run(values) {
    const args = trainArgs(values, 'lvdm');
    await initBackend({ quiet: !args.progress });
    const r = await trainLvdm({ ...args, autoencoder: str(values, 'ae'), cacheDir: str(values, 'cache-dir') });
    console.log(`trained ${r.steps} steps (${r.params} parameters) in ${r.trainSeconds.toFixed(1)} s, last loss ${r.lastLoss.toFixed(4)} -> ${r.weights}`);
    const n = int(values, 'preview', 4)!;
    if (n > 0) {
      const model = loadLvdm(r.weights);
      const ae = loadAutoencoder(model.state.autoencoder);
      try {
        const s = args.config.diffusion!.sampling;
        // Conditional models preview the captions or labels of held-out clips.
        const asked = await heldOutConditioning(model, n);
        const gen = await generateVideos(model, ae.ae, { n, batchSize: s.batch_size, sampler: s.sampler, steps: s.steps, eta: s.eta, seed: args.config.seed, ...asked });
        const files = await writeSampleOutputs(path.join(r.outDir, 'preview'), gen, { fps: s.fps, mp4: false });
        console.log(`preview: ${files.join(', ')}`);
      } finally {
        model.dispose();
        ae.dispose();
      }
    }
    return 0;
  },
};
