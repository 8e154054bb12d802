import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../lib/nn/rng';
import { decodeVideo, probeVideo } from '../data/ffmpeg';
import { listVideos } from '../data/layouts';
import { RawVideoDataset } from '../data/raw';
import { entryInfo, readEntryWindow, shrinkFactor } from '../data/video-source';
import { openClipDataset } from '../data/index';
import { UCF_CLASSES, bandedCoded, buildUcf, codeColour, decodeIndex, tmpDir, writeFrames, writeVideo } from './data-fixtures';

let root = '';
const TOL = 6; // codec tolerance on solid colours (mpeg4 -q:v 1, JPEG -q:v 1 via YUV)

before(() => {
  root = tmpDir('video');
  buildUcf(path.join(root, 'ucf'));
  // Sky Time-lapse: root/{train,test}/<video>/<clip>/*.jpg (48x32 frames).
  const sky = path.join(root, 'sky');
  writeFrames(path.join(sky, 'train', 'vidA', 'vidA_1'), 20, 48, 32, { pattern: 'vidA_1_frames_%08d.jpg', start: 1 });
  writeFrames(path.join(sky, 'train', 'vidA', 'vidA_2'), 12, 48, 32, { pattern: 'vidA_2_frames_%08d.jpg', start: 1 });
  writeFrames(path.join(sky, 'train', 'vidB', 'vidB_1'), 4, 48, 32); // too short for 4 frames at stride 2
  writeFrames(path.join(sky, 'train', 'vidC', 'vidC_1'), 10, 48, 32);
  fs.writeFileSync(path.join(sky, 'train', 'vidC', 'vidC_1', '00003.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 1, 2]));
  writeFrames(path.join(sky, 'test', 'vidD', 'vidD_1'), 9, 48, 32);
  // Taichi: videos of several containers plus a FOMM-style frame folder named like a video.
  const tai = path.join(root, 'taichi');
  writeVideo(path.join(tai, 'train', 'a.mp4'), 24, 32, 32);
  writeVideo(path.join(tai, 'train', 'sub', 'b.webm'), 16, 32, 32);
  writeFrames(path.join(tai, 'train', 'c.mp4'), 14, 32, 32, { ext: 'png', pattern: '%07d.png' });
  writeVideo(path.join(tai, 'test', 'd.avi'), 10, 32, 32);
  // WebVid: CSV (videoid, name, page_dir) + videos/<page_dir>/<videoid>.mp4; one row without a file.
  const wv = path.join(root, 'webvid');
  writeVideo(path.join(wv, 'videos', '000001_000050', '1001.mp4'), 12, 40, 24);
  writeVideo(path.join(wv, 'videos', '000001_000050', '1002.mp4'), 12, 40, 24);
  fs.writeFileSync(
    path.join(wv, 'results_2M_val.csv'),
    'videoid,contentUrl,duration,page_dir,name\n' +
      '1001,https://x/1001.mp4,PT00H00M12S,000001_000050,"A dog, running on the beach"\n' +
      '1002,https://x/1002.mp4,PT00H00M12S,000001_000050,"Clouds ""timelapse"" over hills"\n' +
      '1003,https://x/1003.mp4,PT00H00M12S,000001_000050,Missing video\n',
  );
  // Plain folder: class subfolders, a sidecar caption.
  const fo = path.join(root, 'folder');
  writeVideo(path.join(fo, 'cats', 'x.mp4'), 10, 32, 24);
  fs.writeFileSync(path.join(fo, 'cats', 'x.txt'), 'a cat jumping\n');
  writeVideo(path.join(fo, 'dogs', 'y.avi'), 10, 32, 24);
  // Long video for the seek path (> 10 s at 25 fps); a large one that ffmpeg shrinks first.
  writeVideo(path.join(root, 'long.avi'), 300, 16, 16);
  writeVideo(path.join(root, 'big.mp4'), 6, 256, 192, { paint: bandedCoded });
});

after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** Frame indices of a decoded clip [T, H, W, 3], read from pixel (x, y), checking the colour is within TOL. */
function indicesOf(clip: Uint8Array, frames: number, h: number, w: number, x: number, y: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < frames; t++) {
    const p = ((t * h + y) * w + x) * 3;
    const idx = decodeIndex(clip[p], clip[p + 1], clip[p + 2]);
    const c = codeColour(idx);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(clip[p + k] - c[k]) <= TOL, `frame ${t}: pixel ${clip[p + k]} vs code ${c[k]} of index ${idx}`);
    out.push(idx);
  }
  return out;
}

