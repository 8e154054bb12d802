import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { clipConsistency, objectConsistency } from '../metrics/object-consistency';
import { calibrate, corrupt, realShapesClips } from '../metrics/object-consistency-calibration';
import { consistencySheet, findSampleSets, videoConsistency } from '../metrics/object-consistency-io';
import { command } from '../lib/cli/commands/consistency';
import { writeNpz } from '../lib/io/npy';
import { decodePng, writeGif } from '../lib/io/image';

const BG: [number, number, number] = [50, 60, 70];
const RED: [number, number, number] = [230, 40, 40];

/** A [T, 32, 32, 3] uint8 clip: a flat background and an axis-aligned square of `side(t)` px at `pos(t)` (top-left pixel). */
function squareClip(t: number, pos: (f: number) => [number, number], side: (f: number) => number = () => 6): Uint8Array {
  const h = 32;
  const w = 32;
  const out = new Uint8Array(t * h * w * 3);
  for (let f = 0; f < t; f++) {
    const [x0, y0] = pos(f);
    const s = side(f);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const c = x >= x0 && x < x0 + s && y >= y0 && y < y0 + s ? RED : BG;
        out.set(c, ((f * h + y) * w + x) * 3);
      }
    }
  }
  return out;
}

test('a square moving at constant velocity on a flat background: consistent, area and velocity read exactly', () => {
  const clip = squareClip(16, (f) => [2 + f, 3 + f]);
  const c = clipConsistency(clip, [16, 32, 32, 3]);
  assert.equal(c.consistent, true, c.reason);
  assert.equal(c.failed, null);
  assert.equal(c.reason, 'ok');
  assert.equal(c.found, 16);
  assert.deepEqual(c.colour, RED);
  for (let f = 0; f < 16; f++) {
    assert.equal(c.areas[f], 36);
    // pixels 2+f .. 7+f have centres 2.5+f .. 7.5+f: mean 5+f (x), 6+f (y)
    assert.deepEqual(c.centroids[f], [5 + f, 6 + f]);
  }
  assert.equal(c.area, 36);
  assert.equal(c.areaCv, 0);
  assert.equal(c.speed, Math.SQRT2);
  assert.equal(c.accel, 0);
  assert.equal(c.maxAccel, 0);
  assert.equal(c.edge, 1, 'a hard edge steps the whole contrast');
  // The same clip as floats in [-1, 1] (the loaders' range) and [0, 1] reads the same.
  const m11 = Float32Array.from(clip, (v) => v / 127.5 - 1);
  const c11 = clipConsistency(m11, [16, 32, 32, 3]);
  assert.equal(c11.consistent, true);
  assert.ok(Math.abs(c11.area - 36) < 1e-6 && Math.abs(c11.speed - Math.SQRT2) < 1e-6);
  const c01 = clipConsistency(Float32Array.from(clip, (v) => v / 255), [16, 32, 32, 3], { range: '[0, 1]' });
  assert.equal(c01.consistent, true);
});

test('a reflection off a wall is allowed; a jump, a growing object and a vanishing object are not', () => {
  // x: 20, 22, ... 26 then back (reflection: velocity (2, 0) -> (-2, 0)).
  const bounce = squareClip(16, (f) => [26 - Math.abs(2 * f - 12), 10]);
  const b = clipConsistency(bounce, [16, 32, 32, 3]);
  assert.equal(b.consistent, true, b.reason);
  assert.equal(b.maxAccel, 4);
  assert.equal(b.speed, 2);

  const jump = squareClip(16, (f) => [2 + f + (f >= 8 ? 10 : 0), 10]);
  const j = clipConsistency(jump, [16, 32, 32, 3]);
  assert.equal(j.failed, 'jump');
  assert.match(j.reason, /^jump at frame 7: \|accel\| 10\.00 > 2 x speed \+ slack = 3\.00 px\/frame\^2$/);

  const grow = clipConsistency(squareClip(16, (f) => [4 + f, 4], (f) => 3 + f), [16, 32, 32, 3]);
  assert.equal(grow.failed, 'area');
  assert.match(grow.reason, /^area varies: cv 0\.\d\d > 0\.20$/);

  const vanish = clipConsistency(squareClip(16, (f) => (f < 12 ? [4 + f, 4] : [40, 40])), [16, 32, 32, 3]);
  assert.equal(vanish.failed, 'found');
  assert.equal(vanish.reason, 'object found in 12/16 frames (at most 1 may miss)');

  const still = new Uint8Array(16 * 32 * 32 * 3).fill(90);
  const s = clipConsistency(still, [16, 32, 32, 3]);
  assert.equal(s.failed, 'object');
  assert.equal(s.colour, null);
});

