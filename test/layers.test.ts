// lib/nn/layers.ts vs naive float64 JS references written from the definitions:
// replicate padding, Conv3d with TATS "same" padding, ConvTranspose3d as PyTorch defines it,
// Conv2d, Linear, GroupNorm, SiLU; temporal shift-equivariance; gradients vs central finite
// differences; no tensor leaks.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Conv2d, Conv3d, ConvTranspose3d, GroupNorm, Linear, replicatePad, samePads, silu, Triple } from '../lib/nn/layers';
import { ParamStore, Scope } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';

before(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

type Shape5 = [number, number, number, number, number];

const prod = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const clamp = (i: number, n: number): number => Math.min(Math.max(i, 0), n - 1);

/** Row-major strides of a shape. */
function strides(shape: number[]): number[] {
  const st = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) st[i] = st[i + 1] * shape[i + 1];
  return st;
}

function values(rng: Rng, shape: number[]): Float32Array {
  return rng.normalArray(prod(shape));
}

function read(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/** Asserts |a - b| <= tol * max(1, max|b|) elementwise, with the worst index in the message. */
function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tol * scale, `${what}: max |diff| ${worst} at ${at} (got ${a[at]}, want ${b[at]}), tolerance ${tol * scale}`);
}

/** The TATS/LVDM "same" rule per axis: total max(k - s, 0), front ceil, back floor. */
function pads1(k: number, s: number): [number, number] {
  const p = Math.max(k - s, 0);
  return [Math.ceil(p / 2), Math.floor(p / 2)];
}

/**
 * Naive 3D convolution (cross-correlation, as tf.conv3d and torch.nn.Conv3d) of x [B, T, H, W, Ci]
 * with w [kt, kh, kw, Ci, Co], stride s, padded by the "same" rule with replicate or zeros.
 */
function refConv3d(x: Float32Array, xs: Shape5, w: Float32Array, k: Triple, co: number, s: Triple, bias: Float32Array | null, mode: 'replicate' | 'zeros'): { y: Float64Array; shape: Shape5 } {
  const [B, T, H, W, Ci] = xs;
  const n = [T, H, W];
  const front = [0, 1, 2].map((a) => pads1(k[a], s[a])[0]);
  const outN = [0, 1, 2].map((a) => Math.floor((n[a] + Math.max(k[a] - s[a], 0) - k[a]) / s[a]) + 1);
  const shape: Shape5 = [B, outN[0], outN[1], outN[2], co];
  const y = new Float64Array(prod(shape));
  const xst = strides(xs);
  const wst = strides([...k, Ci, co]);
  const yst = strides(shape);
  const src = (a: number, o: number, kk: number): number => {
    const i = o * s[a] + kk - front[a];
    if (mode === 'replicate') return clamp(i, n[a]);
    return i >= 0 && i < n[a] ? i : -1;
  };
  for (let b = 0; b < B; b++)
    for (let ot = 0; ot < outN[0]; ot++)
      for (let oh = 0; oh < outN[1]; oh++)
        for (let ow = 0; ow < outN[2]; ow++)
          for (let c = 0; c < co; c++) {
            let acc = bias ? bias[c] : 0;
            for (let kt = 0; kt < k[0]; kt++) {
              const it = src(0, ot, kt);
              if (it < 0) continue;
              for (let kh = 0; kh < k[1]; kh++) {
                const ih = src(1, oh, kh);
                if (ih < 0) continue;
                for (let kw = 0; kw < k[2]; kw++) {
                  const iw = src(2, ow, kw);
                  if (iw < 0) continue;
                  for (let ci = 0; ci < Ci; ci++)
                    acc += x[b * xst[0] + it * xst[1] + ih * xst[2] + iw * xst[3] + ci] * w[kt * wst[0] + kh * wst[1] + kw * wst[2] + ci * wst[3] + c];
                }
              }
            }
            y[b * yst[0] + ot * yst[1] + oh * yst[2] + ow * yst[3] + c] = acc;
          }
  return { y, shape };
}

/**
 * Naive TATS SamePadConvTranspose3d: pad the input by the "same" rule (replicate or zeros), then
 * PyTorch's ConvTranspose3d with padding p = k - 1: out[o] += x_pad[i] * w[kk] for o = i*s + kk - p,
 * output length (n_pad - 1) * s - 2p + k. Weight layout [kt, kh, kw, Ci, Co].
 */
