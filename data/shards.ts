/**
 * Prepared shards: every video decoded once, resized + centre-cropped to H x W, every K-th
 * frame kept (K = the frame stride), stored as raw uint8 frames in shard files with a JSON
 * index. Any L consecutive stored frames are then a clip of L frames with stride K, read with
 * one contiguous file read.
 *
 * Layout of an output folder:
 *   index.json          ShardIndex (config, shards, videos, skipped), rewritten atomically
 *   shard-00000.bin     [frames, H, W, 3] uint8, the videos of this shard back to back
 * `prepareShards` is resumable: a shard and then the index are written atomically (temp file +
 * rename) each time a shard fills, so an interrupted run loses at most the shard in progress and
 * a rerun continues from the first video not yet in a finished shard.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Rng } from '../lib/nn/rng';
import type { ClipDataset, ClipSample } from './types';
import { FfmpegMissingError, requireFfmpeg } from './ffmpeg';
import { type DatasetKind, type ListOptions, type SkipRecord, type Split, type VideoEntry, listVideos } from './layouts';
import { type EntryInfo, type FrameGeometry, entryInfo, readEntryFrames } from './video-source';

export const SHARD_INDEX = 'index.json';

export interface ShardConfig {
  dataset: DatasetKind;
  root: string;
  split: Split;
  fold: number | null;
  csv: string | null;
  height: number;
  width: number;
  /** Clip length L the shards were prepared for (videos shorter than one clip are skipped). */
  frames: number;
  /** Frame stride K: every K-th frame of the (resampled) video is stored. */
  stride: number;
  fps: number | null;
  frameFps: number | null;
}

export interface ShardVideo {
  id: string;
  label?: number;
  caption?: string;
  /** Shard number and first stored frame inside it. */
  shard: number;
  frame: number;
  /** Stored frames (timeline frames 0, K, 2K, ...). */
  frames: number;
  src: { width: number; height: number; fps: number; frames: number };
}

export interface ShardIndex {
  format: 'lvdm-shards';
  version: 1;
  config: ShardConfig;
  classNames?: string[];
  shards: { file: string; frames: number; bytes: number }[];
  videos: ShardVideo[];
  /** Videos skipped while preparing (undecodable, truncated, too short), one record each. */
  skipped: SkipRecord[];
  /** Listed videos whose files do not exist. */
  missing: SkipRecord[];
  /** True when every listed video has been processed. */
  complete: boolean;
  updated: string;
}

export interface PrepareOptions extends ListOptions {
  out: string;
  height: number;
  width: number;
  frames: number;
  stride: number;
  fps?: number;
  frameFps?: number;
  /** Target shard size in MiB (default 64). */
  shardMB?: number;
  /** Videos decoded concurrently (default 2). */
  jobs?: number;
  /** Called after each video. */
  progress?: (p: { done: number; total: number; skipped: number; id: string }) => void;
  /** Stop after the next finished shard (the run can be resumed). */
  signal?: AbortSignal;
}

export interface PrepareResult {
  index: ShardIndex;
  /** Videos handled in this run (stored or skipped). */
  processed: number;
  /** True when an earlier index was continued. */
  resumed: boolean;
  /** False when stopped by the signal before finishing. */
  finished: boolean;
}

