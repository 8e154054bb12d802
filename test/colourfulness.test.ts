// metrics/colourfulness.ts against hand-computed values of Hasler & Suesstrunk's M: a grey frame
// reads 0, a flat colour only its mean term, a half-black half-red frame both terms; frame ranges
// pick the frames they name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colourfulness, frameColourfulness } from '../metrics/colourfulness';

const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

test('grey, flat-colour and half-red frames', () => {
  const grey = new Uint8Array(4 * 3).fill(128);
  // Flat (200, 100, 50): rg = 100, yb = 100, no spread: 0.3 * sqrt(2) * 100.
  const flat = new Uint8Array([200, 100, 50, 200, 100, 50, 200, 100, 50, 200, 100, 50]);
  // Two black and two red (255, 0, 0) pixels: rg in {0, 255}, yb in {0, 127.5}: sd = mean =
  // sqrt(127.5^2 + 63.75^2), so M = 1.3 times that.
  const half = new Uint8Array([0, 0, 0, 0, 0, 0, 255, 0, 0, 255, 0, 0]);
  const m = frameColourfulness(new Uint8Array([...grey, ...flat, ...half]), 3, 2, 2);
  close(m[0], 0);
  close(m[1], 0.3 * Math.SQRT2 * 100);
  close(m[2], 1.3 * Math.hypot(127.5, 63.75));
  // Two clips of the three frames: all frames, then the last two only.
  const clips = new Uint8Array([...grey, ...flat, ...half, ...half, ...half, ...grey]);
  const all = colourfulness(clips, 2, 3, 2, 2);
  close(all[0], (m[1] + m[2]) / 3);
  close(all[1], (2 * m[2]) / 3);
  const tail = colourfulness(clips, 2, 3, 2, 2, 1, 3);
  close(tail[0], (m[1] + m[2]) / 2);
  close(tail[1], m[2] / 2);
});

test('bad shapes and frame ranges are refused with what was expected', () => {
  assert.throws(() => frameColourfulness(new Uint8Array(5), 1, 1, 1), /frameColourfulness: expected 1x1x1x3 = 3 values, got 5/);
  assert.throws(() => colourfulness(new Uint8Array(5), 1, 1, 1, 1), /colourfulness: expected 1x1x1x1x3 values, got 5/);
  assert.throws(() => colourfulness(new Uint8Array(6), 1, 2, 1, 1, 1, 1), /frames \[1, 1\) must lie within \[0, 2\) and hold at least one frame/);
  assert.throws(() => colourfulness(new Uint8Array(6), 1, 2, 1, 1, 0, 3), /frames \[0, 3\) must lie/);
});