function refConvT3d(x: Float32Array, xs: Shape5, w: Float32Array, k: Triple, co: number, s: Triple, bias: Float32Array | null, mode: 'replicate' | 'zeros'): { y: Float64Array; shape: Shape5 } {
  const [B, T, H, W, Ci] = xs;
  const n = [T, H, W];
  const front = [0, 1, 2].map((a) => pads1(k[a], s[a])[0]);
  const np = [0, 1, 2].map((a) => n[a] + Math.max(k[a] - s[a], 0));
  const outN = [0, 1, 2].map((a) => (np[a] - 1) * s[a] - 2 * (k[a] - 1) + k[a]);
  const shape: Shape5 = [B, outN[0], outN[1], outN[2], co];
  const y = new Float64Array(prod(shape));
  if (bias) for (let i = 0; i < y.length; i++) y[i] = bias[i % co];
  const xst = strides(xs);
  const wst = strides([...k, Ci, co]);
  const yst = strides(shape);
  const src = (a: number, i: number): number => {
    const j = i - front[a];
    if (mode === 'replicate') return clamp(j, n[a]);
    return j >= 0 && j < n[a] ? j : -1;
  };
  for (let b = 0; b < B; b++)
    for (let pt = 0; pt < np[0]; pt++)
      for (let ph = 0; ph < np[1]; ph++)
        for (let pw = 0; pw < np[2]; pw++) {
          const it = src(0, pt);
          const ih = src(1, ph);
          const iw = src(2, pw);
          if (it < 0 || ih < 0 || iw < 0) continue;
          for (let kt = 0; kt < k[0]; kt++) {
            const ot = pt * s[0] + kt - (k[0] - 1);
            if (ot < 0 || ot >= outN[0]) continue;
            for (let kh = 0; kh < k[1]; kh++) {
              const oh = ph * s[1] + kh - (k[1] - 1);
              if (oh < 0 || oh >= outN[1]) continue;
              for (let kw = 0; kw < k[2]; kw++) {
                const ow = pw * s[2] + kw - (k[2] - 1);
                if (ow < 0 || ow >= outN[2]) continue;
                for (let ci = 0; ci < Ci; ci++) {
                  const xv = x[b * xst[0] + it * xst[1] + ih * xst[2] + iw * xst[3] + ci];
                  for (let c = 0; c < co; c++) y[b * yst[0] + ot * yst[1] + oh * yst[2] + ow * yst[3] + c] += xv * w[kt * wst[0] + kh * wst[1] + kw * wst[2] + ci * wst[3] + c];
                }
              }
            }
          }
        }
  return { y, shape };
}

function store(seed: number): Scope {
  return new Scope(new ParamStore(new Rng(seed)));
}

/** Frames [t0, t0 + len) of a [B, T, ...] array. */
function frames(x: Float32Array, shape: number[], t0: number, len: number): Float32Array {
  const per = prod(shape.slice(2));
  const out = new Float32Array(shape[0] * len * per);
  for (let b = 0; b < shape[0]; b++) out.set(x.subarray((b * shape[1] + t0) * per, (b * shape[1] + t0 + len) * per), b * len * per);
  return out;
}

test('samePads follows the TATS rule (total k - s, front ceil, back floor)', () => {
  assert.deepEqual(samePads([3, 4, 4], [1, 1, 2]), [
    [1, 1],
    [2, 1],
    [1, 1],
  ]);
  assert.deepEqual(samePads([3, 1, 2], [2, 1, 2]), [
    [1, 0],
    [0, 0],
    [0, 0],
  ]);
});

test('replicatePad matches a naive edge-clamping reference (asymmetric, multi-axis, pad > size)', () => {
  const rng = new Rng(1);
  const shape = [2, 3, 4, 2];
  const pads: [number, number][] = [
    [1, 0],
    [2, 5],
    [0, 1],
  ];
  const x = values(rng, shape);
  const got = tf.tidy(() => {
    const y = replicatePad(tf.tensor(x, shape), pads);
    return { shape: y.shape, data: read(y) };
  });
  const outShape = [shape[0] + 1, shape[1] + 7, shape[2] + 1, shape[3]];
  assert.deepEqual(got.shape, outShape);
  const xst = strides(shape);
  const ref = new Float32Array(prod(outShape));
  let i = 0;
  for (let a = 0; a < outShape[0]; a++)
    for (let b = 0; b < outShape[1]; b++)
      for (let c = 0; c < outShape[2]; c++)
        for (let d = 0; d < outShape[3]; d++)
          ref[i++] = x[clamp(a - 1, shape[0]) * xst[0] + clamp(b - 2, shape[1]) * xst[1] + clamp(c, shape[2]) * xst[2] + d];
  assert.deepEqual(Array.from(got.data), Array.from(ref));
});