/** Write a file atomically: a temp file in the same folder, then rename. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

export function readShardIndex(dir: string): ShardIndex {
  const file = path.join(dir, SHARD_INDEX);
  if (!fs.existsSync(file)) throw new Error(`${file} not found: ${dir} is not a prepared data folder (run \`lvdm data prepare\` first)`);
  let j: ShardIndex;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8')) as ShardIndex;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (j.format !== 'lvdm-shards' || j.version !== 1) throw new Error(`${file}: expected format 'lvdm-shards' version 1`);
  return j;
}

type Decoded = { ok: true; frames: Uint8Array[]; info: EntryInfo; entry: VideoEntry } | { ok: false; reason: string; entry: VideoEntry };

async function decodeWhole(e: VideoEntry, g: FrameGeometry, stride: number, clipFrames: number): Promise<Decoded> {
  const where = e.file ?? e.frameDir ?? e.id;
  try {
    const info = await entryInfo(e, g);
    const span = (clipFrames - 1) * stride + 1;
    if (info.frames < span) {
      return { ok: false, entry: e, reason: `${where}: too short: ${info.frames} frames, a clip of ${clipFrames} frames with stride ${stride} needs ${span}` };
    }
    const frames: Uint8Array[] = [];
    const r = await readEntryFrames(e, info, g, { start: 0, stride }, (rgb) => frames.push(rgb));
    const expected = Math.ceil(info.frames / stride);
    if (frames.length === 0) {
      return { ok: false, entry: e, reason: `${where}: undecodable (no frames${r.errors ? `: ${r.errors.split('\n')[0]}` : ''})` };
    }
    if (frames.length < expected - Math.max(1, Math.floor(0.02 * expected))) {
      return {
        ok: false,
        entry: e,
        reason: `${where}: truncated or damaged: decoded ${frames.length} of ${expected} frames${r.errors ? ` (${r.errors.split('\n')[0]})` : ''}`,
      };
    }
    if (frames.length < clipFrames) {
      return { ok: false, entry: e, reason: `${where}: too short: ${frames.length} frames decoded at stride ${stride}, a clip needs ${clipFrames}` };
    }
    return { ok: true, frames, info, entry: e };
  } catch (err) {
    if (err instanceof FfmpegMissingError) throw err;
    return { ok: false, entry: e, reason: (err as Error).message };
  }
}

function sameConfig(a: ShardConfig, b: ShardConfig): string[] {
  return (Object.keys(b) as (keyof ShardConfig)[]).filter((k) => a[k] !== b[k]).map((k) => `${k}: ${String(a[k])} (existing) vs ${String(b[k])}`);
}

/** Decode a data set once into shards under `opts.out` (see the module comment). */
export async function prepareShards(opts: PrepareOptions): Promise<PrepareResult> {
  for (const k of ['height', 'width', 'frames', 'stride'] as const) {
    if (!Number.isInteger(opts[k]) || opts[k] < 1) throw new Error(`data prepare: --${k} must be a positive integer, got ${opts[k]}`);
  }
  const warn = opts.warn ?? ((m: string) => console.warn(`lvdm data: ${m}`));
  const list = listVideos({ ...opts, warn });
  const config: ShardConfig = {
    dataset: list.dataset,
    root: list.root,
    split: list.split,
    fold: list.dataset === 'ucf101' ? opts.fold ?? 1 : null,
    csv: opts.csv ? path.resolve(opts.csv) : null,
    height: opts.height,
    width: opts.width,
    frames: opts.frames,
    stride: opts.stride,
    fps: opts.fps ?? null,
    frameFps: opts.frameFps ?? null,
  };
  if (list.entries.some((e) => e.file)) requireFfmpeg(list.entries.find((e) => e.file)?.file ?? list.root);
  const out = path.resolve(opts.out);
  fs.mkdirSync(out, { recursive: true });
  let index: ShardIndex;
  let resumed = false;
  if (fs.existsSync(path.join(out, SHARD_INDEX))) {
    index = readShardIndex(out);
    const diff = sameConfig(index.config, config);
    if (diff.length) throw new Error(`data prepare: ${out} holds shards prepared with other settings (${diff.join('; ')}); use another --out folder`);
    resumed = true;
  } else {
    index = {
      format: 'lvdm-shards', version: 1, config, classNames: list.classNames,
      shards: [], videos: [], skipped: [], missing: [], complete: false, updated: new Date().toISOString(),
    };
  }
  index.missing = list.missing;
  const done = new Set([...index.videos.map((v) => v.id), ...index.skipped.map((s) => s.id)]);
  const todo = list.entries.filter((e) => !done.has(e.id));
  const g: FrameGeometry = { height: opts.height, width: opts.width, fps: opts.fps, frameFps: opts.frameFps };
  const frameBytes = opts.height * opts.width * 3;
  const shardBytes = Math.max(1, Math.floor((opts.shardMB ?? 64) * 1024 * 1024));
  const jobs = Math.max(1, Math.floor(opts.jobs ?? 2));

  // The shard being filled; its videos and skips reach the index only when it is written.
  let chunks: Uint8Array[] = [];
  let pendingVideos: ShardVideo[] = [];
  let pendingSkips: SkipRecord[] = [];
  let shardFrames = 0;
  const flush = (): void => {
    if (shardFrames > 0) {
      const n = index.shards.length;
      const file = `shard-${String(n).padStart(5, '0')}.bin`;
      const buf = Buffer.allocUnsafe(shardFrames * frameBytes);
      let off = 0;
      for (const c of chunks) {
        buf.set(c, off);
        off += c.length;
      }
      writeFileAtomic(path.join(out, file), buf);
      index.shards.push({ file, frames: shardFrames, bytes: buf.length });
    }
    index.videos.push(...pendingVideos);
    index.skipped.push(...pendingSkips);
    index.updated = new Date().toISOString();
    writeFileAtomic(path.join(out, SHARD_INDEX), JSON.stringify(index));
    chunks = [];
    pendingVideos = [];
    pendingSkips = [];
    shardFrames = 0;
  };

  let processed = 0;
  let stopped = false;
  const inflight: Promise<Decoded>[] = [];
  let nextTodo = 0;
  const launch = (): void => {
    while (inflight.length < jobs && nextTodo < todo.length) {
      const p = decodeWhole(todo[nextTodo++], g, opts.stride, opts.frames);
      p.catch(() => undefined); // a rejection (no ffmpeg) surfaces when this one is awaited
      inflight.push(p);
    }
  };
  launch();
  while (inflight.length > 0) {
    const d = await (inflight.shift() as Promise<Decoded>);
    processed++;
    if (d.ok) {
      pendingVideos.push({
        id: d.entry.id,
        label: d.entry.label,
        caption: d.entry.caption,
        shard: index.shards.length,
        frame: shardFrames,
        frames: d.frames.length,
        src: { width: d.info.srcWidth, height: d.info.srcHeight, fps: d.info.srcFps, frames: d.info.srcFrames },
      });
      chunks.push(...d.frames);
      shardFrames += d.frames.length;
    } else {
      pendingSkips.push({ id: d.entry.id, reason: d.reason });
      warn(`skipping ${d.reason}`);
    }
    opts.progress?.({ done: done.size + processed, total: list.entries.length, skipped: index.skipped.length + pendingSkips.length, id: d.entry.id });
    if (shardFrames * frameBytes >= shardBytes) {
      flush();
      if (opts.signal?.aborted) {
        stopped = true;
        break;
      }
    }
    launch();
  }
  if (stopped) {
    await Promise.allSettled(inflight);
    return { index, processed, resumed, finished: false };
  }
  index.complete = true;
  flush();
  return { index, processed, resumed, finished: true };
}

