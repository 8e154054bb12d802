import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mse, psnr, psnrPerFrame, ssim, ssimPerFrame } from '../metrics/quality';
import { hashUniform } from '../metrics/fixtures/hash';

/** Produced by metrics/fixtures/make_quality_fixtures.py (scikit-image 0.19 + a scipy re-implementation). */
interface Case {
  name: string;
  shape: [number, number, number, number];
  data_range: number;
  max_val: number;
  ssim: number;
  ssim_frames: number[];
  psnr: number;
  psnr_frames: number[];
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'metrics', 'fixtures', 'quality_fixtures.json'), 'utf8')) as { cases: Case[] };

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function uint8Noise(shape: number[], seed: number): Uint8Array {
  return Uint8Array.from(hashUniform(numel(shape), seed, 0, 256), Math.floor);
}

function perturbUint8(a: Uint8Array, seed: number, amp: number): Uint8Array {
  const n = hashUniform(a.length, seed, -amp, amp);
  return Uint8Array.from(a, (v, i) => Math.min(255, Math.max(0, v + Math.floor(n[i] + 0.5))));
}

function structured(shape: number[]): Uint8Array {
  const [T, H, W, C] = shape;
  const out = new Uint8Array(numel(shape));
  let i = 0;
  for (let t = 0; t < T; t++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) out[i++] = (x * x + 3 * y * y + 40 * c + 9 * t) % 256;
  return out;
}

/** Rebuilds each fixture case's inputs exactly as the Python script did. */
function inputs(c: Case): [ArrayLike<number>, ArrayLike<number>] {
  const s = c.shape;
  switch (c.name) {
    case 'noise-image': {
      const a = uint8Noise(s, 700);
      return [a, perturbUint8(a, 701, 40)];
    }
    case 'structured-video': {
      const a = structured(s);
      return [a, perturbUint8(a, 702, 20)];
    }
    case 'shifted-gray': {
      const a = structured(s);
      const [, h, w] = s;
      const b = new Uint8Array(a.length);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b[y * w + x] = a[y * w + ((x + 1) % w)];
      return [a, b];
    }
    case 'float-video': {
      const a = hashUniform(numel(s), 703, 0, 1);
      const n = hashUniform(numel(s), 704, -0.05, 0.05);
      return [a, Float64Array.from(a, (v, i) => Math.min(1, Math.max(0, v * 0.8 + 0.1 + n[i])))];
    }
    case 'constants':
      return [new Uint8Array(numel(s)).fill(100), new Uint8Array(numel(s)).fill(110)];
    default:
      throw new Error(`unknown fixture case ${c.name}`);
  }
}

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

test('SSIM and PSNR match scikit-image / numpy on every fixture case', () => {
  assert.equal(fixture.cases.length, 5);
  for (const c of fixture.cases) {
    const [a, b] = inputs(c);
    const per = ssimPerFrame(a, b, c.shape, { dataRange: c.data_range });
    assert.equal(per.length, c.shape[0]);
    per.forEach((v, i) => close(v, c.ssim_frames[i], 1e-10, `${c.name} ssim frame ${i}`));
    close(ssim(a, b, c.shape, { dataRange: c.data_range }), c.ssim, 1e-10, `${c.name} ssim`);
    close(psnr(a, b, c.max_val), c.psnr, 1e-10, `${c.name} psnr`);
    psnrPerFrame(a, b, numel(c.shape.slice(1)), c.max_val).forEach((v, i) => close(v, c.psnr_frames[i], 1e-10, `${c.name} psnr frame ${i}`));
  }
});

test('shape forms: [H, W, C] and [B, T, H, W, C] give the same values as [T, H, W, C]', () => {
  const c = fixture.cases.find((k) => k.name === 'structured-video')!;
  const [a, b] = inputs(c);
  const [t, h, w, ch] = c.shape;
  close(ssim(a, b, [1, t, h, w, ch]), c.ssim, 1e-10, 'batch form');
  const frame = h * w * ch;
  close(ssim(Array.from(a).slice(frame, 2 * frame), Array.from(b).slice(frame, 2 * frame), [h, w, ch]), c.ssim_frames[1], 1e-10, 'image form');
});

test('identity, symmetry and hand-checked values', () => {
  const a = structured([2, 16, 16, 3]);
  assert.equal(psnr(a, a), Infinity);
  close(ssim(a, a, [2, 16, 16, 3]), 1, 1e-12, 'ssim(a, a)');
  const b = perturbUint8(a, 9, 30);
  close(ssim(a, b, [2, 16, 16, 3]), ssim(b, a, [2, 16, 16, 3]), 1e-12, 'symmetry');
  // MSE 1 everywhere on [0, 255]: PSNR = 20 log10(255) = 48.1308...
  const x = new Uint8Array(300).fill(10);
  const y = new Uint8Array(300).fill(11);
  assert.equal(mse(x, y), 1);
  close(psnr(x, y, 255), 20 * Math.log10(255), 1e-12, 'psnr');
  close(psnr([0, 0], [0.5, 0.5], 1), 10 * Math.log10(4), 1e-12, 'psnr float');
  assert.deepEqual(psnrPerFrame([1, 2, 3, 4], [1, 2, 3, 5], 2, 255).map((v) => Number.isFinite(v)), [false, true]);
  // constant frames: SSIM reduces to the luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
  const c1 = (0.01 * 255) ** 2;
  const k = new Uint8Array(11 * 11).fill(100);
  const l = new Uint8Array(11 * 11).fill(110);
  close(ssim(k, l, [11, 11, 1]), (2 * 100 * 110 + c1) / (100 * 100 + 110 * 110 + c1), 1e-12, 'constant ssim');
});

test('bad inputs are rejected', () => {
  assert.throws(() => psnr([1, 2], [1]), /differ in length/);
  assert.throws(() => ssim(new Uint8Array(10 * 10 * 3), new Uint8Array(10 * 10 * 3), [10, 10, 3]), /at least 11x11/);
  assert.throws(() => ssim(new Uint8Array(12 * 12), new Uint8Array(12 * 12), [12, 12, 2]), /shape \[12,12,2\] has 288 elements, arrays have 144/);
  assert.throws(() => psnrPerFrame([1, 2, 3], [1, 2, 3], 2), /does not divide/);
});
