/** Shared pieces of `lvdm train-pred` and `lvdm train-interp`. */
import { Command } from '../cli/types';
import { str } from '../cli/args';
import { TRAIN_OPTIONS, trainArgs } from '../cli/commands/common';
import { initBackend } from '../backend';
import { LongVideoConfig } from '../config/schema';
import { trainLongModel } from './train';

export function trainLongCommand(name: string, role: LongVideoConfig['role'], example: string): Command {
  const what = role === 'prediction' ? 'prediction model (keyframes / autoregressive extension)' : 'interpolation model (fills between keyframes)';
  return {
    name,
    summary: `train the long-video ${what}`,
    description: `Trains one network on conditional and unconditional examples (config section 'long': role
'${role}', window, latent_stride, ${role === 'prediction' ? 'cond_frames, ' : ''}p_cond, s_max, loss_frames) on the cached
latents of the config's autoencoder (the same cache as train-lvdm; clips of data.frames pixel frames,
windows cut at long.latent_stride). Condition latents are perturbed, z_s = q(z_0, s) with
s ~ U{0..s_max}, and the network is told s (level 0 is reserved for the unconditional case).
Writes checkpoint-last.safetensors (resumable), metrics.jsonl, config.json and lvdm.safetensors
(EMA weights, used by 'lvdm sample-long').

Example:
  ${example}`,
    options: {
      ...TRAIN_OPTIONS,
      ae: { type: 'string', help: 'autoencoder.safetensors (overrides diffusion.autoencoder)' },
      'cache-dir': { type: 'string', help: 'latent cache folder (default .cache/latents)' },
    },
    async run(values) {
      const args = trainArgs(values, role === 'prediction' ? 'pred' : 'interp');
      await initBackend({ quiet: !args.progress });
      const r = await trainLongModel({ ...args, role, autoencoder: str(values, 'ae'), cacheDir: str(values, 'cache-dir') });
      console.log(`trained ${r.steps} steps (${r.params} parameters) in ${r.trainSeconds.toFixed(1)} s, last loss ${r.lastLoss.toFixed(4)} -> ${r.weights}`);
      return 0;
    },
  };
}