const CONV3D_CASES: { k: number; s: Triple; xs: Shape5 }[] = [
  { k: 3, s: [1, 1, 1], xs: [2, 4, 5, 3, 2] },
  { k: 3, s: [2, 2, 2], xs: [1, 4, 6, 4, 2] },
  { k: 3, s: [1, 2, 2], xs: [2, 3, 4, 6, 3] },
  { k: 4, s: [1, 1, 1], xs: [1, 4, 5, 3, 2] },
  { k: 4, s: [2, 2, 2], xs: [2, 4, 6, 4, 2] },
  { k: 4, s: [1, 2, 2], xs: [1, 3, 4, 6, 3] },
];

test('Conv3d (replicate and zeros "same" padding) matches a naive 3D convolution', () => {
  const rng = new Rng(2);
  for (const mode of ['replicate', 'zeros'] as const) {
    for (const c of CONV3D_CASES) {
      const co = 3;
      const layer = new Conv3d(store(10 + c.k), c.xs[4], co, c.k, { stride: c.s, padMode: mode });
      const x = values(rng, c.xs);
      const got = tf.tidy(() => {
        const y = layer.apply(tf.tensor(x, c.xs) as tf.Tensor5D);
        return { shape: y.shape, data: read(y) };
      });
      const ref = refConv3d(x, c.xs, read(layer.weight), [c.k, c.k, c.k], co, c.s, read(layer.bias!), mode);
      const what = `${mode} k=${c.k} s=${c.s} x=${c.xs}`;
      assert.deepEqual(got.shape, ref.shape, what);
      // Output is the input size divided by the stride.
      assert.deepEqual(got.shape.slice(1, 4), [c.xs[1] / c.s[0], c.xs[2] / c.s[1], c.xs[3] / c.s[2]], what);
      assertClose(got.data, ref.y, 2e-5, what);
      layer.weight.dispose();
      layer.bias!.dispose();
    }
  }
});

const CONVT_CASES: { k: Triple; s: Triple; xs: Shape5 }[] = [
  { k: [4, 4, 4], s: [2, 2, 2], xs: [1, 3, 3, 2, 2] },
  { k: [4, 4, 4], s: [1, 2, 2], xs: [2, 3, 2, 3, 2] },
  { k: [4, 4, 4], s: [1, 1, 1], xs: [1, 3, 4, 3, 2] },
  { k: [4, 4, 3], s: [2, 2, 1], xs: [1, 2, 3, 3, 2] },
  { k: [1, 4, 3], s: [1, 2, 1], xs: [2, 3, 3, 2, 2] },
];

test('ConvTranspose3d matches the naive PyTorch definition after replicate "same" padding; output = stride x input', () => {
  const rng = new Rng(3);
  for (const mode of ['replicate', 'zeros'] as const) {
    for (const c of CONVT_CASES) {
      const co = 3;
      const layer = new ConvTranspose3d(store(20), c.xs[4], co, c.k, { stride: c.s, padMode: mode });
      const x = values(rng, c.xs);
      const got = tf.tidy(() => {
        const y = layer.apply(tf.tensor(x, c.xs) as tf.Tensor5D);
        return { shape: y.shape, data: read(y) };
      });
      const ref = refConvT3d(x, c.xs, read(layer.weight), c.k, co, c.s, read(layer.bias!), mode);
      const what = `${mode} k=${c.k} s=${c.s} x=${c.xs}`;
      assert.deepEqual(ref.shape.slice(1, 4), [c.xs[1] * c.s[0], c.xs[2] * c.s[1], c.xs[3] * c.s[2]], `reference shape ${what}`);
      assert.deepEqual(got.shape, ref.shape, what);
      assertClose(got.data, ref.y, 2e-5, what);
      layer.weight.dispose();
      layer.bias!.dispose();
    }
  }
  assert.throws(() => new ConvTranspose3d(store(0), 2, 2, 3, { stride: 2 }), /multiple of stride/);
  // Per the PyTorch formula these give 2n - 2 and 2n + 2 frames, not 2n: refused.
  const refLen = (n: number, k: number, st: number): number => (n + k - st - 1) * st - 2 * (k - 1) + k;
  assert.deepEqual([refLen(5, 2, 2), refLen(5, 6, 2)], [8, 12]);
  assert.throws(() => new ConvTranspose3d(store(0), 2, 2, [2, 4, 4], { stride: 2 }), /kernel 2 with stride 2/);
  assert.throws(() => new ConvTranspose3d(store(0), 2, 2, 6, { stride: [1, 2, 2] }), /kernel 6 with stride 2/);
});

