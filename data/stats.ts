/**
 * `lvdm data stats`: what a data set holds (videos, clips, classes, frames, resolutions, frame
 * rates) and what was skipped, for a prepared shard folder (from its index) or for raw videos
 * (listing + ffprobe of every file; `verify` also decodes every file to find truncation).
 */
import { type ListOptions, type SkipRecord, listVideos } from './layouts';
import { type ShardIndex, readShardIndex } from './shards';
import { FfmpegMissingError } from './ffmpeg';
import { type EntryInfo, entryInfo, readEntryFrames } from './video-source';

export interface DataStats {
  source: 'prepared' | 'raw';
  dataset: string;
  root: string;
  split: string;
  /** Usable videos. */
  videos: number;
  /** Clip settings the clip count refers to. */
  clip: { frames: number; stride: number };
  /** Non-overlapping clips of L frames with stride K over all usable videos. */
  clips: number;
  classes?: { count: number; videosPerClass: Record<string, number> };
  /** Frames per usable video, in the (resampled) timeline. */
  frames: { total: number; min: number; max: number; mean: number };
  /** Source resolutions 'WxH' -> videos. */
  resolutions: Record<string, number>;
  /** Source frame rates -> videos. */
  fps: Record<string, number>;
  skipped: SkipRecord[];
  missing: SkipRecord[];
  prepared?: { height: number; width: number; shards: number; bytes: number; storedFrames: number; complete: boolean };
}

