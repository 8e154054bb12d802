/**
 * Builds the ClipDataset a config's `data` section names. Synthetic sources (`synthetic-<family>`)
 * render on demand; the held-out split uses videos the training split never sees (another content seed).
 */
import { DataConfig } from '../lib/config/schema';
import { hashString } from '../lib/nn/rng';
import { SyntheticDataset, syntheticFamilyFromSource } from './synthetic';
import type { ClipDataset } from './types';

export type DataSplit = 'train' | 'heldout';

export function datasetFromConfig(cfg: DataConfig, split: DataSplit, seed: number): ClipDataset {
  const family = syntheticFamilyFromSource(cfg.source);
  if (family) {
    const contentSeed = split === 'train' ? seed : (seed ^ hashString('heldout')) >>> 0;
    return new SyntheticDataset({
      family,
      size: split === 'train' ? cfg.num_videos : Math.max(1, cfg.held_out),
      frames: cfg.frames,
      height: cfg.size,
      width: cfg.size,
      frameStride: cfg.frame_stride,
      seed: contentSeed,
      videoLength: cfg.video_length,
    });
  }
  throw new Error(
    `data.source: '${cfg.source}' is not a known source (expected synthetic-shapes, synthetic-sky, synthetic-taichi or synthetic-ucf)`,
  );
}