/**
 * Temporal shift-equivariance. Runs `apply` on frames [0, T) and [shiftIn, T + shiftIn) of one
 * clip; output frame j of the first must equal frame j - shiftOut of the second wherever neither
 * depends on padding (`interior(j)`), and differ at the overlapping frames that do.
 */
function checkShift(
  what: string,
  apply: (x: tf.Tensor5D) => tf.Tensor5D,
  xs: Shape5,
  shiftIn: number,
  shiftOut: number,
  interior: (j: number, outT: number) => boolean,
  rng: Rng,
): void {
  const full: Shape5 = [xs[0], xs[1] + shiftIn, xs[2], xs[3], xs[4]];
  const x = values(rng, full);
  const run = (t0: number): { y: Float32Array; shape: number[] } =>
    tf.tidy(() => {
      const y = apply(tf.tensor(frames(x, full, t0, xs[1]), xs) as tf.Tensor5D);
      return { y: read(y), shape: y.shape };
    });
  const a = run(0);
  const b = run(shiftIn);
  const outT = a.shape[1];
  const per = prod(a.shape.slice(2));
  let nInterior = 0;
  let nBorder = 0;
  for (let j = shiftOut; j < outT; j++) {
    for (let bb = 0; bb < xs[0]; bb++) {
      const fa = a.y.subarray((bb * outT + j) * per, (bb * outT + j + 1) * per);
      const fb = b.y.subarray((bb * outT + j - shiftOut) * per, (bb * outT + j - shiftOut + 1) * per);
      if (interior(j, outT)) {
        assert.deepEqual(Array.from(fb), Array.from(fa), `${what}: interior frame ${j} not shifted exactly`);
        nInterior++;
      } else {
        let maxDiff = 0;
        for (let i = 0; i < per; i++) maxDiff = Math.max(maxDiff, Math.abs(fa[i] - fb[i]));
        assert.ok(maxDiff > 1e-3, `${what}: border frame ${j} unexpectedly equal (max diff ${maxDiff})`);
        nBorder++;
      }
    }
  }
  assert.ok(nInterior > 0 && nBorder > 0, `${what}: ${nInterior} interior and ${nBorder} border frames checked`);
}

test('Conv3d with replicate padding is shift-equivariant in time away from the borders', () => {
  const rng = new Rng(4);
  for (const c of [
    { k: 3, s: [1, 1, 1] as Triple },
    { k: 4, s: [1, 1, 1] as Triple },
    { k: 4, s: [1, 2, 2] as Triple },
    { k: 4, s: [2, 2, 2] as Triple },
    { k: 3, s: [2, 1, 1] as Triple },
  ]) {
    const layer = new Conv3d(store(30), 2, 3, c.k, { stride: c.s });
    const st = c.s[0];
    const f = pads1(c.k, st)[0];
    const T = 8;
    // Output frame j reads input frames [j*st - f, j*st - f + k - 1]; the shifted run's frame
    // j - 1 reads the same frames, offset by st, of its own input: both must lie inside [0, T).
    const inside = (lo: number): boolean => lo >= 0 && lo + c.k - 1 <= T - 1;
    const interior = (j: number): boolean => inside(j * st - f) && inside((j - 1) * st - f);
    checkShift(`conv3d k=${c.k} s=${c.s}`, (x) => layer.apply(x), [2, T, 4, 4, 2], st, 1, interior, rng);
    layer.weight.dispose();
    layer.bias!.dispose();
  }
});