test('real shapes clips score >= 0.9; shuffled, spliced, blurred and noisy copies score <= 0.1', () => {
  const rows = calibrate(40, { seed: 3 });
  const by = Object.fromEntries(rows.map((r) => [r.set, r]));
  assert.ok(by.real.fraction >= 0.9, `real ${by.real.fraction}`);
  for (const k of ['shuffled', 'spliced', 'blurred', 'noisy']) assert.ok(by[k].fraction <= 0.1, `${k} ${by[k].fraction}`);
  // Each corruption fails for the reason it was made for.
  assert.ok(by.shuffled.failures.velocity >= 30);
  assert.ok(by.blurred.failures.edge >= 30);
  assert.ok(by.spliced.failures.found + by.spliced.failures.area + by.spliced.failures.jump + by.spliced.failures.object >= 36);
  // objectConsistency over the whole batch equals the per-clip judgements.
  const real = realShapesClips(6, { seed: 3 });
  const r = objectConsistency(real.data, real.shape);
  const each = Array.from({ length: 6 }, (_, i) => clipConsistency(real.data.subarray(i * 49152, (i + 1) * 49152), [16, 32, 32, 3]));
  assert.deepEqual(r.perClip, each);
  assert.equal(r.fraction, each.filter((c) => c.consistent).length / 6);
  assert.equal(r.thresholds.scale, 1);
  // corrupt('real') copies.
  assert.deepEqual(corrupt(real, 'real').data, real.data);
});

test('bad shapes, ranges and options are errors that say what was expected', () => {
  const clip = squareClip(4, (f) => [f, f]);
  assert.throws(() => objectConsistency(clip, [4, 32, 32, 3]), /expected shape \[N, T, H, W, 3\] of positive integers, got \[4, 32, 32, 3\]/);
  assert.throws(() => objectConsistency(clip, [1, 4, 32, 24, 4]), /expected shape \[N, T, H, W, 3\] of positive integers, got \[1, 4, 32, 24, 4\]/);
  assert.throws(() => objectConsistency(clip, [2, 4, 32, 32, 3]), /shape \[2, 4, 32, 32, 3\] has 24576 elements, the array has 12288/);
  assert.throws(() => objectConsistency(clip.subarray(0, 6144), [1, 2, 32, 32, 3]), /need at least 3 frames per clip \(T >= 3\).*got T = 2/);
  assert.throws(() => clipConsistency(clip, [1, 4, 32, 32, 3]), /clipConsistency: expected shape \[T, H, W, 3\], got \[1, 4, 32, 32, 3\]/);
  assert.throws(() => clipConsistency(clip, [4, 32, 32, 3], { range: '[0, 2]' as '[0, 1]' }), /range must be one of \[-1, 1\], \[0, 1\], \[0, 255\], got '\[0, 2\]'/);
  assert.throws(() => clipConsistency(clip, [4, 32, 32, 3], { maxAreaCv: -1 }), /option maxAreaCv must be a finite number >= 0, got -1/);
  assert.throws(() => clipConsistency(clip, [4, 32, 32, 3], { maxMissing: 0.5 }), /option maxMissing must be an integer >= 0, got 0.5/);
  assert.throws(() => clipConsistency(clip, [4, 32, 32, 3], { range: '[-1, 1]' }), /clip 0: 100\.0% of its values lie more than 10% outside the range \[-1, 1\]; pass the range/);
  const nan = Float32Array.from(clip, (v) => v / 255);
  nan[5] = NaN;
  assert.throws(() => clipConsistency(nan, [4, 32, 32, 3], { range: '[0, 1]' }), /clip 0 holds a non-finite value \(NaN\) at element 5/);
});

