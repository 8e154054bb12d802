// experiments/shapes-paired.ts: paired counts and bootstrap intervals of two shapes sample sets from
// the same noise, checked against objectConsistency run directly on the same clips.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { objectConsistency } from '../metrics/object-consistency';
import { isRegularOutline } from '../metrics/shape-kind';
import { corrupt, realShapesClips } from '../metrics/object-consistency-calibration';
import { writeNpz } from '../lib/io/npy';

const ROOT = path.resolve(__dirname, '..');

function paired(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'experiments', 'shapes-paired.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('shapes-paired: counts and paired differences of real clips against the same clips shuffled in time; folders read their video array; mismatches refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-shapes-paired-'));
  try {
    const real = realShapesClips(12, { seed: 5 });
    const shuffled = corrupt(real, 'shuffled', 5);
    fs.mkdirSync(path.join(dir, 'a'));
    writeNpz(path.join(dir, 'a', 'videos.npz'), { videos: { shape: real.shape, data: real.data } });
    writeNpz(path.join(dir, 'b.npz'), { videos: { shape: shuffled.shape, data: shuffled.data } });
    const ref = objectConsistency(real.data, real.shape).perClip;
    const objects = ref.filter((c) => c.consistent).length;
    const polygons = ref.filter((c) => c.consistent && (c.kind === 'square' || c.kind === 'triangle')).length;
    assert.ok(objects >= 6 && polygons >= 1, `real clips read ${objects} objects, ${polygons} polygons`);

    // Two copies of each set: 24 pairs. Shuffled frames are never consistent, so every paired
    // difference is 0 or -1 and the interval lies at or below zero.
    const r = paired(['--a', path.join(dir, 'a'), '--a', path.join(dir, 'a'), '--b', path.join(dir, 'b.npz'), '--b', path.join(dir, 'b.npz')]);
    assert.equal(r.status, 0, r.out);
    const line = (name: string): RegExpMatchArray => {
      const m = r.out.match(new RegExp(`${name}: A (\\d+), B (\\d+) of (\\d+); B - A (-?[\\d.]+) \\(95% bootstrap (-?[\\d.]+) to (-?[\\d.]+)\\)`));
      assert.ok(m, `no '${name}' line in:\n${r.out}`);
      return m;
    };
    const o = line('consistent objects');
    assert.deepEqual(o.slice(1, 4).map(Number), [2 * objects, 0, 24]);
    assert.equal(Number(o[4]), Number((-objects / 12).toFixed(3)));
    assert.ok(Number(o[5]) <= Number(o[4]) && Number(o[4]) <= Number(o[6]) && Number(o[6]) <= 0 && Number(o[5]) >= -1, o[0]);
    const p = line('consistent squares and triangles');
    assert.deepEqual(p.slice(1, 4).map(Number), [2 * polygons, 0, 24]);
    const regular = ref.filter((c) => c.consistent && isRegularOutline(c.outline)).length;
    assert.ok(regular >= 6, `real clips read ${regular} regular outlines`);
    assert.deepEqual(line('consistent regular outlines').slice(1, 4).map(Number), [2 * regular, 0, 24]);

    // A set against itself: no difference, a zero-width interval.
    const same = paired(['--a', path.join(dir, 'b.npz'), '--b', path.join(dir, 'b.npz')]);
    assert.equal(same.status, 0, same.out);
    assert.match(same.out, /consistent objects: A 0, B 0 of 12; B - A 0\.000 \(95% bootstrap 0\.000 to 0\.000\)/);

    const short = corrupt(realShapesClips(3, { seed: 1 }), 'shuffled', 1);
    writeNpz(path.join(dir, 'c.npz'), { videos: { shape: short.shape, data: short.data } });
    const mismatch = paired(['--a', path.join(dir, 'a'), '--b', path.join(dir, 'c.npz')]);
    assert.notEqual(mismatch.status, 0);
    assert.match(mismatch.out, /paired sets must hold as many clips, got 12 and 3/);
    const uneven = paired(['--a', path.join(dir, 'a'), '--b', path.join(dir, 'c.npz'), '--b', path.join(dir, 'c.npz')]);
    assert.match(uneven.out, /--a\/--b: expected as many sets of model A as of model B \(at least one\), got 1 and 2/);
    const empty = paired(['--a', dir, '--b', dir]);
    assert.match(empty.out, /expected a video array \(videos\.npz or samples\.npz, as lvdm run and lvdm sample --npz write them\) or a sample folder holding one/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