test('ConvTranspose3d with replicate padding is shift-equivariant in time away from the borders', () => {
  const rng = new Rng(5);
  for (const c of [
    { k: [4, 4, 4] as Triple, s: [2, 2, 2] as Triple },
    { k: [4, 4, 4] as Triple, s: [1, 2, 2] as Triple },
    { k: [4, 3, 3] as Triple, s: [1, 1, 1] as Triple },
  ]) {
    const layer = new ConvTranspose3d(store(31), 2, 3, c.k, { stride: c.s });
    const [k, st] = [c.k[0], c.s[0]];
    const f = pads1(k, st)[0];
    const T = 6;
    // Output o sums padded inputs i with o = i*st + kk - (k-1): i in [ceil(o/st), floor((o+k-1)/st)];
    // padded index i is real frame i - f. Interior: every contributing frame is real in both runs.
    const inside = (o: number): boolean => Math.ceil(o / st) - f >= 0 && Math.floor((o + k - 1) / st) - f <= T - 1;
    const interior = (j: number): boolean => inside(j) && inside(j - st);
    checkShift(`convT3d k=${c.k} s=${c.s}`, (x) => layer.apply(x), [1, T, 3, 3, 2], 1, st, interior, rng);
    layer.weight.dispose();
    layer.bias!.dispose();
  }
});

test('a clip constant in time gives an output periodic in time (period = stride) with replicate padding, not zero padding', () => {
  const rng = new Rng(6);
  const xs: Shape5 = [1, 6, 4, 4, 2];
  const frame = values(rng, [1, 1, 4, 4, 2]);
  const x = new Float32Array(prod(xs));
  for (let t = 0; t < xs[1]; t++) x.set(frame, t * frame.length);
  // Largest change between output frames t and t - period (a strided transposed conv alternates
  // between kernel phases even on a constant input, so its period is the stride).
  const spread = (y: Float32Array, shape: number[], period: number): number => {
    const per = prod(shape.slice(2));
    let m = 0;
    for (let t = period; t < shape[1]; t++) for (let i = 0; i < per; i++) m = Math.max(m, Math.abs(y[t * per + i] - y[(t - period) * per + i]));
    return m;
  };
  for (const mode of ['replicate', 'zeros'] as const) {
    const conv = new Conv3d(store(40), 2, 3, 3, { padMode: mode });
    const convT = new ConvTranspose3d(store(41), 2, 3, 4, { stride: [2, 2, 2], padMode: mode });
    for (const [name, f, period] of [
      ['conv3d', (t: tf.Tensor5D) => conv.apply(t), 1],
      ['convT3d', (t: tf.Tensor5D) => convT.apply(t), 2],
    ] as const) {
      const { y, shape } = tf.tidy(() => {
        const out = f(tf.tensor(x, xs) as tf.Tensor5D);
        return { y: read(out), shape: out.shape };
      });
      const s = spread(y, shape, period);
      if (mode === 'replicate') assert.equal(s, 0, `${name} replicate: frames differ by ${s}`);
      else assert.ok(s > 1e-2, `${name} zeros: border frames should differ (${s})`);
    }
    for (const v of [conv.weight, conv.bias!, convT.weight, convT.bias!]) v.dispose();
  }
});

