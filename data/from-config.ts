/**
 * Builds the ClipDataset a config's `data` section names (config -> data, the first step of the
 * pipeline). Synthetic sources render on demand, and their held-out split uses videos the training
 * split never sees (another content seed); real sources use their test split as held-out data.
 */
import { DataConfig } from '../lib/config/schema';
import { hashString } from '../lib/nn/rng';
import { openClipDataset } from './index';
import { syntheticFamilyFromSource } from './synthetic';
import type { ClipDataset } from './types';

export type DataSplit = 'train' | 'heldout';

export function datasetFromConfig(cfg: DataConfig, split: DataSplit, seed: number, warn?: (m: string) => void): ClipDataset {
  const synthetic = syntheticFamilyFromSource(cfg.source) !== null;
  if (!synthetic && !cfg.root) throw new Error(`data.root: required for data.source '${cfg.source}' (the folder holding the data set or prepared shards)`);
  return openClipDataset({
    source: cfg.source,
    root: cfg.root,
    frames: cfg.frames,
    height: cfg.size,
    width: cfg.size,
    frameStride: cfg.frame_stride,
    split: split === 'train' ? cfg.split : 'test',
    fold: cfg.fold,
    size: split === 'train' ? cfg.num_videos : Math.max(1, cfg.held_out),
    seed: split === 'train' ? seed : (seed ^ hashString('heldout')) >>> 0,
    videoLength: cfg.video_length,
    windows: split === 'train' ? 'random' : 'fixed',
    warn,
  });
}
