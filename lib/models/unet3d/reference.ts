/**
 * The reference workload of issue 3: LVDM's prediction UNet at a small configuration (latent
 * 16x16, 8 frames, 4 channels + 1 mask channel, batch 4, model channels 64, multipliers [1, 2],
 * one residual block per level, attention at downsample factor 2, 32 channels per head,
 * scale-shift norm, relative positions, no s embedding). The public PyTorch model at this
 * configuration has 3,280,708 parameters; this implementation has the same tensors.
 */
import { UNetConfig } from '../../config/schema';

export const REFERENCE_UNET = { batch: 4, frames: 8, height: 16, width: 16, channels: 4, params: 3_280_708 } as const;

export function referenceUNetConfig(): UNetConfig {
  return UNetConfig.parse({
    in_channels: 4,
    out_channels: 4,
    model_channels: 64,
    channel_mult: [1, 2],
    num_res_blocks: 1,
    attention_resolutions: [2],
    head_channels: 32,
    temporal_length: 8,
    relative_position: true,
    scale_shift_norm: true,
    mask_channel: true,
    s_embed: 'none',
  });
}
