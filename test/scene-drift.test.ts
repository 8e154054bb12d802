// metrics/scene-drift.ts against hand-computed values: a constant clip does not drift, a clip that
// switches colour at a known frame drifts by the switch size times the share of pairs across it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colourDrift, frameMeans, sceneDrift } from '../metrics/scene-drift';

function clip(T: number, H: number, W: number, colour: (t: number, y: number, x: number) => [number, number, number]): Uint8Array {
  const v = new Uint8Array(T * H * W * 3);
  for (let t = 0; t < T; t++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) v.set(colour(t, y, x), ((t * H + y) * W + x) * 3);
  return v;
}

test('frame means, and the drift of a constant, a switching and a ramping clip', () => {
  const T = 10;
  // Left half black, right half (200, 100, 50): mean (100, 50, 25) on every frame.
  const still = clip(T, 2, 4, (_t, _y, x) => (x < 2 ? [0, 0, 0] : [200, 100, 50]));
  assert.deepEqual(Array.from(frameMeans(still, T, 2, 4).subarray(0, 3)), [100, 50, 25]);
  // Switches from (0, 0, 0) to (30, 60, 90) at frame 6: a jump of mean size 60 per channel.
  const jump = clip(T, 2, 2, (t) => (t < 6 ? [0, 0, 0] : [30, 60, 90]));
  // A ramp: red = 10 t.
  const ramp = clip(T, 1, 1, (t) => [10 * t, 0, 0]);
  const m = frameMeans(jump, T, 2, 2);
  assert.equal(colourDrift(frameMeans(still, T, 2, 4), 3), 0);
  // lag 1: 9 pairs, one crosses the switch -> 60 / 9; lag 4: 6 pairs, 4 cross (t = 2..5) -> 60 * 4 / 6.
  assert.ok(Math.abs(colourDrift(m, 1) - 60 / 9) < 1e-12);
  assert.ok(Math.abs(colourDrift(m, 4) - 40) < 1e-12);
  // The ramp drifts linearly with the lag: (10 lag) / 3 per channel average.
  for (const lag of [1, 5, 9]) assert.ok(Math.abs(colourDrift(frameMeans(ramp, T, 1, 1), lag) - (10 * lag) / 3) < 1e-12);
  const both = new Uint8Array([...jump, ...clip(T, 2, 2, () => [7, 7, 7])]);
  const d = sceneDrift(both, 2, T, 2, 2, [1, 4]);
  assert.deepEqual(d.map((row) => row.map((x) => Number(x.toFixed(9)))), [[Number((60 / 9).toFixed(9)), 0], [40, 0]]);
});

test('bad shapes and lags are refused with what was expected', () => {
  assert.throws(() => frameMeans(new Uint8Array(5), 1, 1, 1), /frameMeans: expected 1x1x1x3 = 3 values, got 5/);
  assert.throws(() => colourDrift(new Float64Array(12), 4), /lag must be an integer in \[1, 3\] for 4 frames, got 4/);
  assert.throws(() => sceneDrift(new Uint8Array(10), 2, 1, 1, 1, [1]), /sceneDrift: expected 2x1x1x1x3 values, got 10/);
});
