/**
 * RawVideoDataset: clips straight from the videos / frame folders of a VideoList, decoded on
 * demand (ffmpeg child processes for files, in-process JPEG/PNG for frame folders).
 *
 * A clip is L frames with stride K (frames s, s + K, ..., s + (L - 1) K), s drawn from the rng
 * within the video. Videos that cannot be probed or decoded, or are shorter than one clip
 * ((L - 1) K + 1 frames), are skipped with one warning each and recorded in `skipped`; `get`
 * then serves the next readable video, so a run never stops on a bad file.
 */
import type { Rng } from '../lib/nn/rng';
import { FfmpegMissingError } from './ffmpeg';
import type { ClipDataset, ClipSample } from './types';
import type { SkipRecord, VideoEntry, VideoList } from './layouts';
import { type EntryInfo, type FrameGeometry, entryInfo, readEntryWindow } from './video-source';

export interface RawDatasetOptions extends FrameGeometry {
  frames: number;
  /** Frame stride K (default 1). */
  frameStride?: number;
  /** Called once per skipped video (default console.warn). */
  warn?: (message: string) => void;
}

export class RawVideoDataset implements ClipDataset {
  readonly name: string;
  readonly size: number;
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  readonly frameStride: number;
  readonly numClasses?: number;
  readonly classNames?: readonly string[];
  readonly entries: readonly VideoEntry[];
  /** Videos skipped so far (one record each). */
  readonly skipped: SkipRecord[] = [];
  private readonly geometry: FrameGeometry;
  private readonly warn: (m: string) => void;
  private readonly infos = new Map<number, Promise<EntryInfo>>();
  private readonly bad = new Set<number>();

  constructor(list: VideoList, opts: RawDatasetOptions) {
    this.name = `${list.dataset}:${list.root}`;
    this.entries = list.entries;
    this.size = list.entries.length;
    this.frames = opts.frames;
    this.height = opts.height;
    this.width = opts.width;
    this.frameStride = opts.frameStride ?? 1;
    for (const [k, v] of [['frames', this.frames], ['height', this.height], ['width', this.width], ['frameStride', this.frameStride]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`RawVideoDataset: ${k} must be a positive integer, got ${v}`);
    }
    if (this.size === 0) throw new Error(`RawVideoDataset: no videos in ${list.root}`);
    this.geometry = { height: opts.height, width: opts.width, fps: opts.fps, frameFps: opts.frameFps };
    this.warn = opts.warn ?? ((m: string) => console.warn(`lvdm data: ${m}`));
    if (list.classNames) {
      this.classNames = list.classNames;
      this.numClasses = list.classNames.length;
    }
  }

  /** Source frames one clip covers: (L - 1) K + 1. */
  span(): number {
    return (this.frames - 1) * this.frameStride + 1;
  }

  info(index: number): Promise<EntryInfo> {
    let p = this.infos.get(index);
    if (!p) {
      p = entryInfo(this.entries[index], this.geometry);
      p.catch(() => undefined);
      this.infos.set(index, p);
    }
    return p;
  }

  /** The clip of video `index` starting at timeline frame `start`. */
  async clipAt(index: number, start: number): Promise<ClipSample> {
    const e = this.entries[index];
    const info = await this.info(index);
    const video = await readEntryWindow(e, info, this.geometry, start, this.frames, this.frameStride);
    return {
      video,
      frames: this.frames,
      height: this.height,
      width: this.width,
      label: e.label,
      caption: e.caption,
      key: `${e.id}@${start}`,
    };
  }

  async get(index: number, rng: Rng): Promise<ClipSample> {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new Error(`${this.name}: index ${index} out of range [0, ${this.size})`);
    for (let tries = 0; tries < this.size; tries++) {
      const i = (index + tries) % this.size;
      if (this.bad.has(i)) continue;
      try {
        const info = await this.info(i);
        if (info.frames < this.span()) {
          throw new Error(
            `${this.entries[i].file ?? this.entries[i].frameDir}: too short: ${info.frames} frames, a clip of ${this.frames} frames with stride ${this.frameStride} needs ${this.span()}`,
          );
        }
        return await this.clipAt(i, rng.int(0, info.frames - this.span()));
      } catch (err) {
        if (err instanceof FfmpegMissingError) throw err;
        if (this.bad.has(i)) continue; // another concurrent read already reported it
        this.bad.add(i);
        const reason = (err as Error).message;
        this.skipped.push({ id: this.entries[i].id, reason });
        this.warn(`skipping ${reason}`);
      }
    }
    throw new Error(`${this.name}: none of the ${this.size} videos is readable and long enough for a clip of ${this.span()} frames`);
  }
}