test('Conv2d matches a naive zero-padded 2D convolution (apply and applyVideo)', () => {
  const rng = new Rng(7);
  for (const c of [
    { k: 3, stride: 1, padding: undefined as number | undefined },
    { k: 3, stride: 2, padding: 1 },
    { k: 4, stride: 2, padding: 1 },
    { k: 1, stride: 1, padding: 0 },
    { k: 3, stride: 1, padding: 0 },
  ]) {
    const [N, H, W, Ci, Co] = [2, 6, 5, 3, 4];
    const layer = new Conv2d(store(50), Ci, Co, c.k, { stride: c.stride, padding: c.padding });
    const p = c.padding ?? Math.floor(c.k / 2);
    const x = values(rng, [N, H, W, Ci]);
    const w = read(layer.weight);
    const bias = read(layer.bias!);
    const oh = Math.floor((H + 2 * p - c.k) / c.stride) + 1;
    const ow = Math.floor((W + 2 * p - c.k) / c.stride) + 1;
    const ref = new Float64Array(N * oh * ow * Co);
    for (let n = 0; n < N; n++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++)
          for (let o = 0; o < Co; o++) {
            let acc = bias[o];
            for (let a = 0; a < c.k; a++)
              for (let b = 0; b < c.k; b++) {
                const y = i * c.stride + a - p;
                const z = j * c.stride + b - p;
                if (y < 0 || y >= H || z < 0 || z >= W) continue;
                for (let ci = 0; ci < Ci; ci++) acc += x[((n * H + y) * W + z) * Ci + ci] * w[((a * c.k + b) * Ci + ci) * Co + o];
              }
            ref[((n * oh + i) * ow + j) * Co + o] = acc;
          }
    const what = `conv2d k=${c.k} s=${c.stride} p=${p}`;
    const got = tf.tidy(() => {
      const y = layer.apply(tf.tensor(x, [N, H, W, Ci]) as tf.Tensor4D);
      return { shape: y.shape, data: read(y) };
    });
    assert.deepEqual(got.shape, [N, oh, ow, Co], what);
    assertClose(got.data, ref, 2e-5, what);
    // applyVideo: the same x seen as one clip of N frames.
    const vid = tf.tidy(() => {
      const y = layer.applyVideo(tf.tensor(x, [1, N, H, W, Ci]) as tf.Tensor5D);
      return { shape: y.shape, data: read(y) };
    });
    assert.deepEqual(vid.shape, [1, N, oh, ow, Co], what);
    assertClose(vid.data, ref, 2e-5, `${what} video`);
    layer.weight.dispose();
    layer.bias!.dispose();
  }
});

test('Linear matches a naive matrix product on [..., Cin] inputs (with and without bias)', () => {
  const rng = new Rng(8);
  for (const bias of [true, false]) {
    const layer = new Linear(store(60), 4, 5, { bias });
    const x = values(rng, [2, 3, 4]);
    const w = read(layer.weight);
    const b = layer.bias ? read(layer.bias) : new Float32Array(5);
    const ref = new Float64Array(2 * 3 * 5);
    for (let r = 0; r < 6; r++) for (let o = 0; o < 5; o++) {
      let acc = b[o];
      for (let i = 0; i < 4; i++) acc += x[r * 4 + i] * w[i * 5 + o];
      ref[r * 5 + o] = acc;
    }
    const got = tf.tidy(() => {
      const y = layer.apply(tf.tensor(x, [2, 3, 4]));
      return { shape: y.shape, data: read(y) };
    });
    assert.deepEqual(got.shape, [2, 3, 5]);
    assertClose(got.data, ref, 1e-6, `linear bias=${bias}`);
    assert.equal(layer.bias === null, !bias);
    layer.weight.dispose();
    layer.bias?.dispose();
  }
});

/** Naive GroupNorm over [N, ..., C] with affine gamma/beta, float64. */
function refGroupNorm(x: Float32Array, shape: number[], groups: number, eps: number, gamma: Float32Array, beta: Float32Array): Float64Array {
  const N = shape[0];
  const C = shape[shape.length - 1];
  const S = prod(shape.slice(1, -1));
  const cg = C / groups;
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++)
    for (let g = 0; g < groups; g++) {
      let m = 0;
      for (let s = 0; s < S; s++) for (let c = g * cg; c < (g + 1) * cg; c++) m += x[(n * S + s) * C + c];
      m /= S * cg;
      let v = 0;
      for (let s = 0; s < S; s++) for (let c = g * cg; c < (g + 1) * cg; c++) v += (x[(n * S + s) * C + c] - m) ** 2;
      v /= S * cg;
      for (let s = 0; s < S; s++)
        for (let c = g * cg; c < (g + 1) * cg; c++) {
          const i = (n * S + s) * C + c;
          y[i] = ((x[i] - m) / Math.sqrt(v + eps)) * gamma[c] + beta[c];
        }
    }
  return y;
}

