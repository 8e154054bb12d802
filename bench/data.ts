/**
 * Data throughput (clips/s): synthetic rendering, prepared shards, raw videos through ffmpeg,
 * JPEG frame folders decoded in process, and `data prepare` itself. Fixtures are rendered from
 * the synthetic taichi family at 320x240 (UCF-101's size) and encoded like UCF-101 (mpeg4 avi),
 * and as 640x360 JPEG frames (Sky Time-lapse's size). Raw-video figures are for an idle main
 * thread; the worker variant shows the cost of moving decoding off the training thread.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type BenchModule, type BenchResult } from './types';
import { ClipLoader } from '../data/loader';
import { listVideos } from '../data/layouts';
import { RawVideoDataset } from '../data/raw';
import { ShardDataset, prepareShards } from '../data/shards';
import { SYNTHETIC_FAMILIES, SyntheticDataset, renderSyntheticFrames } from '../data/synthetic';
import type { ClipDataset } from '../data/types';
import { WorkerClipDataset } from '../data/worker';

const L = 16;
const K = 2;
const S = 64;

/**
 * Clips per second through a ClipLoader (batch 4, 4 concurrent reads), after one warm-up batch.
 * Prefetch is off so that batches read ahead during the warm-up do not flatter the figure.
 */
async function loaderRate(ds: ClipDataset, batches: number): Promise<{ clipsPerS: number; msPerClip: number }> {
  const loader = new ClipLoader(ds, { batchSize: 4, seed: 0, prefetch: 0 });
  await loader.next();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < batches; i++) await loader.next();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  loader.close();
  return { clipsPerS: (batches * 4 * 1000) / ms, msPerClip: ms / (batches * 4) };
}

function ffmpegAvailable(): boolean {
  const r = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function writeFixture(dir: string, videos: number, frames: number): void {
  for (let v = 0; v < videos; v++) {
    const raw = renderSyntheticFrames({ family: 'taichi', seed: 1, index: v, height: 240, width: 320 }, 0, frames);
    const cls = `Class${v % 4}`;
    fs.mkdirSync(path.join(dir, 'videos', cls), { recursive: true });
    const file = path.join(dir, 'videos', cls, `v_${cls}_g01_c${String(v).padStart(2, '0')}.avi`);
    const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '320x240', '-r', '25', '-i', 'pipe:0',
      '-c:v', 'mpeg4', '-q:v', '4', '-vtag', 'XVID', file], { input: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`bench/data: ffmpeg failed: ${r.stderr?.toString()}`);
    if (v < 2) {
      // Sky-like frame folder: 640x360 JPEGs (Sky Time-lapse's size).
      const sky = renderSyntheticFrames({ family: 'taichi', seed: 2, index: v, height: 360, width: 640 }, 0, 40);
      const jd = path.join(dir, 'sky', 'train', `v${v}`, `v${v}_1`);
      fs.mkdirSync(jd, { recursive: true });
      spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '640x360', '-r', '25', '-i', 'pipe:0',
        '-q:v', '2', path.join(jd, '%05d.jpg')], { input: Buffer.from(sky.buffer, sky.byteOffset, sky.byteLength) });
    }
  }
}

export const run: BenchModule = async ({ quick }) => {
  const results: BenchResult[] = [];
  const batches = quick ? 3 : 15;
  for (const family of SYNTHETIC_FAMILIES) {
    const ds = new SyntheticDataset({ family, size: 64, frames: L, height: S, width: S, frameStride: K });
    const r = await loaderRate(ds, batches);
    results.push({
      name: `data-synthetic-${family}`,
      timings_ms: { per_clip_ms: r.msPerClip, per_frame_ms: r.msPerClip / L },
      extra: { clips_per_s: r.clipsPerS, clip: `${L}x${S}x${S} stride ${K}` },
    });
  }
  if (!ffmpegAvailable()) {
    results.push({ name: 'data-raw-video', timings_ms: {}, note: 'skipped: ffmpeg not found' });
    return results;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-bench-data-'));
  try {
    const videos = quick ? 4 : 12;
    const frames = quick ? 60 : 150;
    writeFixture(dir, videos, frames);
    const list = listVideos({ dataset: 'folder', root: path.join(dir, 'videos') });
    // Raw videos: one ffmpeg process per clip, in process and in 1 worker thread.
    const raw = new RawVideoDataset(list, { frames: L, frameStride: K, height: S, width: S });
    const rr = await loaderRate(raw, batches);
    results.push({
      name: 'data-raw-video',
      timings_ms: { per_clip_ms: rr.msPerClip },
      extra: { clips_per_s: rr.clipsPerS, source: '320x240 mpeg4 avi, 25 fps', clip: `${L}x${S}x${S} stride ${K}` },
    });
    const wds = await WorkerClipDataset.open({ source: 'folder', root: path.join(dir, 'videos'), frames: L, frameStride: K, height: S, width: S }, 1);
    try {
      const wr = await loaderRate(wds, batches);
      results.push({ name: 'data-raw-video-worker', timings_ms: { per_clip_ms: wr.msPerClip }, extra: { clips_per_s: wr.clipsPerS, workers: 1 } });
    } finally {
      await wds.close();
    }
    // JPEG frame folders decoded in process (jpeg-js).
    const skyList = listVideos({ dataset: 'sky', root: path.join(dir, 'sky'), split: 'train' });
    const sky = new RawVideoDataset(skyList, { frames: L, frameStride: K, height: S, width: S });
    const sr = await loaderRate(sky, quick ? 1 : 3);
    results.push({
      name: 'data-raw-jpeg-frames',
      timings_ms: { per_clip_ms: sr.msPerClip },
      extra: { clips_per_s: sr.clipsPerS, source: '640x360 JPEG frames' },
    });
    // Prepare once, then read shards.
    const out = path.join(dir, 'shards');
    const t0 = process.hrtime.bigint();
    await prepareShards({ dataset: 'folder', root: path.join(dir, 'videos'), out, height: S, width: S, frames: L, stride: K, warn: () => undefined });
    const prepMs = Number(process.hrtime.bigint() - t0) / 1e6;
    results.push({
      name: 'data-prepare',
      timings_ms: { total_ms: prepMs, per_video_ms: prepMs / videos },
      extra: { videos_per_s: (videos * 1000) / prepMs, source_frames_per_s: (videos * frames * 1000) / prepMs },
    });
    const shards = new ShardDataset(out);
    try {
      const sh = await loaderRate(shards, batches * 4);
      results.push({
        name: 'data-shards',
        timings_ms: { per_clip_ms: sh.msPerClip },
        extra: { clips_per_s: sh.clipsPerS, clip: `${L}x${S}x${S} stride ${K}`, includes: 'read + uint8->float32 batch' },
      });
    } finally {
      await shards.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
};