// ---------------------------------------------------------------------------------------------

export interface ShardDatasetOptions {
  /** Clip length L (default: the prepared one). */
  frames?: number;
  /** Frame stride, a multiple of the prepared stride (default: the prepared one). */
  frameStride?: number;
  /**
   * 'random' (default): index = video, the window start drawn from the rng.
   * 'fixed': index = one of the non-overlapping windows of every video (for evaluation).
   */
  windows?: 'random' | 'fixed';
}

/** Reads clips from a folder written by prepareShards (one file read per clip). */
export class ShardDataset implements ClipDataset {
  readonly name: string;
  readonly dir: string;
  readonly index: ShardIndex;
  readonly size: number;
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  readonly frameStride: number;
  readonly windows: 'random' | 'fixed';
  readonly numClasses?: number;
  readonly classNames?: readonly string[];
  /** Videos too short for the requested clip (excluded). */
  readonly tooShort: number;
  private readonly step: number; // stored frames between clip frames
  private readonly videos: ShardVideo[];
  private readonly windowStarts: number[] = []; // fixed: cumulative window counts per video
  private readonly handles = new Map<number, Promise<fs.promises.FileHandle>>();

  constructor(dir: string, opts: ShardDatasetOptions = {}) {
    this.dir = path.resolve(dir);
    this.index = readShardIndex(this.dir);
    const c = this.index.config;
    this.name = `shards:${this.dir}`;
    this.height = c.height;
    this.width = c.width;
    this.frames = opts.frames ?? c.frames;
    this.frameStride = opts.frameStride ?? c.stride;
    this.windows = opts.windows ?? 'random';
    if (!Number.isInteger(this.frames) || this.frames < 1) throw new Error(`${this.name}: frames must be a positive integer, got ${this.frames}`);
    if (!Number.isInteger(this.frameStride) || this.frameStride < 1 || this.frameStride % c.stride !== 0) {
      throw new Error(`${this.name}: frameStride ${this.frameStride} must be a multiple of the prepared stride ${c.stride}`);
    }
    this.step = this.frameStride / c.stride;
    const span = this.spanStored();
    this.videos = this.index.videos.filter((v) => v.frames >= span);
    this.tooShort = this.index.videos.length - this.videos.length;
    if (this.windows === 'fixed') {
      let total = 0;
      for (const v of this.videos) {
        this.windowStarts.push(total);
        total += Math.floor((v.frames - span) / (this.frames * this.step)) + 1;
      }
      this.size = total;
    } else {
      this.size = this.videos.length;
    }
    if (this.size === 0) {
      throw new Error(`${this.name}: no video is long enough for ${this.frames} frames with stride ${this.frameStride} (${this.index.videos.length} prepared)`);
    }
    if (this.index.classNames) {
      this.classNames = this.index.classNames;
      this.numClasses = this.index.classNames.length;
    }
  }

