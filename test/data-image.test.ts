import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { Rng } from '../lib/nn/rng';
import { coverCropGeometry, decodeImageBuffer, decodeImageFile, naturalCompare, resizeCenterCrop } from '../data/image';
import { imageSize } from '../data/video-source';
import { parseCsv, parseCsvRecords } from '../data/csv';
import { captionForClass, classNameToWords } from '../data/classes';
import { bandedCoded, codeColour, tmpDir } from './data-fixtures';

/** Naive reference: every output pixel as a 2D sum of triangle weights over all source pixels. */
function referenceResize(src: Uint8Array, sw: number, sh: number, ow: number, oh: number): Float64Array {
  const g = coverCropGeometry(sw, sh, ow, oh);
  const r = Math.max(1, 1 / g.scale);
  const out = new Float64Array(ow * oh * 3);
  const clampIdx = (j: number, n: number): number => Math.min(n - 1, Math.max(0, j));
  for (let y = 0; y < oh; y++) {
    const cy = (y + 0.5 + g.offsetY) / g.scale;
    for (let x = 0; x < ow; x++) {
      const cx = (x + 0.5 + g.offsetX) / g.scale;
      const acc = [0, 0, 0];
      let wsum = 0;
      for (let j = Math.floor(cy - r - 2); j <= Math.ceil(cy + r + 2); j++) {
        const wy = Math.max(0, 1 - Math.abs(j + 0.5 - cy) / r);
        for (let i = Math.floor(cx - r - 2); i <= Math.ceil(cx + r + 2); i++) {
          const w = wy * Math.max(0, 1 - Math.abs(i + 0.5 - cx) / r);
          if (w === 0) continue;
          const p = (clampIdx(j, sh) * sw + clampIdx(i, sw)) * 3;
          for (let c = 0; c < 3; c++) acc[c] += w * src[p + c];
          wsum += w;
        }
      }
      for (let c = 0; c < 3; c++) out[(y * ow + x) * 3 + c] = acc[c] / wsum;
    }
  }
  return out;
}

test('resizeCenterCrop matches a naive 2D triangle-filter reference (down, up, non-square)', () => {
  const rng = new Rng(1);
  const cases: [number, number, number, number][] = [[40, 30, 16, 16], [13, 17, 32, 24], [64, 48, 24, 24], [30, 50, 20, 10], [16, 16, 16, 8]];
  for (const [sw, sh, ow, oh] of cases) {
    const src = Uint8Array.from(rng.uniformArray(sw * sh * 3, 0, 256), Math.floor);
    const got = resizeCenterCrop(src, sw, sh, ow, oh);
    const ref = referenceResize(src, sw, sh, ow, oh);
    let maxErr = 0;
    for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
    assert.ok(maxErr <= 0.5 + 1e-6, `${sw}x${sh}->${ow}x${oh}: max error ${maxErr}`);
  }
  // Same size: a copy. RGBA input: alpha dropped.
  const src = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => i);
  assert.deepEqual(resizeCenterCrop(src, 4, 4, 4, 4), src);
  const rgba = Uint8Array.from({ length: 2 * 2 * 4 }, (_, i) => (i % 4 === 3 ? 7 : 100 + i));
  assert.deepEqual(Array.from(resizeCenterCrop(rgba, 2, 2, 2, 2, undefined, 0, 4)), [100, 101, 102, 104, 105, 106, 108, 109, 110, 112, 113, 114]);
});

test('crop geometry: short side to the target, centre crop (landscape and portrait)', () => {
  const g = coverCropGeometry(320, 240, 64, 64);
  assert.deepEqual(g, { scale: 64 / 240, scaledWidth: 320 * (64 / 240), scaledHeight: 64, offsetX: (320 * (64 / 240) - 64) / 2, offsetY: 0 });
  // 64x48 banded (red | coded | blue, edges at x = 16, 48) -> 24x24: scale 0.5, 32x24 cropped by 4 on each side,
  // so the band edges land at output x = 4 and 20.
  const src = bandedCoded(5, 64, 48);
  const out = resizeCenterCrop(src, 64, 48, 24, 24);
  const px = (x: number, y: number): number[] => Array.from(out.subarray((y * 24 + x) * 3, (y * 24 + x) * 3 + 3));
  for (const y of [0, 12, 23]) {
    assert.deepEqual(px(1, y), [230, 30, 30]);
    assert.deepEqual(px(2, y), [230, 30, 30]);
    assert.deepEqual(px(12, y), codeColour(5));
    assert.deepEqual(px(6, y), codeColour(5));
    assert.deepEqual(px(17, y), codeColour(5));
    assert.deepEqual(px(22, y), [30, 30, 230]);
  }
  // Portrait 48x64 with horizontal bands: the crop removes rows instead.
  const portrait = new Uint8Array(48 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 48; x++) portrait.set(y < 8 ? [255, 0, 0] : [0, 255, 0], (y * 48 + x) * 3);
  // Scale 0.5 gives 24x32, rows 4..28 are kept: the red rows (0..4 scaled) are cut; output row 0 only
  // catches 1/8 red from the filter's tail (its taps are source rows 7..10, row 7 red, weight 1/8).
  const p = resizeCenterCrop(portrait, 48, 64, 24, 24);
  assert.deepEqual(Array.from(p.subarray(0, 3)), [32, 223, 0]);
  assert.deepEqual(Array.from(p.subarray(24 * 3, 24 * 3 + 3)), [0, 255, 0]);
  // Non-square target from a square source: the width covers, the height is cropped.
  assert.deepEqual(coverCropGeometry(100, 100, 40, 20), { scale: 0.4, scaledWidth: 40, scaledHeight: 40, offsetX: 0, offsetY: 10 });
  assert.throws(() => coverCropGeometry(0, 10, 4, 4), /sizes must be positive/);
});