test('ffprobe metadata and streamed ffmpeg decoding: window positions and stride, fps resampling, seeking', async () => {
  const file = path.join(root, 'ucf', 'UCF-101', 'Basketball', 'v_Basketball_g03_c01.avi');
  const info = await probeVideo(file);
  assert.deepEqual([info.width, info.height, info.fps, info.frames, info.codec], [64, 48, 25, 30, 'mpeg4']);
  const got: number[] = [];
  const r = await decodeVideo(file, { width: 64, height: 48, start: 3, stride: 4, count: 5 }, (rgb) => {
    const p = (10 * 64 + 32) * 3; // centre band carries the code
    got.push(decodeIndex(rgb[p], rgb[p + 1], rgb[p + 2]));
  });
  assert.equal(r.frames, 5);
  assert.deepEqual(got, [3, 7, 11, 15, 19]);
  // fps resampling 25 -> 12.5: timeline frame j is source frame 2j.
  const half: number[] = [];
  await decodeVideo(file, { width: 64, height: 48, fps: 12.5, start: 2, stride: 3, count: 3 }, (rgb) => {
    const p = (10 * 64 + 32) * 3;
    half.push(decodeIndex(rgb[p], rgb[p + 1], rgb[p + 2]));
  });
  assert.deepEqual(half, [4, 10, 16]);
  // Past 10 s the decoder seeks; the frames must still be exact.
  const long = path.join(root, 'long.avi');
  const li = await probeVideo(long);
  assert.equal(li.frames, 300);
  const far: number[] = [];
  await decodeVideo(long, { width: 16, height: 16, start: 281, stride: 3, count: 5, indexFps: 25 }, (rgb) => far.push(decodeIndex(rgb[0], rgb[1], rgb[2])));
  assert.deepEqual(far, [281, 284, 287, 290, 293]);
  // Running out of frames returns fewer.
  const end = await decodeVideo(file, { width: 64, height: 48, start: 25, stride: 2, count: 5 }, () => undefined);
  assert.equal(end.frames, 3);
  await assert.rejects(probeVideo(path.join(root, 'ucf', 'UCF-101', 'YoYo', 'v_YoYo_g03_c02.avi')), /v_YoYo_g03_c02\.avi: not a readable video/);
});

test('large sources are box-shrunk by ffmpeg first, with the same crop geometry and colours', async () => {
  assert.equal(shrinkFactor(256, 192, 24, 24), 4); // scale 1/8: 4 leaves 2x the target
  assert.equal(shrinkFactor(320, 240, 64, 64), 1);
  assert.equal(shrinkFactor(1920, 1080, 64, 64), 8);
  assert.equal(shrinkFactor(251, 190, 24, 24), 1); // no common factor
  assert.equal(shrinkFactor(250, 190, 24, 24), 2);
  const e = { id: 'big.mp4', file: path.join(root, 'big.mp4') };
  const info = await entryInfo(e, {});
  const clip = await readEntryWindow(e, info, { height: 24, width: 24 }, 1, 3, 2);
  assert.deepEqual(indicesOf(clip, 3, 24, 24, 12, 12), [1, 3, 5]);
  // 256x192 -> 24x24: band edges (x = 64, 192) land at output x = 4 and 20, as for the 64x48 source.
  const px = (x: number): number[] => Array.from(clip.subarray((7 * 24 + x) * 3, (7 * 24 + x) * 3 + 3));
  for (const x of [0, 2]) assert.ok(px(x)[0] > 220 && px(x)[2] < 40, `red at ${x}: ${px(x)}`);
  for (const x of [21, 23]) assert.ok(px(x)[2] > 220 && px(x)[0] < 40, `blue at ${x}: ${px(x)}`);
  for (const x of [6, 17]) assert.deepEqual(px(x).map((v, k) => Math.abs(v - codeColour(1)[k]) <= TOL), [true, true, true]);
});