/** Runs `lvdm consistency` with argv parsed as lib/cli/main.ts does; captures stdout. */
async function runCli(argv: string[]): Promise<{ code: number; out: string }> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [k, o] of Object.entries(command.options)) options[k] = { type: o.type, ...(o.multiple ? { multiple: true } : {}) };
  const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  const out: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = () => undefined;
  try {
    const code = await command.run(values as Record<string, string | boolean | string[]>, positionals);
    return { code, out: out.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('lvdm consistency reads the runner\'s videos.npz, run folders and windows; prints the fraction and a per-clip table', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-consistency-'));
  try {
    const real = realShapesClips(5, { seed: 3 });
    const shuffled = corrupt(real, 'shuffled', 3);
    fs.mkdirSync(path.join(dir, 'run', 'a'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'run', 'b'), { recursive: true });
    const a = path.join(dir, 'run', 'a', 'videos.npz');
    const b = path.join(dir, 'run', 'b', 'videos.npz');
    writeNpz(a, { videos: { shape: real.shape, data: real.data } });
    writeNpz(b, { videos: { shape: shuffled.shape, data: shuffled.data } });
    const expected = objectConsistency(real.data, real.shape);

    const one = await runCli([a]);
    assert.equal(one.code, 0);
    assert.match(one.out, /\|clip\|consistent\|found\|area\|area_cv\|speed\|accel\|max_accel\|edge\|kind\|a2\|a3\|a4\|reason\|/);
    assert.match(one.out, /\|videos\.npz\[4\]\|(yes|no)\|16\/16\|/);
    assert.ok(one.out.includes(`${a}: object consistency ${expected.fraction.toFixed(4)} (${expected.consistent}/5 clips consistent)`), one.out);

    const json = await runCli([path.join(dir, 'run', 'a'), '--json']);
    const parsed = JSON.parse(json.out) as { fraction: number; clips: number; per_clip: { clip: string; consistent: boolean; kind: string }[] };
    assert.equal(parsed.fraction, expected.fraction);
    assert.equal(parsed.clips, 5);
    assert.deepEqual(parsed.per_clip.map((c) => c.consistent), expected.perClip.map((c) => c.consistent));
    assert.deepEqual(parsed.per_clip.map((c) => c.kind), expected.perClip.map((c) => c.kind ?? ''));

    assert.deepEqual(findSampleSets(path.join(dir, 'run')), [a, b]);
    // lvdm sample --npz's folder: its samples.npz is read, not its GIF previews.
    fs.mkdirSync(path.join(dir, 'sampled'));
    writeNpz(path.join(dir, 'sampled', 'samples.npz'), { videos: { shape: real.shape, data: real.data } });
    fs.writeFileSync(path.join(dir, 'sampled', 'sample_000.gif'), '');
    assert.deepEqual(findSampleSets(path.join(dir, 'sampled')), [path.join(dir, 'sampled', 'samples.npz')]);
    const both = await runCli([path.join(dir, 'run'), '--no-table', '--out', path.join(dir, 'c.json')]);
    assert.equal(both.out.split('\n').length, 2);
    assert.match(both.out, /b[/\\]videos\.npz: object consistency 0\.0000 \(0\/5 clips consistent\); failed first: .*velocity \d/);
    assert.equal((JSON.parse(fs.readFileSync(path.join(dir, 'c.json'), 'utf8')) as unknown[]).length, 2);

    // The contact sheet: one row per clip, 8 of the 16 frames enlarged 4x in a 4-px frame (green: consistent, red: not).
    const sheet = path.join(dir, 'sheet.png');
    await runCli([b, '--no-table', '--sheet', sheet, '--sheet-clips', '3']);
    const img = decodePng(fs.readFileSync(sheet));
    assert.equal(img.width, 8 * (32 * 4 + 8 + 2) + 2);
    assert.equal(img.height, 3 * (32 * 4 + 8 + 2) + 2);
    assert.deepEqual([...img.data.subarray((3 * img.width + 3) * 3, (3 * img.width + 3) * 3 + 3)], [220, 30, 30]);
    const ok = consistencySheet([{ key: 'k', frames: squareClip(16, (f) => [2 + f, 3 + f]), shape: [16, 32, 32, 3], verdict: clipConsistency(squareClip(16, (f) => [2 + f, 3 + f]), [16, 32, 32, 3]) }]);
    assert.deepEqual([...ok.data.subarray((3 * ok.width + 3) * 3, (3 * ok.width + 3) * 3 + 3)], [40, 200, 60]);
    // frame 0: centroid (5, 6) px -> (20 + 4, 24 + 4) on the sheet (2-px pad + 4-px frame), black
    const at = ((2 + 4 + 24) * ok.width + 2 + 4 + 20) * 3;
    assert.deepEqual([...ok.data.subarray(at, at + 3)], [0, 0, 0]);

    // Float arrays in a stated range, under another member name; windows of 8 frames.
    const f = path.join(dir, 'float.npz');
    writeNpz(f, { x: { shape: real.shape, data: Float32Array.from(real.data, (v) => v / 255) } });
    const win = await videoConsistency(f, { range: '[0, 1]', window: 8 });
    assert.equal(win.clips, 10);
    assert.deepEqual(win.keys.slice(0, 2), ['float.npz[0]@0', 'float.npz[0]@8']);
    const fl = await runCli([f, '--range', '[0, 1]', '--no-table']);
    assert.match(fl.out, new RegExp(`object consistency ${expected.fraction.toFixed(4)}`));

    // A folder of video files (GIFs, decoded with ffmpeg) gives the verdicts of the array they came from.
    const gifs = path.join(dir, 'gifs');
    fs.mkdirSync(gifs);
    const L = 16 * 32 * 32 * 3;
    for (let i = 0; i < 3; i++) {
      const frames = Array.from({ length: 16 }, (_, t) => real.data.slice(i * L + t * 3072, i * L + (t + 1) * 3072));
      writeGif(path.join(gifs, `sample_${i}.gif`), frames, 32, 32, 8);
    }
    const fromGifs = await videoConsistency(gifs);
    assert.deepEqual(fromGifs.keys, ['sample_0.gif', 'sample_1.gif', 'sample_2.gif']);
    assert.deepEqual(fromGifs.perClip.map((c) => c.consistent), expected.perClip.slice(0, 3).map((c) => c.consistent));

    await assert.rejects(runCli([path.join(dir, 'nope.npz')]), /nope\.npz: not found \(expected a \.npz\/\.npy video array or a folder of videos\)/);
    await assert.rejects(runCli([a, '--window', '2']), /window must be an integer >= 3, got 2/);
    await assert.rejects(runCli([a, '--threshold', 'maxSpeed=2']), /--threshold: expected NAME=VALUE with NAME one of changeDistance, .*got 'maxSpeed=2'/);
    await assert.rejects(runCli([]), /usage: lvdm consistency PATH/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
