/**
 * The data set interface shared by synthetic, raw-video and prepared-shard sources.
 *
 * Pixel layout: one clip is `[T, H, W, 3]` uint8 RGB, row-major (channels last, as every
 * tensor in LVDM.ts). Loaders turn clips into float batches `[B, T, H, W, 3]` in [-1, 1].
 */
import type { Rng } from '../lib/nn/rng';

export interface ClipSample {
  /** [T, H, W, 3] uint8, row-major. */
  video: Uint8Array;
  frames: number;
  height: number;
  width: number;
  /** Class index (UCF-101 / synthetic-ucf), when the source has classes. */
  label?: number;
  /** Text caption (WebVid, or "a video of <class>"), when the source has one. */
  caption?: string;
  /** Stable id, e.g. 'synthetic-shapes/000123@40' or a file path plus the window start. */
  key: string;
}

export interface ClipDataset {
  readonly name: string;
  /** Number of clips/videos addressable by index. */
  readonly size: number;
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  readonly numClasses?: number;
  /** Class names by index, when the source has classes. */
  readonly classNames?: readonly string[];
  /** Deterministic given (index, rng): e.g. the random window start comes from rng. */
  get(index: number, rng: Rng): Promise<ClipSample>;
}