test('UCF-101: splits, folds, class indices from classInd.txt, captions, missing files reported', () => {
  const warnings: string[] = [];
  const warn = (m: string): void => void warnings.push(m);
  const ucf = path.join(root, 'ucf');
  const train = listVideos({ dataset: 'ucf101', root: ucf, split: 'train', fold: 1, warn });
  assert.deepEqual(train.classNames, UCF_CLASSES);
  assert.equal(train.entries.length, 6 + 3); // g03, g04 of 3 classes + three broken YoYo files (decoded later)
  assert.equal(train.missing.length, 1);
  assert.match(train.missing[0].id, /v_YoYo_g04_c09\.avi/);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /1 listed video\(s\) not found on disk/);
  const bb = train.entries.find((e) => e.id === 'Basketball/v_Basketball_g03_c01.avi');
  assert.deepEqual([bb?.label, bb?.className, bb?.caption], [1, 'Basketball', 'a video of basketball']);
  assert.ok(bb?.file?.endsWith(path.join('UCF-101', 'Basketball', 'v_Basketball_g03_c01.avi')));
  const test1 = listVideos({ dataset: 'ucf101', root: ucf, split: 'test', fold: 1, warn });
  assert.deepEqual(test1.entries.map((e) => e.id).filter((id) => id.startsWith('YoYo')), ['YoYo/v_YoYo_g01_c01.avi', 'YoYo/v_YoYo_g02_c01.avi']);
  assert.deepEqual(test1.entries.map((e) => e.label), [0, 0, 1, 1, 2, 2]);
  assert.equal(test1.entries[0].caption, 'a video of apply eye makeup');
  assert.equal(listVideos({ dataset: 'ucf101', root: ucf, split: 'all', fold: 1, warn }).entries.length, 15);
  const fold2 = listVideos({ dataset: 'ucf101', root: ucf, split: 'test', fold: 2, warn });
  assert.deepEqual(fold2.entries.filter((e) => e.label === 0).map((e) => e.id), ['ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi', 'ApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi']);
  // The UCF-101 folder itself as root finds the lists beside it.
  assert.equal(listVideos({ dataset: 'ucf101', root: path.join(ucf, 'UCF-101'), split: 'test', fold: 2, warn }).entries.length, 6);
});

test('UCF-101 errors: missing split lists, missing fold list, class folder not in classInd.txt, empty data set', () => {
  const warn = (): void => undefined;
  const bad = tmpDir('ucfbad');
  try {
    fs.mkdirSync(path.join(bad, 'UCF-101', 'Basketball'), { recursive: true });
    assert.throws(() => listVideos({ dataset: 'ucf101', root: bad, warn }), /split lists not found; looked for .*ucfTrainTestlist.*classInd\.txt, trainlist0\{1,2,3\}\.txt/);
    const lists = path.join(bad, 'ucfTrainTestlist');
    fs.mkdirSync(lists);
    assert.throws(() => listVideos({ dataset: 'ucf101', root: bad, warn }), /class index .*classInd\.txt is missing/);
    fs.writeFileSync(path.join(lists, 'classInd.txt'), '1 ApplyEyeMakeup\r\n2 Basketball\r\n');
    assert.throws(() => listVideos({ dataset: 'ucf101', root: bad, split: 'train', fold: 3, warn }), /split list .*trainlist03\.txt is missing/);
    fs.writeFileSync(path.join(lists, 'trainlist01.txt'), '');
    assert.throws(() => listVideos({ dataset: 'ucf101', root: bad, warn }), /ucf101: no videos found under .* \(split train\); expected UCF-101/);
    fs.mkdirSync(path.join(bad, 'UCF-101', 'Juggling'));
    assert.throws(() => listVideos({ dataset: 'ucf101', root: bad, warn }), /class folder .*Juggling is not in .*classInd\.txt/);
    assert.throws(() => listVideos({ dataset: 'ucf101', root: path.join(bad, 'nope'), warn }), /nope is not a directory/);
    assert.throws(() => listVideos({ dataset: 'ucf101', root: bad, fold: 4, warn }), /fold must be 1, 2 or 3/);
  } finally {
    fs.rmSync(bad, { recursive: true, force: true });
  }
});

