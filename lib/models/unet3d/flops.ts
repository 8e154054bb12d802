/**
 * Floating-point operations of one UNet3D forward, counted analytically as 2 x multiply-adds of
 * every convolution, linear layer and attention matmul (elementwise ops, norms and softmax are
 * left out: they are a few percent). `executed` counts the relative-position terms the way this
 * implementation computes them (through the 0/1 routing matrix); `reference` counts them as the
 * direct [T, T, d] contraction the PyTorch code does.
 */
import { UNetConfig } from '../../config/schema';
import { unetInputChannels } from './unet';

export interface FlopCount {
  /** As executed here. */
  executed: number;
  /** Same network with the relative terms counted as direct contractions. */
  reference: number;
}

export function unetFlops(cfg: UNetConfig, shape: { batch: number; frames: number; height: number; width: number }): FlopCount {
  const { batch: b, frames: T } = shape;
  const N = b * T;
  let total = 0;
  let relExec = 0;
  let relRef = 0;
  const conv = (hw: number, cin: number, cout: number, k: number): void => {
    total += 2 * N * hw * k * k * cin * cout;
  };
  const E = 4 * cfg.model_channels;
  const linear = (rows: number, cin: number, cout: number): void => {
    total += 2 * rows * cin * cout;
  };
  const res = (hw: number, cin: number, cout: number): void => {
    conv(hw, cin, cout, 3);
    conv(hw, cout, cout, 3);
    if (cin !== cout) conv(hw, cin, cout, 1);
    linear(N, E, cfg.scale_shift_norm ? 2 * cout : cout);
  };
  const attn = (hw: number, ch: number): void => {
    const heads = cfg.num_heads ?? ch / cfg.head_channels;
    const d = ch / heads;
    // spatial: q/k/v + out projections, QK^T and AV
    linear(N * hw, ch, 4 * ch);
    total += 4 * N * hw * hw * ch;
    if (!cfg.temporal_attention) return;
    linear(N * hw, ch, 4 * ch);
    total += 4 * N * hw * T * ch;
    if (cfg.relative_position) {
      const R = 2 * cfg.temporal_length + 1;
      const M = b * hw * heads;
      relExec += 2 * (M * T) * d * R * 2 + 2 * M * (T * R) * (T * T) * 2;
      relRef += 2 * M * T * T * d * 2;
    }
  };
  const mc = cfg.model_channels;
  linear(b, mc, E);
  linear(b, E, E);
  let hw = shape.height * shape.width;
  conv(hw, unetInputChannels(cfg), mc, 3);
  const skips = [mc];
  let ch = mc;
  let ds = 1;
  cfg.channel_mult.forEach((mult, level) => {
    for (let r = 0; r < cfg.num_res_blocks; r++) {
      res(hw, ch, mult * mc);
      ch = mult * mc;
      if (cfg.attention_resolutions.includes(ds)) attn(hw, ch);
      skips.push(ch);
    }
    if (level !== cfg.channel_mult.length - 1) {
      hw /= 4;
      conv(hw, ch, ch, 3);
      skips.push(ch);
      ds *= 2;
    }
  });
  res(hw, ch, ch);
  attn(hw, ch);
  res(hw, ch, ch);
  [...cfg.channel_mult.entries()].reverse().forEach(([level, mult]) => {
    for (let r = 0; r <= cfg.num_res_blocks; r++) {
      const ich = skips.pop() as number;
      res(hw, ch + ich, mc * mult);
      ch = mc * mult;
      if (cfg.attention_resolutions.includes(ds)) attn(hw, ch);
      if (level > 0 && r === cfg.num_res_blocks) {
        hw *= 4;
        conv(hw, ch, ch, 3);
        ds /= 2;
      }
    }
  });
  conv(hw, mc, cfg.out_channels, 3);
  return { executed: total + relExec, reference: total + relRef };
}