function clipsIn(frames: number, L: number, K: number): number {
  const span = (L - 1) * K + 1;
  return frames < span ? 0 : Math.floor((frames - span) / (L * K)) + 1;
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

function frameSummary(counts: number[]): DataStats['frames'] {
  if (counts.length === 0) return { total: 0, min: 0, max: 0, mean: 0 };
  const total = counts.reduce((a, b) => a + b, 0);
  return { total, min: Math.min(...counts), max: Math.max(...counts), mean: total / counts.length };
}

function fpsKey(fps: number): string {
  return String(Math.round(fps * 100) / 100);
}

/** Stats of a prepared folder; clip counts for (frames, stride) default to the prepared ones. */
export function statsFromIndex(dir: string, clip?: { frames?: number; stride?: number }): DataStats {
  const idx: ShardIndex = readShardIndex(dir);
  const c = idx.config;
  const L = clip?.frames ?? c.frames;
  const K = clip?.stride ?? c.stride;
  const resolutions: Record<string, number> = {};
  const fps: Record<string, number> = {};
  const perClass: Record<string, number> = {};
  const timeline: number[] = [];
  let clips = 0;
  let stored = 0;
  for (const v of idx.videos) {
    bump(resolutions, `${v.src.width}x${v.src.height}`);
    bump(fps, fpsKey(v.src.fps));
    if (idx.classNames && v.label !== undefined) bump(perClass, idx.classNames[v.label]);
    const t = v.frames * c.stride; // timeline frames covered (up to K - 1 short)
    timeline.push(t);
    stored += v.frames;
    clips += K % c.stride === 0 ? clipsIn(v.frames, L, K / c.stride) : 0;
  }
  return {
    source: 'prepared',
    dataset: c.dataset,
    root: c.root,
    split: c.split,
    videos: idx.videos.length,
    clip: { frames: L, stride: K },
    clips,
    classes: idx.classNames ? { count: idx.classNames.length, videosPerClass: perClass } : undefined,
    frames: frameSummary(timeline),
    resolutions,
    fps,
    skipped: idx.skipped,
    missing: idx.missing,
    prepared: {
      height: c.height,
      width: c.width,
      shards: idx.shards.length,
      bytes: idx.shards.reduce((a, s) => a + s.bytes, 0),
      storedFrames: stored,
      complete: idx.complete,
    },
  };
}

export interface RawStatsOptions extends ListOptions {
  frames: number;
  stride: number;
  fps?: number;
  frameFps?: number;
  /** Decode every video fully to find truncated ones (slow). */
  verify?: boolean;
  /** Videos probed concurrently (default 4). */
  jobs?: number;
}

/** Stats of raw videos: listing plus ffprobe (and a full decode with `verify`). */
export async function statsFromRaw(opts: RawStatsOptions): Promise<DataStats> {
  const warn = opts.warn ?? ((m: string) => console.warn(`lvdm data: ${m}`));
  const list = listVideos({ ...opts, warn });
  const g = { fps: opts.fps, frameFps: opts.frameFps, height: 8, width: 8 };
  const span = (opts.frames - 1) * opts.stride + 1;
  const results: ({ info: EntryInfo } | { reason: string })[] = new Array(list.entries.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.entries.length) {
      const i = next++;
      const e = list.entries[i];
      try {
        const info = await entryInfo(e, g);
        if (info.frames < span) throw new Error(`${e.file ?? e.frameDir}: too short: ${info.frames} frames, a clip of ${opts.frames} frames with stride ${opts.stride} needs ${span}`);
        if (opts.verify) {
          const r = await readEntryFrames(e, info, g, { start: 0, stride: 1 }, () => undefined);
          if (r.frames < info.frames - Math.max(1, Math.floor(0.02 * info.frames))) {
            throw new Error(`${e.file ?? e.frameDir}: truncated or damaged: decoded ${r.frames} of ${info.frames} frames`);
          }
          info.frames = Math.min(info.frames, r.frames);
        }
        results[i] = { info };
      } catch (err) {
        if (err instanceof FfmpegMissingError) throw err;
        results[i] = { reason: (err as Error).message };
        warn(`skipping ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.jobs ?? 4) }, worker));
  const resolutions: Record<string, number> = {};
  const fps: Record<string, number> = {};
  const perClass: Record<string, number> = {};
  const counts: number[] = [];
  const skipped: SkipRecord[] = [];
  let clips = 0;
  results.forEach((r, i) => {
    const e = list.entries[i];
    if ('reason' in r) {
      skipped.push({ id: e.id, reason: r.reason });
      return;
    }
    bump(resolutions, `${r.info.srcWidth}x${r.info.srcHeight}`);
    bump(fps, fpsKey(r.info.srcFps));
    if (e.className) bump(perClass, e.className);
    counts.push(r.info.frames);
    clips += clipsIn(r.info.frames, opts.frames, opts.stride);
  });
  return {
    source: 'raw',
    dataset: list.dataset,
    root: list.root,
    split: list.split,
    videos: counts.length,
    clip: { frames: opts.frames, stride: opts.stride },
    clips,
    classes: list.classNames ? { count: list.classNames.length, videosPerClass: perClass } : undefined,
    frames: frameSummary(counts),
    resolutions,
    fps,
    skipped,
    missing: list.missing,
  };
}

function top(m: Record<string, number>, n = 6): string {
  const e = Object.entries(m).sort((a, b) => b[1] - a[1]);
  const s = e.slice(0, n).map(([k, v]) => `${k} (${v})`).join(', ');
  return e.length > n ? `${s}, ... ${e.length - n} more` : s || '-';
}

/** Human-readable report. */
export function formatStats(s: DataStats): string {
  const lines = [
    `data set     ${s.dataset} (${s.source}) ${s.root}  split ${s.split}`,
    `videos       ${s.videos}`,
    `clips        ${s.clips} non-overlapping clips of ${s.clip.frames} frames, stride ${s.clip.stride}`,
  ];
  if (s.classes) {
    const per = Object.values(s.classes.videosPerClass);
    lines.push(`classes      ${s.classes.count} (videos per class: ${per.length ? `${Math.min(...per)}-${Math.max(...per)}` : '-'})`);
  }
  lines.push(
    `frames       ${s.frames.total} in total, ${s.frames.min}-${s.frames.max} per video (mean ${s.frames.mean.toFixed(1)})`,
    `resolutions  ${top(s.resolutions)}`,
    `fps          ${top(s.fps)}`,
  );
  if (s.prepared) {
    const p = s.prepared;
    lines.push(
      `prepared     ${p.width}x${p.height}, ${p.storedFrames} stored frames in ${p.shards} shard(s), ${(p.bytes / 2 ** 20).toFixed(1)} MiB${p.complete ? '' : ' (incomplete: rerun prepare to continue)'}`,
    );
  }
  lines.push(`skipped      ${s.skipped.length}`);
  for (const k of s.skipped.slice(0, 20)) lines.push(`  - ${k.reason}`);
  if (s.skipped.length > 20) lines.push(`  ... ${s.skipped.length - 20} more (see --json)`);
  lines.push(`missing      ${s.missing.length}${s.missing.length ? ` (listed but not on disk, e.g. ${s.missing[0].id})` : ''}`);
  return lines.join('\n');
}
