/** `lvdm reconstruct --ckpt C --out D`: original vs reconstruction (GIF + PNG grid), PSNR and SSIM. */
import * as path from 'node:path';
import { Command } from '../types';
import { int, requireStr, str, flag } from '../args';
import { initBackend } from '../../backend';
import { loadAutoencoder } from '../../autoencoder/io';
import { reconstructClips } from '../../autoencoder/pipeline';
import { writeReconstructionOutputs } from '../../autoencoder/outputs';
import { writeJsonAtomic } from '../../io/atomic';
import { datasetFromConfig, DataSplit } from '../../../data/from-config';

export const command: Command = {
  name: 'reconstruct',
  summary: 'reconstruct held-out clips with a trained autoencoder; write GIF/PNG and print PSNR/SSIM',
  description: `Example:
  lvdm reconstruct --ckpt runs/demo/autoencoder/autoencoder.safetensors --out runs/recon --n 8`,
  options: {
    ckpt: { type: 'string', help: 'autoencoder.safetensors or a train-ae checkpoint-last.safetensors' },
    out: { type: 'string', short: 'o', help: 'output folder' },
    n: { type: 'string', help: 'number of clips', default: '4' },
    split: { type: 'string', help: 'heldout | train (data of the stored config)', default: 'heldout' },
    seed: { type: 'string', help: 'seed for clip windows (default: the config seed)' },
    json: { type: 'boolean', help: 'print the metrics as JSON' },
  },
  async run(values) {
    const ckpt = requireStr(values, 'ckpt');
    const out = requireStr(values, 'out');
    const split = (str(values, 'split') ?? 'heldout') as DataSplit;
    if (split !== 'heldout' && split !== 'train') throw new Error(`--split: expected heldout or train, got '${split}'`);
    await initBackend({ quiet: flag(values, 'json') });
    const loaded = loadAutoencoder(ckpt);
    try {
      const cfg = loaded.config;
      const seed = int(values, 'seed', cfg.seed)!;
      const dataset = datasetFromConfig(cfg.data, split, cfg.seed);
      const rec = await reconstructClips(loaded.ae, dataset, int(values, 'n', 4)!, seed);
      const files = writeReconstructionOutputs(out, rec);
      const summary = { ckpt, split, clips: rec.perClip.length, psnr: rec.psnr, ssim: rec.ssim, per_clip: rec.perClip, files };
      writeJsonAtomic(path.join(out, 'metrics.json'), summary);
      if (flag(values, 'json')) console.log(JSON.stringify(summary, null, 2));
      else {
        for (const c of rec.perClip) console.log(`${c.key}: PSNR ${c.psnr.toFixed(2)} dB, SSIM ${c.ssim.toFixed(4)}`);
        console.log(`mean over ${rec.perClip.length} ${split} clips: PSNR ${rec.psnr.toFixed(2)} dB, SSIM ${rec.ssim.toFixed(4)}`);
        console.log(`wrote ${files.join(', ')}`);
      }
      return 0;
    } finally {
      loaded.dispose();
    }
  },
};