test('raw UCF-101 clips: window start from the rng, stride honoured, crop geometry, broken files skipped once each', async () => {
  const warnings: string[] = [];
  const list = listVideos({ dataset: 'ucf101', root: path.join(root, 'ucf'), split: 'train', warn: () => undefined });
  const ds = new RawVideoDataset(list, { frames: 4, frameStride: 3, height: 24, width: 24, warn: (m) => void warnings.push(m) });
  assert.equal(ds.numClasses, 3);
  const rng = new Rng(3);
  for (let k = 0; k < 6; k++) {
    const i = k; // the six good videos come first
    const expect = new Rng(0);
    expect.setState(rng.state());
    const s = expect.int(0, 30 - 10);
    const clip = await ds.get(i, rng);
    assert.equal(clip.key, `${list.entries[i].id}@${s}`);
    assert.equal(clip.label, list.entries[i].label);
    assert.deepEqual(indicesOf(clip.video, 4, 24, 24, 12, 12), [s, s + 3, s + 6, s + 9]);
    // 64x48 -> 24x24: red band in columns 0-3, blue in 20-23 (see the crop test).
    const px = (x: number): number[] => Array.from(clip.video.subarray((5 * 24 + x) * 3, (5 * 24 + x) * 3 + 3));
    assert.ok(px(1)[0] > 220 && px(1)[2] < 40, `red band, got ${px(1)}`);
    assert.ok(px(22)[2] > 220 && px(22)[0] < 40, `blue band, got ${px(22)}`);
  }
  // Zero-byte, truncated and too short files: skipped with one warning each (however often they
  // are drawn); the next readable video is served instead.
  const zero = list.entries.findIndex((e) => e.id.endsWith('g03_c02.avi'));
  const short = list.entries.findIndex((e) => e.id.endsWith('g03_c04.avi'));
  for (let k = 0; k < 4; k++) {
    for (const i of [zero, short]) {
      const c = await ds.get(i, new Rng(k));
      assert.ok(!c.key.includes('g03_c02') && !c.key.includes('g03_c04'), c.key);
    }
  }
  const ids = ds.skipped.map((s) => s.id);
  assert.equal(warnings.length, ids.length, warnings.join('\n'));
  assert.equal(new Set(ids).size, ids.length, 'one record per video');
  assert.ok(ids.includes('YoYo/v_YoYo_g03_c02.avi') && ids.includes('YoYo/v_YoYo_g03_c04.avi'), ids.join());
  assert.match(warnings.join('\n'), /v_YoYo_g03_c02\.avi: not a readable video \(Invalid data found when processing input\)/);
  assert.match(warnings.join('\n'), /v_YoYo_g03_c04\.avi: too short: 5 frames, a clip of 4 frames with stride 3 needs 10/);
  // The truncated file probes as 30 frames; a window past the cut is caught at read time, skipped once.
  const trunc = list.entries.findIndex((e) => e.id.endsWith('g03_c03.avi'));
  assert.equal((await ds.info(trunc)).frames, 30);
  await assert.rejects(ds.clipAt(trunc, 20), /decoded \d+ of 4 frames for the window at frame 20 \(stride 3\); truncated or damaged/);
});

test('Sky Time-lapse frame folders: two-level layout, natural frame order, fps resampling, short and corrupt clips skipped', async () => {
  const warnings: string[] = [];
  const sky = path.join(root, 'sky');
  const list = listVideos({ dataset: 'sky', root: sky, split: 'train' });
  assert.deepEqual(list.entries.map((e) => e.id), ['train/vidA/vidA_1', 'train/vidA/vidA_2', 'train/vidB/vidB_1', 'train/vidC/vidC_1']);
  assert.equal(list.entries[0].frameFiles?.[0], 'vidA_1_frames_00000001.jpg');
  assert.equal(listVideos({ dataset: 'sky', root: sky, split: 'all' }).entries.length, 5);
  assert.throws(() => listVideos({ dataset: 'sky', root: path.join(root, 'taichi', 'train'), split: 'train' }), /sky: split folder .*train not found \(expected <root>\/\{train,test\}\/<video>\/<clip>\/\*\.jpg\)/);
  const ds = new RawVideoDataset(list, { frames: 4, frameStride: 2, height: 16, width: 16, warn: (m) => void warnings.push(m) });
  const info = await entryInfo(list.entries[0], {});
  assert.deepEqual([info.frames, info.srcWidth, info.srcHeight], [20, 48, 32]);
  const w = await readEntryWindow(list.entries[0], info, { height: 16, width: 16 }, 5, 4, 3);
  assert.deepEqual(indicesOf(w, 4, 16, 16, 8, 8), [5, 8, 11, 14]);
  // fps resampling of a 25 fps frame folder to 12.5: timeline frame j is source frame 2j.
  const g = { height: 16, width: 16, fps: 12.5 };
  const half = await entryInfo(list.entries[0], g);
  assert.equal(half.frames, 10);
  assert.deepEqual(indicesOf(await readEntryWindow(list.entries[0], half, g, 1, 3, 2), 3, 16, 16, 3, 3), [2, 6, 10]);
  // Short (4 frames < 7) and corrupt (a broken JPEG inside) clips are skipped with one warning each.
  const rng = new Rng(5);
  for (let k = 0; k < 6; k++) {
    const c = await ds.get(2 + (k % 2), rng);
    assert.ok(c.key.startsWith('train/vidA/'), c.key);
  }
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings.join('\n'), /vidB_1: too short: 4 frames/);
  assert.match(warnings.join('\n'), /00003\.jpg: cannot decode image/);
});

