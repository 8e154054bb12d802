/** `lvdm import CKPT --config public.yaml --out DIR [--ema] [--ae AE.ckpt]`: public LVDM checkpoints -> LVDM.ts files. */
import { Command } from '../types';
import { flag, requireStr, str } from '../args';
import { importPublic } from '../../interop/convert';
import { initBackend } from '../../backend';

export const command: Command = {
  name: 'import',
  summary: "import a checkpoint of the public LVDM code (.ckpt/.pt or .safetensors) with its YAML config",
  description: `Reads the public code's Lightning checkpoint safely (no Python, no code execution) and its own
YAML config (configs/lvdm_short/*.yaml, configs/lvdm_long/*.yaml or configs/videoae/*.yaml), maps
names and layouts, sets the behaviour switches its weights need (unet.relative_key: public,
autoencoder.model.decoder: tats, its schedule, latent scale/shift, DDIM 50 steps / eta 1 / leading
timesteps) and writes DIR/autoencoder.safetensors, DIR/lvdm.safetensors (latent diffusion
checkpoints), DIR/config.yaml and DIR/import.json. Sample with: lvdm sample --ckpt DIR/lvdm.safetensors ...

Examples:
  lvdm import models/lvdm_short/short_sky.ckpt --config configs/lvdm_short/sky.yaml --out imported/sky --ema
  lvdm import models/ae/ae_sky.ckpt --config configs/videoae/sky.yaml --out imported/ae_sky
  lvdm import models/t2v/model.ckpt --config configs/lvdm_short/text2video.yaml --clip clip-vit-large-patch14 --out imported/t2v`,
  positionals: true,
  options: {
    config: { type: 'string', help: "the public code's YAML config of the checkpoint" },
    out: { type: 'string', short: 'o', help: 'output folder' },
    ema: { type: 'boolean', help: 'use the EMA weights (model_ema.*) of a latent diffusion checkpoint' },
    ae: { type: 'string', help: 'separate autoencoder checkpoint (when CKPT has no first_stage_model.* weights)' },
    name: { type: 'string', help: 'experiment name recorded in the config' },
    'data-root': { type: 'string', help: "the data set's folder, recorded as data.root (for reconstruct / metrics on real clips)" },
    clip: { type: 'string', help: 'text-to-video: folder with the CLIP tokenizer (vocab.json, merges.txt) and config.json, e.g. a download of openai/clip-vit-large-patch14' },
    json: { type: 'boolean', help: 'print the report as JSON' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new Error(`lvdm import: expected one checkpoint file, got ${positionals.length} (usage: lvdm import CKPT --config public.yaml --out DIR)`);
    await initBackend({ quiet: flag(values, 'json') });
    const report = importPublic({ ckpt: positionals[0], config: requireStr(values, 'config'), out: requireStr(values, 'out'), ema: flag(values, 'ema'), ae: str(values, 'ae'), name: str(values, 'name'), dataRoot: str(values, 'data-root'), clip: str(values, 'clip') });
    if (flag(values, 'json')) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(`imported ${report.kind} (${report.tensors_used} tensors${report.ema ? ', EMA weights' : ''}; ${report.keys_ignored.length} other keys ignored)`);
      for (const [k, v] of Object.entries(report.switches)) console.log(`  ${k}: ${JSON.stringify(v)}`);
      console.log(`wrote ${report.files.join(', ')}`);
    }
    return 0;
  },
};
