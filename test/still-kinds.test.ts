// experiments/still-kinds.ts: the shape-kind and regular-outline readings of single frames, checked
// on real shapes clips (their frames read as the clips do) and on frames of drawn ellipses (lumpy
// blobs: never regular).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { objectConsistency } from '../metrics/object-consistency';
import { realShapesClips } from '../metrics/object-consistency-calibration';
import { decodePng } from '../lib/io/image';
import { writeNpz } from '../lib/io/npy';

const ROOT = path.resolve(__dirname, '..');

function stillKinds(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'experiments', 'still-kinds.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** n clips of `frames` frames [n, frames, 32, 32, 3]: a grey background and one orange ellipse of axis ratio 1.5, rotated by clip. */
function ellipseClips(n: number, frames: number): Uint8Array {
  const out = new Uint8Array(n * frames * 32 * 32 * 3);
  for (let i = 0; i < n; i++) {
    const phi = (i * Math.PI) / n;
    for (let f = 0; f < frames; f++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const dx = x + 0.5 - 16 - f * 0.3;
          const dy = y + 0.5 - 15;
          const u = dx * Math.cos(phi) + dy * Math.sin(phi);
          const v = -dx * Math.sin(phi) + dy * Math.cos(phi);
          const inside = (u / 7.5) ** 2 + (v / 5) ** 2 <= 1;
          out.set(inside ? [240, 130, 20] : [90, 90, 100], (((i * frames + f) * 32 + y) * 32 + x) * 3);
        }
      }
    }
  }
  return out;
}

test('still-kinds: real frames read as their clips and regular, drawn ellipses never regular; the sheet; bad input refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-still-kinds-'));
  try {
    const real = realShapesClips(12, { seed: 5 });
    writeNpz(path.join(dir, 'real.npz'), { videos: { shape: real.shape, data: real.data } });
    writeNpz(path.join(dir, 'blobs.npz'), { videos: { shape: [6, 4, 32, 32, 3], data: ellipseClips(6, 4) } });
    const r = stillKinds(['--frames', '0,2', '--sheet', path.join(dir, 'sheet.png'), '--sheet-clips', '8', path.join(dir, 'real.npz'), path.join(dir, 'blobs.npz')]);
    assert.equal(r.status, 0, r.out);
    const line = (file: string): RegExpMatchArray => {
      const m = r.out.match(new RegExp(`${file}: frames (\\d+); disc (\\d+), square (\\d+), triangle (\\d+), no object (\\d+); squares and triangles (\\d+) \\(\\d+% of objects\\); regular outlines (\\d+) \\(\\d+%\\), of them squares and triangles (\\d+)`));
      assert.ok(m, `no line for ${file} in:\n${r.out}`);
      return m;
    };
    const [, frames, disc, square, triangle, none, polys, regular, regularPolys] = line('real.npz').map(Number);
    assert.equal(frames, 24);
    assert.equal(none, 0);
    assert.equal(disc + square + triangle, 24);
    assert.equal(polys, square + triangle);
    assert.ok(regular >= 20, `real frames: ${regular} of 24 regular`);
    assert.ok(regularPolys <= polys && regularPolys >= polys - (24 - regular), `regular squares and triangles ${regularPolys}: at most the ${polys} polygons, at least those not among the irregular`);
    assert.ok(regularPolys > 0);
    // The whole clips' reading (objectConsistency), independent of the still-frame construction: the
    // frames of a single-shape clip read as its kind, so the squares and triangles agree within the
    // clips whose tracked object may differ (two shapes).
    const clipKinds = objectConsistency(real.data, real.shape).perClip.map((c) => c.kind);
    const clipPolys = clipKinds.filter((k) => k === 'square' || k === 'triangle').length;
    assert.ok(Math.abs(polys / 2 - clipPolys) <= 2, `still frames ${polys / 2} squares and triangles per frame index, clips ${clipPolys}`);
    const blobs = line('blobs.npz').map(Number);
    assert.equal(blobs[1], 12);
    assert.equal(blobs[5], 0);
    assert.equal(blobs[7], 0, 'an ellipse of axis ratio 1.5 is not a regular outline');
    assert.equal(blobs[8], 0);
    const sheet = decodePng(fs.readFileSync(path.join(dir, 'sheet.png')));
    assert.equal(sheet.width, (8 * 33 + 1) * 4);
    assert.equal(sheet.height, (33 + 1) * 4 + 8 + (33 + 1) * 4 + 8);

    const past = stillKinds(['--frames', '4', path.join(dir, 'blobs.npz')]);
    assert.notEqual(past.status, 0);
    assert.match(past.out, /--frames: frame 4 is past the clips' 4 frames/);
    const bad = stillKinds(['--frames', 'x', path.join(dir, 'real.npz')]);
    assert.match(bad.out, /--frames: expected a comma list of frame indices, got 'x'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