test('GroupNorm matches a naive per-group normalisation (5D and 4D, affine, eps)', () => {
  const rng = new Rng(9);
  for (const c of [
    { shape: [2, 3, 4, 4, 6], groups: 2, eps: 1e-6 },
    { shape: [3, 5, 4, 8], groups: 4, eps: 1e-5 },
    { shape: [2, 2, 3, 3, 4], groups: 1, eps: 1e-6 },
    { shape: [1, 3, 2, 2, 3], groups: 3, eps: 0.5 },
  ]) {
    const C = c.shape[c.shape.length - 1];
    const gn = new GroupNorm(store(70), c.groups, C, c.eps);
    tf.tidy(() => gn.gamma.assign(tf.tensor(values(rng, [C]))));
    tf.tidy(() => gn.beta.assign(tf.tensor(values(rng, [C]))));
    // Per-sample offsets and scales so the groups' statistics really differ.
    const x = values(rng, c.shape).map((v, i) => v * (1 + (i % C)) + 3 * (i % 7));
    const got = tf.tidy(() => read(gn.apply(tf.tensor(x, c.shape))));
    const ref = refGroupNorm(x, c.shape, c.groups, c.eps, read(gn.gamma), read(gn.beta));
    assertClose(got, ref, 2e-5, `groupnorm ${c.shape} g=${c.groups}`);
    const plain = tf.tidy(() => read(gn.normalize(tf.tensor(x, c.shape))));
    const refPlain = refGroupNorm(x, c.shape, c.groups, c.eps, new Float32Array(C).fill(1), new Float32Array(C));
    assertClose(plain, refPlain, 2e-5, `normalize ${c.shape}`);
    gn.gamma.dispose();
    gn.beta.dispose();
  }
  assert.throws(() => new GroupNorm(store(0).child('enc.norm'), 4, 6), /enc\.norm.*6 channels.*4 groups/);
});

test('silu(x) = x * sigmoid(x)', () => {
  const x = Float32Array.from([-20, -3, -1, -0.5, 0, 0.25, 1, 2.5, 10, 30]);
  const got = tf.tidy(() => read(silu(tf.tensor(x))));
  assertClose(got, Array.from(x, (v) => v / (1 + Math.exp(-v))), 1e-6, 'silu');
});

/**
 * Central finite differences of L = sum(y * R) (accumulated in float64) at chosen coordinates of
 * a variable vs the analytic gradient. `forward` reads the variable.
 */
function fdCheck(what: string, v: tf.Variable, forward: () => tf.Tensor, r: Float32Array, analytic: Float32Array, coords: number[], h: number, tol: number): void {
  const base = read(v).slice();
  const loss = (vals: Float32Array): number => {
    tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
    const y = tf.tidy(() => read(forward()));
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * r[i];
    return s;
  };
  let scale = 1e-3;
  for (const g of analytic) scale = Math.max(scale, Math.abs(g));
  for (const i of coords) {
    const p = base.slice();
    p[i] += h;
    const lp = loss(p);
    p[i] -= 2 * h;
    const lm = loss(p);
    const fd = (lp - lm) / (2 * h);
    assert.ok(Math.abs(fd - analytic[i]) <= tol * scale, `${what}: d/d[${i}] analytic ${analytic[i]} vs finite difference ${fd} (scale ${scale})`);
  }
  tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
}

/** Gradients of sum(y * R) w.r.t. x and the given parameters, checked by finite differences. */
function gradCheck(what: string, xs: number[], apply: (x: tf.Tensor) => tf.Tensor, params: tf.Variable[], rng: Rng, h: number, tol: number): void {
  const x0 = tf.tensor(values(rng, xs), xs);
  const xv = tf.variable(x0);
  x0.dispose();
  const outShape = tf.tidy(() => apply(xv).shape);
  const r = values(rng, outShape);
  const rT = tf.tensor(r, outShape);
  const f = (): tf.Scalar => tf.sum(tf.mul(apply(xv), rT));
  const grads = tf.tidy(() => {
    const { grads: g } = tf.variableGrads(f, [xv, ...params]);
    return [xv, ...params].map((p) => read(g[p.name]));
  });
  [xv, ...params].forEach((p, idx) => {
    const name = `${what} ${idx === 0 ? 'input' : `param ${idx}`}`;
    const n = p.size;
    // Corners (where replicate padding folds several taps onto one value) plus random coordinates.
    const coords = [...new Set([0, n - 1, Math.floor(n / 2), ...Array.from({ length: 8 }, () => rng.int(0, n - 1))])];
    fdCheck(name, p, () => apply(xv), r, grads[idx], coords, h, tol);
  });
  xv.dispose();
  rT.dispose();
}

