/**
 * Data sets for LVDM.ts: one entry point that opens any configured source as a ClipDataset.
 *
 * Sources: `synthetic-shapes|sky|taichi|ucf` (procedural, no files), `shards` (a folder written
 * by `lvdm data prepare`: the fast path), or raw `ucf101|sky|taichi|webvid|folder` videos decoded
 * on demand.
 */
import { DATASET_KINDS, type DatasetKind, type Split, listVideos } from './layouts';
import { RawVideoDataset } from './raw';
import { ShardDataset } from './shards';
import { SYNTHETIC_FAMILIES, SyntheticDataset, syntheticFamilyFromSource } from './synthetic';
import type { ClipDataset } from './types';

export type { ClipDataset, ClipSample } from './types';
export { ClipLoader, type ClipBatch, type ClipLoaderOptions, type LoaderState, fromUnitRange, toUnitRange } from './loader';
export { SyntheticDataset, renderSyntheticFrames, syntheticVideoInfo, SYNTHETIC_FAMILIES, SYNTHETIC_UCF_CLASSES } from './synthetic';
export { ShardDataset, prepareShards, readShardIndex, type ShardIndex, type PrepareOptions } from './shards';
export { RawVideoDataset } from './raw';
export { WorkerClipDataset } from './worker';
export { listVideos, DATASET_KINDS, type DatasetKind, type VideoList, type VideoEntry, type Split } from './layouts';
export { statsFromIndex, statsFromRaw, formatStats, type DataStats } from './stats';
export { resizeCenterCrop, coverCropGeometry, decodeImageFile } from './image';

export interface DataSourceOptions {
  /** 'synthetic-<family>', 'shards', or a raw data set kind ('ucf101', 'sky', 'taichi', 'webvid', 'folder'). */
  source: string;
  /** Data set root (raw) or prepared folder (shards). */
  root?: string;
  frames: number;
  height: number;
  width: number;
  frameStride?: number;
  /** Raw: split, UCF-101 fold, split-list folder, WebVid CSV, fps resampling, frame-folder fps. */
  split?: Split;
  fold?: number;
  splitsDir?: string;
  csv?: string;
  fps?: number;
  frameFps?: number;
  /** Synthetic: number of videos, content seed, frames per video. */
  size?: number;
  seed?: number;
  videoLength?: number;
  /** Shards: random windows per video (training) or fixed non-overlapping windows (evaluation). */
  windows?: 'random' | 'fixed';
  warn?: (message: string) => void;
}

export function openClipDataset(o: DataSourceOptions): ClipDataset {
  const family = syntheticFamilyFromSource(o.source);
  if (family) {
    return new SyntheticDataset({
      family, size: o.size, frames: o.frames, height: o.height, width: o.width,
      frameStride: o.frameStride, seed: o.seed, videoLength: o.videoLength,
    });
  }
  if (o.source.startsWith('synthetic-')) {
    throw new Error(`unknown synthetic source '${o.source}', expected ${SYNTHETIC_FAMILIES.map((f) => `synthetic-${f}`).join(', ')}`);
  }
  if (!o.root) throw new Error(`data source '${o.source}' needs a root folder`);
  if (o.source === 'shards') {
    const ds = new ShardDataset(o.root, { frames: o.frames, frameStride: o.frameStride, windows: o.windows });
    if (ds.height !== o.height || ds.width !== o.width) {
      throw new Error(`${o.root}: shards were prepared at ${ds.width}x${ds.height}, the config asks for ${o.width}x${o.height}`);
    }
    return ds;
  }
  if ((DATASET_KINDS as readonly string[]).includes(o.source)) {
    const list = listVideos({ dataset: o.source as DatasetKind, root: o.root, split: o.split, fold: o.fold, splitsDir: o.splitsDir, csv: o.csv, warn: o.warn });
    return new RawVideoDataset(list, {
      frames: o.frames, height: o.height, width: o.width, frameStride: o.frameStride, fps: o.fps, frameFps: o.frameFps, warn: o.warn,
    });
  }
  throw new Error(
    `unknown data source '${o.source}', expected ${SYNTHETIC_FAMILIES.map((f) => `synthetic-${f}`).join(', ')}, shards, or ${DATASET_KINDS.join(', ')}`,
  );
}