  /** Stored frames one clip covers. */
  private spanStored(): number {
    return (this.frames - 1) * this.step + 1;
  }

  /** Video and stored-frame start of a fixed window. */
  private fixedWindow(index: number): { v: number; start: number } {
    let lo = 0;
    let hi = this.windowStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.windowStarts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return { v: lo, start: (index - this.windowStarts[lo]) * this.frames * this.step };
  }

  private handle(shard: number): Promise<fs.promises.FileHandle> {
    let h = this.handles.get(shard);
    if (!h) {
      const file = path.join(this.dir, this.index.shards[shard].file);
      h = fs.promises.open(file, 'r');
      this.handles.set(shard, h);
    }
    return h;
  }

  /** The clip of prepared video `v` (position in the eligible list) starting at stored frame `start`. */
  async clipAt(v: number, start: number): Promise<ClipSample> {
    const vid = this.videos[v];
    const span = this.spanStored();
    if (start < 0 || start + span > vid.frames) throw new Error(`${this.name}: window ${start}+${span} outside '${vid.id}' (${vid.frames} frames)`);
    const frameBytes = this.height * this.width * 3;
    const buf = new Uint8Array(span * frameBytes);
    const fh = await this.handle(vid.shard);
    const { bytesRead } = await fh.read(buf, 0, buf.length, (vid.frame + start) * frameBytes);
    if (bytesRead !== buf.length) throw new Error(`${this.index.shards[vid.shard].file}: short read for '${vid.id}' (shard truncated?)`);
    let video = buf;
    if (this.step > 1) {
      video = new Uint8Array(this.frames * frameBytes);
      for (let t = 0; t < this.frames; t++) video.set(buf.subarray(t * this.step * frameBytes, (t * this.step + 1) * frameBytes), t * frameBytes);
    }
    return {
      video,
      frames: this.frames,
      height: this.height,
      width: this.width,
      label: vid.label,
      caption: vid.caption,
      key: `${vid.id}@${start * this.index.config.stride}`,
    };
  }

  async get(index: number, rng: Rng): Promise<ClipSample> {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new Error(`${this.name}: index ${index} out of range [0, ${this.size})`);
    if (this.windows === 'fixed') {
      const w = this.fixedWindow(index);
      return this.clipAt(w.v, w.start);
    }
    return this.clipAt(index, rng.int(0, this.videos[index].frames - this.spanStored()));
  }

  /** Close the shard files. */
  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    for (const h of hs) await (await h).close();
  }
}