test('gradients of Conv3d, ConvTranspose3d and GroupNorm w.r.t. input and weights match finite differences', () => {
  const rng = new Rng(10);
  for (const c of [
    { k: 3, s: [1, 1, 1] as Triple },
    { k: 4, s: [2, 2, 2] as Triple },
    { k: 4, s: [1, 2, 2] as Triple },
  ]) {
    const layer = new Conv3d(store(80), 2, 3, c.k, { stride: c.s });
    gradCheck(`conv3d k=${c.k} s=${c.s}`, [1, 4, 4, 4, 2], (x) => layer.apply(x as tf.Tensor5D), [layer.weight, layer.bias!], rng, 0.05, 2e-3);
    layer.weight.dispose();
    layer.bias!.dispose();
  }
  for (const c of [
    { k: [4, 4, 4] as Triple, s: [2, 2, 2] as Triple },
    { k: [4, 4, 4] as Triple, s: [1, 2, 2] as Triple },
  ]) {
    const layer = new ConvTranspose3d(store(81), 2, 3, c.k, { stride: c.s });
    gradCheck(`convT3d k=${c.k} s=${c.s}`, [1, 3, 3, 2, 2], (x) => layer.apply(x as tf.Tensor5D), [layer.weight, layer.bias!], rng, 0.05, 2e-3);
    layer.weight.dispose();
    layer.bias!.dispose();
  }
  const gn = new GroupNorm(store(82), 2, 4);
  tf.tidy(() => gn.gamma.assign(tf.tensor(values(rng, [4]))));
  tf.tidy(() => gn.beta.assign(tf.tensor(values(rng, [4]))));
  // Nonlinear: truncation error O(h^2); h = 1e-2 on unit-scale inputs.
  gradCheck('groupnorm', [2, 2, 3, 3, 4], (x) => gn.apply(x), [gn.gamma, gn.beta], rng, 1e-2, 1e-2);
  gn.gamma.dispose();
  gn.beta.dispose();
});

test('no tensor leaks: apply and gradients leave tf.memory().numTensors unchanged', () => {
  const rng = new Rng(11);
  const scope = store(90);
  const conv = new Conv3d(scope.child('c3'), 2, 3, 4, { stride: [1, 2, 2] });
  const convZ = new Conv3d(scope.child('c3z'), 2, 3, 3, { padMode: 'zeros' });
  const convT = new ConvTranspose3d(scope.child('ct'), 2, 3, 4, { stride: 2 });
  const c2 = new Conv2d(scope.child('c2'), 2, 3, 3);
  const lin = new Linear(scope.child('lin'), 2, 3);
  const gn = new GroupNorm(scope.child('gn'), 2, 2);
  const x = tf.tensor(values(rng, [1, 4, 4, 4, 2]), [1, 4, 4, 4, 2]) as tf.Tensor5D;
  const fns: [string, () => tf.Tensor][] = [
    ['conv3d', () => conv.apply(x)],
    ['conv3d zeros', () => convZ.apply(x)],
    ['convT3d', () => convT.apply(x)],
    ['conv2d video', () => c2.applyVideo(x)],
    ['linear', () => lin.apply(x)],
    ['groupnorm', () => gn.apply(x)],
    ['silu', () => silu(x)],
    ['replicatePad', () => replicatePad(x, [[0, 0], [1, 2], [2, 1]])],
  ];
  for (const [name, fn] of fns) {
    const n0 = tf.memory().numTensors;
    const y = fn();
    assert.equal(tf.memory().numTensors, n0 + 1, `${name}: apply left intermediates`);
    y.dispose();
    tf.tidy(() => {
      fn();
    });
    assert.equal(tf.memory().numTensors, n0, `${name}: leaked inside tf.tidy`);
  }
  const vars = scope.store.trainable().map(([, v]) => v);
  const n0 = tf.memory().numTensors;
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.addN([tf.sum(convT.apply(x)), tf.sum(gn.apply(x)), tf.sum(conv.apply(x))]) as tf.Scalar, vars);
    assert.ok(Object.keys(grads).length > 0);
  });
  assert.equal(tf.memory().numTensors, n0, 'gradients leaked');
  x.dispose();
  scope.store.dispose();
});
