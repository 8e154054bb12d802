import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { axisPlan, preprocessClip, resizeBilinear, resizeGeometry } from '../metrics/preprocess';
import { proxyPreprocess } from '../metrics/proxy/extractor';
import { reference } from './metrics-helpers';

const ref = reference();

test('bilinear resize matches the numpy references (TF1 legacy and half-pixel), up- and downsampling', () => {
  for (const r of ref.resize) {
    const [ih, iw] = r.in;
    const [oh, ow] = r.out;
    for (const [conv, expect] of [
      ['tf1-legacy', r.tf1_legacy],
      ['half-pixel', r.half_pixel],
    ] as const) {
      const got = resizeBilinear(r.input, ih, iw, 3, oh, ow, conv);
      let m = 0;
      for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i] - expect[i]));
      assert.ok(m < 1e-9, `${conv} ${ih}x${iw}->${oh}x${ow}: max diff ${m}`);
    }
  }
});

test('resize conventions agree with tf.image.resizeBilinear (independent implementation, float32)', async () => {
  await initBackend({ quiet: true });
  const r = ref.resize[1]; // 5x7 -> 11x9
  const [ih, iw] = r.in;
  const [oh, ow] = r.out;
  const before = tf.memory().numTensors;
  const img = tf.tensor4d(Float32Array.from(r.input), [1, ih, iw, 3]);
  const lt = tf.image.resizeBilinear(img, [oh, ow], false, false);
  const ht = tf.image.resizeBilinear(img, [oh, ow], false, true);
  const legacy = lt.dataSync();
  const half = ht.dataSync();
  tf.dispose([img, lt, ht]);
  assert.equal(tf.memory().numTensors, before);
  const a = resizeBilinear(r.input, ih, iw, 3, oh, ow, 'tf1-legacy');
  const b = resizeBilinear(r.input, ih, iw, 3, oh, ow, 'half-pixel');
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - legacy[i]) < 1e-3, `legacy ${i}`);
    assert.ok(Math.abs(b[i] - half[i]) < 1e-3, `half-pixel ${i}`);
  }
});

test('sampling positions: legacy src = o * s, half-pixel src = (o + 0.5) s - 0.5 clamped at 0', () => {
  const l = axisPlan(4, 2, 'tf1-legacy');
  assert.deepEqual([Array.from(l.lo), Array.from(l.frac)], [[0, 2], [0, 0]]);
  const h = axisPlan(4, 2, 'half-pixel');
  assert.deepEqual([Array.from(h.lo), Array.from(h.hi), Array.from(h.frac)], [[0, 2], [1, 3], [0.5, 0.5]]);
  const up = axisPlan(2, 4, 'half-pixel'); // src = -0.25, 0.25, 0.75, 1.25
  assert.deepEqual([Array.from(up.lo), Array.from(up.hi), Array.from(up.frac)], [[0, 0, 0, 1], [1, 1, 1, 1], [0, 0.25, 0.75, 0.25]]);
  assert.throws(() => axisPlan(4, 2, 'cubic' as 'half-pixel'), /unknown convention 'cubic'/);
});

test('preprocessClip: resize then 2x/255 - 1 into [-1, 1]; short-side-crop matches TATS geometry', () => {
  const t = 2;
  const h = 6;
  const w = 8;
  const video = Uint8Array.from({ length: t * h * w * 3 }, (_, i) => (i * 29) % 256);
  const out = preprocessClip(video, t, h, w, { convention: 'half-pixel', size: 4 });
  for (let f = 0; f < t; f++) {
    const frame = Array.from(video.subarray(f * h * w * 3, (f + 1) * h * w * 3));
    const r = resizeBilinear(frame, h, w, 3, 4, 4, 'half-pixel');
    for (let i = 0; i < r.length; i++) assert.ok(Math.abs(out[f * 48 + i] - ((2 * r[i]) / 255 - 1)) < 1e-6);
  }
  const ones = preprocessClip(new Uint8Array(t * h * w * 3).fill(255), t, h, w, { convention: 'tf1-legacy', size: 4 });
  assert.ok(ones.every((v) => v === 1));
  assert.ok(preprocessClip(new Uint8Array(t * h * w * 3), t, h, w, { convention: 'tf1-legacy', size: 4 }).every((v) => v === -1));
  // TATS: scale the short side to 224, long side ceil(w * 224 / h), centre crop.
  assert.deepEqual(resizeGeometry(240, 320, 224, 'short-side-crop'), { rh: 224, rw: 299, top: 0, left: 37 });
  assert.deepEqual(resizeGeometry(320, 240, 224, 'short-side-crop'), { rh: 299, rw: 224, top: 37, left: 0 });
  assert.deepEqual(resizeGeometry(240, 320, 224, 'stretch'), { rh: 224, rw: 224, top: 0, left: 0 });
  const cropped = preprocessClip(video, t, h, w, { convention: 'half-pixel', size: 4, geometry: 'short-side-crop' });
  const full = resizeBilinear(Array.from(video.subarray(0, h * w * 3)), h, w, 3, 4, 6, 'half-pixel'); // 6x8 -> 4x6, crop cols 1..4
  for (let y = 0; y < 4; y++)
    for (let x = 0; x < 4; x++)
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(cropped[(y * 4 + x) * 3 + c] - ((2 * full[(y * 6 + x + 1) * 3 + c]) / 255 - 1)) < 1e-6);
  assert.throws(() => preprocessClip(video, 3, h, w, { convention: 'half-pixel' }), /do not make a 3x6x8x3 clip/);
});

test('proxy preprocessing: box prefilter then half-pixel resize to 32 x 32 in [-1, 1]', () => {
  // A 64x64 clip whose 2x2 blocks are constant: the box filter returns the blocks exactly.
  const t = 1;
  const v = new Uint8Array(64 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) for (let c = 0; c < 3; c++) v[(y * 64 + x) * 3 + c] = (Math.floor(y / 2) * 7 + Math.floor(x / 2) * 3 + c * 50) % 256;
  const out = proxyPreprocess(v, t, 64, 64);
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 32; x++)
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(out[(y * 32 + x) * 3 + c] - ((2 * ((y * 7 + x * 3 + c * 50) % 256)) / 255 - 1)) < 1e-6);
});
