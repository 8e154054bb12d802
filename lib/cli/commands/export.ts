/** `lvdm export --ckpt lvdm.safetensors --out model.ckpt`: LVDM.ts weights -> a state dict the public LVDM code loads. */
import { Command } from '../types';
import { flag, requireStr, str } from '../args';
import { exportPublic } from '../../interop/convert';
import { initBackend } from '../../backend';

export const command: Command = {
  name: 'export',
  summary: 'export LVDM.ts weights as a state dict (+ YAML config) for the public LVDM code',
  description: `lvdm.safetensors -> a LatentDiffusion state dict (model.diffusion_model.*, model_ema.*,
first_stage_model.*, schedule buffers) that scripts/sample_uncond.py loads with strict=True;
autoencoder.safetensors -> an AutoencoderKL state dict. The public-format YAML is written next to
it (same name, .yaml). .ckpt/.pt files are torch zip checkpoints ({'state_dict': ...});
.safetensors files load with safetensors.torch.load_file.

Examples:
  lvdm export --ckpt runs/lvdm/lvdm.safetensors --out export/model.ckpt
  lvdm export --ckpt runs/ae/autoencoder.safetensors --out export/ae.safetensors`,
  options: {
    ckpt: { type: 'string', help: 'lvdm.safetensors or autoencoder.safetensors' },
    out: { type: 'string', short: 'o', help: 'output file (.ckpt, .pt, .pth or .safetensors)' },
    ae: { type: 'string', help: 'autoencoder to include (default: the one recorded in lvdm.safetensors)' },
    'allow-behaviour-change': { type: 'boolean', help: "export although the model's switches (unet.relative_key 'shaw', unet.norm_scope 'frame') differ from the public code's" },
  },
  async run(values) {
    await initBackend({ quiet: true });
    const r = exportPublic({ ckpt: requireStr(values, 'ckpt'), out: requireStr(values, 'out'), ae: str(values, 'ae'), allowBehaviourChange: flag(values, 'allow-behaviour-change') });
    console.log(`wrote ${r.file} (${r.tensors} tensors) and ${r.yaml}`);
    return 0;
  },
};
