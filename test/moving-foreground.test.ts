// metrics/moving-foreground.ts against hand-computed values: a still clip has no moving pixels, a
// square that never stays put for half a window moves its own area per frame, the threshold is
// strict, windows are read separately, and a numpy-style median of an even count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { movingForeground } from '../metrics/moving-foreground';

function clip(T: number, H: number, W: number, colour: (t: number, y: number, x: number) => [number, number, number]): Uint8Array {
  const v = new Uint8Array(T * H * W * 3);
  for (let t = 0; t < T; t++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) v.set(colour(t, y, x), ((t * H + y) * W + x) * 3);
  return v;
}

test('still, moving-square and two-window clips', () => {
  const [H, W] = [4, 8];
  const still = clip(8, H, W, (_t, y, x) => [10 * x, 20 * y, 7]);
  // A 2x2 square of (250, 100, 100) on a flat (100, 100, 100) wall, 2 px further right every frame:
  // each pixel is covered in at most 1 of 4 frames, so the median is the wall and 4 of 32 pixels move.
  const square = clip(4, H, W, (t, y, x) => (y < 2 && x >= 2 * t && x < 2 * t + 2 ? [250, 100, 100] : [100, 100, 100]));
  assert.deepEqual(movingForeground(still, 1, 8, H, W, { window: 4 }), [0]);
  assert.deepEqual(movingForeground(square, 1, 4, H, W, { window: 4 }), [4 / 32]);
  // Strict threshold: a difference of exactly 150 does not count.
  assert.deepEqual(movingForeground(square, 1, 4, H, W, { window: 4, threshold: 150 }), [0]);
  assert.deepEqual(movingForeground(square, 1, 4, H, W, { window: 4, threshold: 149 }), [4 / 32]);
  // Two clips; the second is the square clip followed by 4 still frames: windows average to 1/16.
  const tail = clip(4, H, W, () => [100, 100, 100]);
  const both = new Uint8Array([...still, ...square, ...tail]);
  assert.deepEqual(movingForeground(both, 2, 8, H, W, { window: 4 }), [0, 4 / 32 / 2]);
  // Window 3 on 8 frames: two windows (frames 0-2: the square in each frame; 3-5: in frame 3 only),
  // frames 6-7 dropped: (3 + 1) * 4 moving pixels over 2 * 3 frames of 32.
  assert.equal(movingForeground(both.subarray(8 * H * W * 3), 1, 8, H, W, { window: 3 })[0], 16 / 192);
});

test('even-count median is the mean of the two middle values (numpy.median)', () => {
  // One pixel over 4 frames: 0, 0, 100, 100 -> background 50; every frame differs by 50.
  const v = new Uint8Array([0, 0, 0, 0, 0, 0, 100, 100, 100, 100, 100, 100]);
  assert.deepEqual(movingForeground(v, 1, 4, 1, 1, { window: 4, threshold: 49 }), [1]);
  assert.deepEqual(movingForeground(v, 1, 4, 1, 1, { window: 4, threshold: 50 }), [0]);
  // Odd count (3 frames of 0, 100, 100): background 100, one frame of three moves.
  assert.deepEqual(movingForeground(v.subarray(3), 1, 3, 1, 1, { window: 3, threshold: 10 }), [1 / 3]);
});

test('bad shapes, windows and thresholds are refused with what was expected', () => {
  assert.throws(() => movingForeground(new Uint8Array(10), 1, 2, 1, 1), /movingForeground: expected 1x2x1x1x3 values, got 10/);
  assert.throws(() => movingForeground(new Uint8Array(6), 1, 2, 1, 1, { window: 4 }), /window must be an integer in \[2, 2\] for 2 frames, got 4/);
  assert.throws(() => movingForeground(new Uint8Array(6), 1, 2, 1, 1, { window: 2, threshold: -1 }), /threshold must be >= 0, got -1/);
});
