import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../lib/nn/rng';
import { listVideos } from '../data/layouts';
import { RawVideoDataset } from '../data/raw';
import { ShardDataset, prepareShards, readShardIndex } from '../data/shards';
import { statsFromIndex, statsFromRaw, formatStats, type DataStats } from '../data/stats';
import { ClipLoader } from '../data/loader';
import { openClipDataset } from '../data/index';
import { command } from '../lib/cli/commands/data';
import { buildUcf, codeColour, decodeIndex, tmpDir, writeFrames } from './data-fixtures';

let root = '';
let ucf = '';
let sky = '';
const quiet = (): void => undefined;
const base = { dataset: 'ucf101' as const, split: 'train' as const, height: 24, width: 24, frames: 4, stride: 2, shardMB: 0.03, warn: quiet };

before(() => {
  root = tmpDir('shards');
  ucf = path.join(root, 'ucf');
  buildUcf(ucf);
  sky = path.join(root, 'sky');
  writeFrames(path.join(sky, 'train', 'v1', 'v1_1'), 12, 40, 30);
  writeFrames(path.join(sky, 'train', 'v1', 'v1_2'), 9, 40, 30);
  writeFrames(path.join(sky, 'train', 'v2', 'v2_1'), 3, 40, 30);
  writeFrames(path.join(sky, 'train', 'v3', 'v3_1'), 8, 40, 30);
  fs.writeFileSync(path.join(sky, 'train', 'v3', 'v3_1', '00002.jpg'), Buffer.alloc(0));
});

after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

function indices(clip: Uint8Array, frames: number, size: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < frames; t++) {
    const p = ((t * size + size / 2) * size + size / 2) * 3;
    const i = decodeIndex(clip[p], clip[p + 1], clip[p + 2]);
    const c = codeColour(i);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(clip[p + k] - c[k]) <= 6);
    out.push(i);
  }
  return out;
}

test('prepare UCF-101: shards + index with labels, captions, source metadata; broken files skipped once each and recorded', async () => {
  const out = path.join(root, 'out-a');
  const warnings: string[] = [];
  const r = await prepareShards({ ...base, root: ucf, out, warn: (m) => void warnings.push(m) });
  assert.equal(r.finished, true);
  assert.equal(r.resumed, false);
  const idx = readShardIndex(out);
  assert.equal(idx.complete, true);
  assert.deepEqual(idx.classNames, ['ApplyEyeMakeup', 'Basketball', 'YoYo']);
  assert.equal(idx.videos.length, 6);
  for (const v of idx.videos) {
    assert.equal(v.frames, 15); // 30 frames, every 2nd kept
    assert.deepEqual(v.src, { width: 64, height: 48, fps: 25, frames: 30 });
    assert.equal(v.caption, `a video of ${['apply eye makeup', 'basketball', 'yo yo'][v.label as number]}`);
  }
  assert.deepEqual(idx.videos.map((v) => v.label), [0, 0, 1, 1, 2, 2]);
  assert.ok(idx.shards.length >= 3, `small shards expected, got ${idx.shards.length}`);
  const total = idx.shards.reduce((a, s) => a + s.frames, 0);
  assert.equal(total, 90);
  for (const s of idx.shards) assert.equal(fs.statSync(path.join(out, s.file)).size, s.frames * 24 * 24 * 3);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.includes('tmp')), []);
  // Zero-byte, truncated (probes 30 frames, decodes about 12) and too short (5 frames < 7): one warning each.
  assert.deepEqual(idx.skipped.map((s) => s.id), ['YoYo/v_YoYo_g03_c02.avi', 'YoYo/v_YoYo_g03_c03.avi', 'YoYo/v_YoYo_g03_c04.avi']);
  assert.match(idx.skipped[0].reason, /not a readable video/);
  assert.match(idx.skipped[1].reason, /truncated or damaged: decoded \d+ of 15 frames/);
  assert.match(idx.skipped[2].reason, /too short: 5 frames, a clip of 4 frames with stride 2 needs 7/);
  assert.equal(warnings.filter((w) => w.startsWith('skipping')).length, 3);
  assert.deepEqual(idx.missing.map((m) => m.id), ['YoYo/v_YoYo_g04_c09.avi']);
});