test('JPEG and PNG frames decode in process (RGB), sizes from headers, bad files named', () => {
  const dir = tmpDir('img');
  try {
    const w = 20;
    const h = 12;
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([i % 256, (3 * i) % 256, 200, 255], i * 4);
    const png = new PNG({ width: w, height: h });
    png.data.set(rgba);
    fs.writeFileSync(path.join(dir, 'a.png'), PNG.sync.write(png));
    const solid = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) solid.set([40, 120, 220, 255], i * 4);
    fs.writeFileSync(path.join(dir, 'b.jpg'), encodeJpeg({ data: solid, width: w, height: h }, 100).data);
    const a = decodeImageFile(path.join(dir, 'a.png'));
    assert.deepEqual([a.width, a.height], [w, h]);
    for (let i = 0; i < w * h; i++) assert.deepEqual(Array.from(a.data.subarray(i * 3, i * 3 + 3)), [i % 256, (3 * i) % 256, 200]);
    const b = decodeImageFile(path.join(dir, 'b.jpg'));
    assert.equal(b.data.length, w * h * 3);
    for (let i = 0; i < b.data.length; i += 3) {
      assert.ok(Math.abs(b.data[i] - 40) <= 2 && Math.abs(b.data[i + 1] - 120) <= 2 && Math.abs(b.data[i + 2] - 220) <= 2);
    }
    assert.deepEqual(imageSize(path.join(dir, 'a.png')), { width: w, height: h });
    assert.deepEqual(imageSize(path.join(dir, 'b.jpg')), { width: w, height: h });
    fs.writeFileSync(path.join(dir, 'c.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    assert.throws(() => decodeImageFile(path.join(dir, 'c.jpg')), /c\.jpg: cannot decode image/);
    assert.throws(() => decodeImageBuffer(new Uint8Array(0), 'x.png'), /x\.png: empty image file/);
    assert.throws(() => decodeImageBuffer(Uint8Array.from([1, 2, 3, 4]), 'y.jpg'), /y\.jpg: not a JPEG or PNG/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CSV parsing handles quotes, commas, doubled quotes, CRLF and a BOM', () => {
  const text = '\ufeffvideoid,name,page_dir\r\n1001,"a dog, running","0001"\r\n1002,"she said ""hi""",0002\n\n1003,plain,0003';
  assert.deepEqual(parseCsv(text), [
    ['videoid', 'name', 'page_dir'],
    ['1001', 'a dog, running', '0001'],
    ['1002', 'she said "hi"', '0002'],
    ['1003', 'plain', '0003'],
  ]);
  const { header, records } = parseCsvRecords('VideoID, Name\nx,"multi\nline"\n');
  assert.deepEqual(header, ['videoid', 'name']);
  assert.deepEqual(records, [{ videoid: 'x', name: 'multi\nline' }]);
});

test('class names become captions; frame names sort naturally', () => {
  assert.equal(classNameToWords('ApplyEyeMakeup'), 'apply eye makeup');
  assert.equal(classNameToWords('YoYo'), 'yo yo');
  assert.equal(classNameToWords('PlayingDaf'), 'playing daf');
  assert.equal(classNameToWords('TaiChi'), 'tai chi');
  assert.equal(captionForClass('BasketballDunk'), 'a video of basketball dunk');
  assert.deepEqual(['f10.jpg', 'f2.jpg', 'f1.jpg'].sort(naturalCompare), ['f1.jpg', 'f2.jpg', 'f10.jpg']);
});