test('Taichi (mp4, webm, frame folder named like a video), WebVid CSV and plain folders', async () => {
  const tai = listVideos({ dataset: 'taichi', root: path.join(root, 'taichi'), split: 'train' });
  assert.deepEqual(tai.entries.map((e) => [e.id, e.file ? 'file' : 'frames']), [['train/a.mp4', 'file'], ['train/c.mp4', 'frames'], ['train/sub/b.webm', 'file']]);
  const ds = new RawVideoDataset(tai, { frames: 3, frameStride: 2, height: 16, width: 16 });
  for (let i = 0; i < 3; i++) {
    const info = await ds.info(i);
    const clip = await ds.clipAt(i, 4);
    assert.deepEqual(indicesOf(clip.video, 3, 16, 16, 8, 8), [4, 6, 8], tai.entries[i].id);
    assert.ok(info.frames === [24, 14, 16][i], `${tai.entries[i].id}: ${info.frames} frames`);
  }
  assert.deepEqual(listVideos({ dataset: 'taichi', root: path.join(root, 'taichi'), split: 'test' }).entries.map((e) => e.id), ['test/d.avi']);

  const warnings: string[] = [];
  const wv = listVideos({ dataset: 'webvid', root: path.join(root, 'webvid'), warn: (m) => void warnings.push(m) });
  assert.deepEqual(wv.entries.map((e) => [e.id, e.caption]), [
    ['videos/000001_000050/1001.mp4', 'A dog, running on the beach'],
    ['videos/000001_000050/1002.mp4', 'Clouds "timelapse" over hills'],
  ]);
  assert.deepEqual(wv.missing.map((m) => m.id), ['1003']);
  assert.match(warnings[0], /webvid: 1 listed video\(s\) not found on disk/);
  const wds = new RawVideoDataset(wv, { frames: 2, height: 24, width: 24 });
  const clip = await wds.get(1, new Rng(0));
  assert.equal(clip.caption, 'Clouds "timelapse" over hills');

  const fo = listVideos({ dataset: 'folder', root: path.join(root, 'folder') });
  assert.deepEqual(fo.classNames, ['cats', 'dogs']);
  assert.deepEqual(fo.entries.map((e) => [e.id, e.label, e.caption]), [['cats/x.mp4', 0, 'a cat jumping'], ['dogs/y.avi', 1, 'a video of dogs']]);
  const empty = tmpDir('empty');
  try {
    assert.throws(() => listVideos({ dataset: 'folder', root: empty }), /folder: no videos found under .*; expected video files/);
    assert.throws(() => listVideos({ dataset: 'webvid', root: empty }), /webvid: no \*\.csv files in .*; pass --csv FILE/);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('a missing ffmpeg is a clear error, not a skipped video', async () => {
  const list = listVideos({ dataset: 'taichi', root: path.join(root, 'taichi'), split: 'test' });
  const saved = process.env.LVDM_FFMPEG;
  const savedProbe = process.env.LVDM_FFPROBE;
  process.env.LVDM_FFMPEG = '/nonexistent/ffmpeg';
  process.env.LVDM_FFPROBE = '/nonexistent/ffprobe';
  try {
    const warnings: string[] = [];
    const ds = openClipDataset({ source: 'taichi', root: path.join(root, 'taichi'), split: 'test', frames: 2, height: 8, width: 8, warn: (m) => void warnings.push(m) });
    await assert.rejects(ds.get(0, new Rng(0)), /\/nonexistent\/ffmpeg was not found or does not run \(needed to decode .*d\.avi\)\. Install ffmpeg/);
    assert.equal(warnings.length, 0);
    assert.equal(list.entries.length, 1);
  } finally {
    if (saved === undefined) delete process.env.LVDM_FFMPEG;
    else process.env.LVDM_FFMPEG = saved;
    if (savedProbe === undefined) delete process.env.LVDM_FFPROBE;
    else process.env.LVDM_FFPROBE = savedProbe;
  }
});