test('ShardDataset: windows from the rng with the prepared stride, identical to raw decoding; other strides; fixed windows', async () => {
  const out = path.join(root, 'out-a');
  const ds = new ShardDataset(out);
  try {
    assert.deepEqual([ds.size, ds.frames, ds.frameStride, ds.height, ds.width, ds.numClasses], [6, 4, 2, 24, 24, 3]);
    const list = listVideos({ dataset: 'ucf101', root: ucf, split: 'train', warn: quiet });
    const raw = new RawVideoDataset(list, { frames: 4, frameStride: 2, height: 24, width: 24, warn: quiet });
    const rng = new Rng(9);
    for (let i = 0; i < 6; i++) {
      const s = new Rng(0);
      s.setState(rng.state());
      const start = s.int(0, 15 - 4);
      const clip = await ds.get(i, rng);
      assert.equal(clip.key, `${ds.index.videos[i].id}@${2 * start}`);
      assert.deepEqual(indices(clip.video, 4, 24), [0, 2, 4, 6].map((d) => 2 * start + d));
      assert.equal(clip.label, ds.index.videos[i].label);
      const rawClip = await raw.clipAt(i, 2 * start);
      assert.deepEqual(clip.video, rawClip.video, 'prepared and raw decoding agree exactly');
    }
    // A stride that is a multiple of the prepared one reads every other stored frame.
    const ds4 = new ShardDataset(out, { frames: 3, frameStride: 4 });
    const c4 = await ds4.get(0, new Rng(1));
    const s4 = Number(c4.key.split('@')[1]);
    assert.deepEqual(indices(c4.video, 3, 24), [s4, s4 + 4, s4 + 8]);
    await ds4.close();
    assert.throws(() => new ShardDataset(out, { frameStride: 3 }), /frameStride 3 must be a multiple of the prepared stride 2/);
    assert.throws(() => new ShardDataset(out, { frames: 16 }), /no video is long enough for 16 frames with stride 2/);
    // Fixed windows: floor((15 - 4) / 4) + 1 = 3 non-overlapping clips per video.
    const fixed = new ShardDataset(out, { windows: 'fixed' });
    assert.equal(fixed.size, 18);
    const f4 = await fixed.get(4, new Rng(0));
    assert.equal(f4.key, `${ds.index.videos[1].id}@8`);
    assert.deepEqual(indices(f4.video, 4, 24), [8, 10, 12, 14]);
    await fixed.close();
    // Through the loader: labels and captions come along.
    const loader = new ClipLoader(ds, { batchSize: 4, seed: 1 });
    const b = await loader.next();
    assert.equal(b.video.length, 4 * 4 * 24 * 24 * 3);
    assert.equal(b.labels?.length, 4);
    assert.ok(b.captions?.every((c) => c.startsWith('a video of ')));
    const opened = openClipDataset({ source: 'shards', root: out, frames: 4, height: 24, width: 24, frameStride: 2 });
    assert.equal(opened.size, 6);
    assert.throws(() => openClipDataset({ source: 'shards', root: out, frames: 4, height: 32, width: 32 }), /prepared at 24x24, the config asks for 32x32/);
    assert.throws(() => new ShardDataset(path.join(root, 'nope')), /index\.json not found: .* is not a prepared data folder/);
  } finally {
    await ds.close();
  }
});

test('prepare is resumable: an interrupted run continued gives the same shards as an uninterrupted one', async () => {
  const full = readShardIndex(path.join(root, 'out-a'));
  const out = path.join(root, 'out-b');
  const stop = new AbortController();
  const first = await prepareShards({ ...base, root: ucf, out, signal: stop.signal, progress: () => stop.abort() });
  assert.equal(first.finished, false);
  const partial = readShardIndex(out);
  assert.equal(partial.complete, false);
  assert.ok(partial.videos.length >= 1 && partial.videos.length < 6, `partial run stored ${partial.videos.length} videos`);
  assert.equal(statsFromIndex(out).prepared?.complete, false);
  const second = await prepareShards({ ...base, root: ucf, out });
  assert.equal(second.resumed, true);
  assert.equal(second.finished, true);
  assert.equal(second.processed, 9 - partial.videos.length - partial.skipped.length);
  const done = readShardIndex(out);
  assert.deepEqual(done.videos, full.videos);
  assert.deepEqual(done.shards, full.shards);
  assert.deepEqual(done.skipped, full.skipped);
  for (const s of done.shards) assert.ok(fs.readFileSync(path.join(out, s.file)).equals(fs.readFileSync(path.join(root, 'out-a', s.file))));
  // A third run finds nothing to do; other settings on the same folder are refused.
  assert.equal((await prepareShards({ ...base, root: ucf, out })).processed, 0);
  await assert.rejects(prepareShards({ ...base, root: ucf, out, stride: 3 }), /holds shards prepared with other settings \(stride: 2 \(existing\) vs 3\)/);
});

test('stats: prepared and raw (probe, and full decode with verify) agree on videos, clips, classes, skipped', async () => {
  const p = statsFromIndex(path.join(root, 'out-a'));
  assert.deepEqual([p.videos, p.clips, p.skipped.length, p.missing.length], [6, 18, 3, 1]);
  assert.deepEqual(p.classes, { count: 3, videosPerClass: { ApplyEyeMakeup: 2, Basketball: 2, YoYo: 2 } });
  assert.deepEqual(p.resolutions, { '64x48': 6 });
  assert.deepEqual(p.fps, { '25': 6 });
  assert.deepEqual(p.prepared, { height: 24, width: 24, shards: p.prepared?.shards, bytes: 90 * 24 * 24 * 3, storedFrames: 90, complete: true });
  const raw = await statsFromRaw({ dataset: 'ucf101', root: ucf, frames: 4, stride: 2, warn: quiet });
  // Probing alone cannot see the truncation: the truncated file counts as a 30-frame video.
  assert.deepEqual([raw.videos, raw.skipped.length, raw.clips], [7, 2, 21]);
  assert.deepEqual(raw.frames, { total: 210, min: 30, max: 30, mean: 30 });
  const verified = await statsFromRaw({ dataset: 'ucf101', root: ucf, frames: 4, stride: 2, verify: true, warn: quiet });
  assert.deepEqual([verified.videos, verified.skipped.length, verified.clips], [6, 3, 18]);
  const text = formatStats(p);
  assert.match(text, /videos\s+6/);
  assert.match(text, /clips\s+18 non-overlapping clips of 4 frames, stride 2/);
  assert.match(text, /skipped\s+3/);
});

async function cli(args: string[], values: Record<string, string | boolean>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    const code = await command.run(values, args);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

test('lvdm data prepare|stats on Sky frame folders; clear errors for bad arguments and a missing ffmpeg', async () => {
  const out = path.join(root, 'sky-out');
  const r = await cli(['prepare'], { dataset: 'sky', root: sky, out, size: '16', frames: '4', stride: '2' });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /prepared .*sky-out: 4 video\(s\) processed/);
  assert.match(r.err, /skipping .*v2_1: too short: 3 frames/);
  assert.match(r.err, /skipping .*00002\.jpg: empty image file/);
  const s = await cli(['stats', out], { json: true });
  assert.equal(s.code, 0, s.err);
  const j = JSON.parse(s.out) as DataStats;
  assert.deepEqual([j.dataset, j.videos, j.skipped.length, j.resolutions['40x30'], j.prepared?.width], ['sky', 2, 2, 2, 16]);
  assert.equal(j.clips, 1 + 1); // v1_1: 6 stored frames, v1_2: 5 -> one clip of 4 each
  const rawStats = await cli(['stats'], { dataset: 'sky', root: sky, frames: '4', stride: '2' });
  assert.equal(rawStats.code, 0);
  assert.match(rawStats.out, /videos\s+3/); // probing reads headers only: the empty JPEG in v3_1 is found by decoding
  const bad = await cli(['prepare'], { root: sky, out });
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--dataset is required \(one of ucf101, sky, taichi, webvid, folder\)/);
  assert.match((await cli(['prepare'], { dataset: 'sky', root: sky, out, size: '0' })).err, /--size must be S or WxH/);
  const none = await cli([], {});
  assert.equal(none.code, 2);
  assert.match(none.err, /expected a subcommand, 'prepare' or 'stats'/);
  const saved = process.env.LVDM_FFPROBE;
  process.env.LVDM_FFPROBE = '/nonexistent/ffprobe';
  try {
    const nf = await cli(['prepare'], { dataset: 'ucf101', root: ucf, out: path.join(root, 'never'), size: '16', frames: '2' });
    assert.equal(nf.code, 1);
    assert.match(nf.err, /\/nonexistent\/ffprobe was not found or does not run \(needed to decode .*\.avi\)/);
    assert.equal(fs.existsSync(path.join(root, 'never')), false, 'fails before creating the output folder');
  } finally {
    if (saved === undefined) delete process.env.LVDM_FFPROBE;
    else process.env.LVDM_FFPROBE = saved;
  }
});
