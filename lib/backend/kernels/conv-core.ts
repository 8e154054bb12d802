// Shared building blocks for the conv kernels: 2D/3D convolutions, their input and filter gradients,
// all expressed through the fast XNNPACK conv2d of the wasm backend.
//
// A kt x kh x kw 3D convolution is one conv2d over a "time-stacked" input: the kt time-shifted
// frames that feed each output frame are interleaved along channels ([.., kt*C]) and the filter is
// reshaped to [kh, kw, kt*C, Co]. Gradients w.r.t. the input use the sub-pixel decomposition of a
// transposed convolution (one stride-1 conv per output phase, no zero insertion); gradients w.r.t.
// the filter are themselves a convolution with the batch as channel axis and the stride as dilation.
import * as tf from '@tensorflow/tfjs';
import { transposeInfo } from './transpose';
import { alias, alloc, conv2d, Conv2DParams, free, heapF32, offsetOf, releaseView, sizeOf, view, WasmBackend } from './wasm-util';

/** Frames read for output frame d and tap t: start + d*stride + t*dil (zero outside [0, D)). */
export interface TimeWindow {
  start: number;
  count: number;
  stride: number;
  taps: number;
  dil: number;
}

/** Rows (or columns) read: start .. start+len-1 (zero outside the input). */
export interface SpaceWindow {
  start: number;
  len: number;
}

/**
 * S[n*count + d, y, x, t*C + c] = x[n, start + d*stride + t*dil, hw.start + y, ww.start + x, c],
 * zero where the index falls outside x. x is [N, D, H, W, C]; S is [N*count, hw.len, ww.len, taps*C].
 */
export function stackFrames(b: WasmBackend, x: tf.TensorInfo, tw: TimeWindow, hw: SpaceWindow, ww: SpaceWindow): tf.TensorInfo {
  const [N, D, H, W, C] = x.shape;
  const K = tw.taps * C;
  const out = alloc(b, [N * tw.count, hw.len, ww.len, K]);
  const heap = heapF32(b);
  const xo = offsetOf(b, x);
  const oo = offsetOf(b, out);
  const y0 = Math.max(0, -hw.start);
  const y1 = Math.min(hw.len, H - hw.start);
  const x0 = Math.max(0, -ww.start);
  const x1 = Math.min(ww.len, W - ww.start);
  const lastFrame = tw.start + (tw.count - 1) * tw.stride + (tw.taps - 1) * tw.dil;
  const partial = y0 > 0 || y1 < hw.len || x0 > 0 || x1 < ww.len || tw.start < 0 || lastFrame >= D;
  if (partial) heap.fill(0, oo, oo + sizeOf(out.shape));
  if (y1 <= y0 || x1 <= x0) return out;
  const run = x1 - x0;
  const frame = H * W * C;
  const oframe = hw.len * ww.len * K;
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < tw.count; d++) {
      for (let t = 0; t < tw.taps; t++) {
        const f = tw.start + d * tw.stride + t * tw.dil;
        if (f < 0 || f >= D) continue;
        const src = xo + (n * D + f) * frame;
        const dst = oo + (n * tw.count + d) * oframe + t * C;
        for (let y = y0; y < y1; y++) {
          const s = src + ((hw.start + y) * W + ww.start + x0) * C;
          const o = dst + (y * ww.len + x0) * K;
          if (tw.taps === 1) {
            heap.copyWithin(o, s, s + run * C);
          } else if (C >= 16) {
            for (let p = 0; p < run; p++) heap.copyWithin(o + p * K, s + p * C, s + p * C + C);
          } else {
            for (let p = 0; p < run; p++) {
              const sp = s + p * C;
              const op = o + p * K;
              for (let c = 0; c < C; c++) heap[op + c] = heap[sp + c];
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * out[n*count + d, i, j, :] = sum over (t, a, b) of
 *   x[n, tw.start + d*tw.stride + t*tw.dil, hw.start + i*sh + a*dh, ww.start + j*sw + b*dw, :] . w2[a, b, t*C + :, :]
 * with zeros outside x. x is [N, D, H, W, C], w2 is [kh, kw, taps*C, Co].
 */
export function convWindow(
  b: WasmBackend,
  x: tf.TensorInfo,
  tw: TimeWindow,
  hw: SpaceWindow,
  ww: SpaceWindow,
  w2: tf.TensorInfo,
  sh: number,
  sw: number,
  dh: number,
  dw: number,
): tf.TensorInfo {
  const [N, D, H, W, C] = x.shape;
  const [kh, kw] = w2.shape;
  const ho = Math.floor((hw.len - (kh - 1) * dh - 1) / sh) + 1;
  const wo = Math.floor((ww.len - (kw - 1) * dw - 1) / sw) + 1;
  // Spatial window as conv2d zero padding, when that gives exactly the same outputs.
  const pt = -hw.start;
  const pl = -ww.start;
  const pb = Math.max(0, hw.start + hw.len - H);
  const pr = Math.max(0, ww.start + ww.len - W);
  const hoDirect = Math.floor((H + pt + pb - (kh - 1) * dh - 1) / sh) + 1;
  const woDirect = Math.floor((W + pl + pr - (kw - 1) * dw - 1) / sw) + 1;
  const spatialDirect = pt >= 0 && pl >= 0 && hoDirect === ho && woDirect === wo;
  const timeWhole = tw.taps === 1 && tw.stride === 1 && tw.start === 0 && tw.count === D;
  const timeRange = tw.taps === 1 && tw.stride === 1 && N === 1 && tw.start >= 0 && tw.start + tw.count <= D;
  const p: Conv2DParams = { kh, kw, sh, sw, dh, dw, pad: [pt, pb, pl, pr] };
  if (spatialDirect && (timeWhole || timeRange)) {
    const frames = timeWhole ? alias(x, [N * D, H, W, C]) : view(b, x, tw.start * H * W * C, [tw.count, H, W, C]);
    const out = conv2d(b, frames, w2, p);
    if (!timeWhole) releaseView(b, frames);
    return out;
  }
  const s = stackFrames(b, x, tw, hw, ww);
  const out = conv2d(b, s, w2, { kh, kw, sh, sw, dh, dw, pad: [0, 0, 0, 0] });
  free(b, s);
  return out;
}

/**
 * Filter gradient of a VALID conv2d: s [B, Hn, Wn, K] with Hn = (Ho-1)*sh + kh exactly, dy
 * [B, Ho, Wo, Co] -> [kh, kw, K, Co]. It is the convolution of s (batch as channels) with dy as the
 * filter, the stride becoming the dilation.
 */
export function filterGradValid(b: WasmBackend, s: tf.TensorInfo, dy: tf.TensorInfo, kh: number, kw: number, sh: number, sw: number): tf.TensorInfo {
  const [B, Hn, Wn] = s.shape;
  const [, Ho, Wo] = dy.shape;
  if (Hn !== (Ho - 1) * sh + kh || Wn !== (Wo - 1) * sw + kw || dy.shape[0] !== B) {
    throw new Error(`filterGradValid: input [${s.shape}] does not match dy [${dy.shape}] for ${kh}x${kw} stride ${sh},${sw}`);
  }
  // With few images the batch-as-channels convolution has too few channels per tap to run
  // fast: cut the images into bands of output rows, which become extra "images".
  const bands = B >= MIN_FILTER_GRAD_BATCH ? 1 : Math.min(Ho, Math.ceil(MIN_FILTER_GRAD_BATCH / B));
  if (bands > 1) {
    const rows = Math.ceil(Ho / bands);
    const nb = Math.ceil(Ho / rows);
    if (nb > 1) {
      const sb = bandRows(b, s, nb, rows * sh, (rows - 1) * sh + kh);
      const dyb = bandRows(b, dy, nb, rows, rows);
      const out = filterGradValid(b, sb, dyb, kh, kw, sh, sw);
      free(b, sb);
      free(b, dyb);
      return out;
    }
  }
  const st = transposeInfo(b, s, [3, 1, 2, 0]); // [K, Hn, Wn, B]
  const dyt = transposeInfo(b, dy, [1, 2, 0, 3]); // [Ho, Wo, B, Co]
  const r = conv2d(b, st, dyt, { kh: Ho, kw: Wo, sh: 1, sw: 1, dh: sh, dw: sw, pad: [0, 0, 0, 0] }); // [K, kh, kw, Co]
  free(b, st);
  free(b, dyt);
  const out = transposeInfo(b, r, [1, 2, 0, 3]); // [kh, kw, K, Co]
  free(b, r);
  return out;
}

/** Below this batch, filterGradValid splits images into row bands (1 image 64x64x32: 8.6 -> 12.3 GFLOP/s). */
const MIN_FILTER_GRAD_BATCH = 8;

/**
 * Cuts each image of t [B, H, W, C] into nb bands: band j holds rows j*step .. j*step+len-1
 * (zero past the end) -> [B*nb, len, W, C].
 */
function bandRows(b: WasmBackend, t: tf.TensorInfo, nb: number, step: number, len: number): tf.TensorInfo {
  const [B, H, W, C] = t.shape;
  const out = alloc(b, [B * nb, len, W, C]);
  const heap = heapF32(b);
  const to = offsetOf(b, t);
  const oo = offsetOf(b, out);
  const row = W * C;
  for (let n = 0; n < B; n++) {
    for (let j = 0; j < nb; j++) {
      const dst = oo + (n * nb + j) * len * row;
      const r0 = j * step;
      const avail = Math.max(0, Math.min(len, H - r0));
      const src = to + (n * H + r0) * row;
      if (avail > 0) heap.copyWithin(dst, src, src + avail * row);
      if (avail < len) heap.fill(0, dst + avail * row, dst + len * row);
    }
  }
  return out;
}

/** One output phase r of a 1-D transposed convolution (see backpropInput). */
export interface Phase {
  r: number;
  /** Number of outputs with index = r (mod stride). */
  count: number;
  /** Original filter taps, in the (flipped) order they are applied. */
  taps: number[];
  /** dy index read by output u = 0 and the first tap. */
  start: number;
}

/**
 * Sub-pixel plan for dx of a 1-D conv (input length n, filter k, stride s, leading pad p):
 * dx[s*u + r] = sum_m dy[u + start + m] * w[taps[m]].
 */
export function phases1d(n: number, k: number, s: number, p: number): Phase[] {
  const out: Phase[] = [];
  for (let r = 0; r < s; r++) {
    const count = r < n ? Math.ceil((n - r) / s) : 0;
    if (count === 0) continue;
    const c = r + p;
    const t0 = ((c % s) + s) % s;
    const q = (c - t0) / s;
    const m = t0 < k ? Math.ceil((k - t0) / s) : 0;
    const taps: number[] = [];
    for (let j = 0; j < m; j++) taps.push(t0 + s * (m - 1 - j));
    out.push({ r, count, taps, start: q - m + 1 });
  }
  return out;
}

/**
 * Gradient of a conv3d (NDHWC, filter [kt, kh, kw, Ci, Co], dilation 1) with respect to its
 * input: dy [N, Do, Ho, Wo, Co] -> dx inShape [N, D, H, W, Ci]. Also the forward of a transposed
 * convolution. One stride-1 convolution per sub-pixel phase, results interleaved into dx.
 */
export function backpropInput3d(
  b: WasmBackend,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  inShape: number[],
  strides: [number, number, number],
  pads: [number, number, number],
): tf.TensorInfo {
  const [kt, kh, kw, Ci, Co] = filter.shape;
  const [N, D, H, W] = inShape;
  const [st, sh, sw] = strides;
  const pt = phases1d(D, kt, st, pads[0]);
  const ph = phases1d(H, kh, sh, pads[1]);
  const pw = phases1d(W, kw, sw, pads[2]);
  const wt = transposeInfo(b, alias(filter, [kt * kh * kw, Ci, Co]), [0, 2, 1]); // [taps, Co, Ci]
  const single = st === 1 && sh === 1 && sw === 1;
  const anyEmpty = [pt, ph, pw].some((ps) => ps.some((q) => q.taps.length === 0));
  const dx: tf.TensorInfo | null = single ? null : alloc(b, [N, D, H, W, Ci]);
  if (dx !== null && anyEmpty) {
    const off = offsetOf(b, dx);
    heapF32(b).fill(0, off, off + sizeOf(dx.shape));
  }
  const blk = Co * Ci;
  for (const qt of pt) {
    for (const qh of ph) {
      for (const qw of pw) {
        const mt = qt.taps.length;
        const mh = qh.taps.length;
        const mw = qw.taps.length;
        if (mt === 0 || mh === 0 || mw === 0) continue;
        // Sub-filter [mh, mw, mt, Co, Ci] for this phase, gathered from wt.
        const sub = alloc(b, [mh, mw, mt * Co, Ci]);
        {
          const heap = heapF32(b);
          const so = offsetOf(b, wt);
          const oo = offsetOf(b, sub);
          for (let a = 0; a < mh; a++) {
            for (let c = 0; c < mw; c++) {
              for (let t = 0; t < mt; t++) {
                const src = so + ((qt.taps[t] * kh + qh.taps[a]) * kw + qw.taps[c]) * blk;
                heap.copyWithin(oo + ((a * mw + c) * mt + t) * blk, src, src + blk);
              }
            }
          }
        }
        const r = convWindow(
          b,
          dy,
          { start: qt.start, count: qt.count, stride: 1, taps: mt, dil: 1 },
          { start: qh.start, len: qh.count + mh - 1 },
          { start: qw.start, len: qw.count + mw - 1 },
          sub,
          1,
          1,
          1,
          1,
        ); // [N*count_t, count_h, count_w, Ci]
        free(b, sub);
        if (dx === null) {
          free(b, wt);
          return alias(r, [N, D, H, W, Ci]);
        }
        scatterPhase(b, r, dx, N, [qt.count, qh.count, qw.count], [qt.r, qh.r, qw.r], strides);
        free(b, r);
      }
    }
  }
  free(b, wt);
  if (dx === null) throw new Error('backpropInput3d: no phase produced output');
  return dx;
}

/** dx[n, s*u + r, ...] = r[n, u, ...] per dimension (C floats per pixel). */
function scatterPhase(b: WasmBackend, r: tf.TensorInfo, dx: tf.TensorInfo, N: number, cnt: number[], rem: number[], s: number[]): void {
  const [, D, H, W, C] = dx.shape;
  const heap = heapF32(b);
  const ro = offsetOf(b, r);
  const xo = offsetOf(b, dx);
  const [ct, ch, cw] = cnt;
  let src = ro;
  for (let n = 0; n < N; n++) {
    for (let u = 0; u < ct; u++) {
      const z = s[0] * u + rem[0];
      for (let v = 0; v < ch; v++) {
        const y = s[1] * v + rem[1];
        const rowBase = xo + (((n * D + z) * H + y) * W) * C;
        if (s[2] === 1) {
          heap.copyWithin(rowBase + rem[2] * C, src, src + cw * C);
          src += cw * C;
          continue;
        }
        for (let w = 0; w < cw; w++) {
          const o = rowBase + (s[2] * w + rem[2]) * C;
          heap.copyWithin(o, src, src + C);
          src += C;
        }
      }
    }
  }
}

/** Conv3D forward (NDHWC). */
export function conv3dForward(b: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv3DInfo): tf.TensorInfo {
  const [kt, kh, kw, Ci, Co] = filter.shape;
  const w2 = transposeInfo(b, filter, [1, 2, 0, 3, 4]); // [kh, kw, kt, Ci, Co]
  const hLen = (info.outHeight - 1) * info.strideHeight + (kh - 1) * info.dilationHeight + 1;
  const wLen = (info.outWidth - 1) * info.strideWidth + (kw - 1) * info.dilationWidth + 1;
  const r = convWindow(
    b,
    x,
    { start: -info.padInfo.front, count: info.outDepth, stride: info.strideDepth, taps: kt, dil: info.dilationDepth },
    { start: -info.padInfo.top, len: hLen },
    { start: -info.padInfo.left, len: wLen },
    alias(w2, [kh, kw, kt * Ci, Co]),
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
  );
  free(b, w2);
  return alias(r, [info.batchSize, info.outDepth, info.outHeight, info.outWidth, Co]);
}

/** Conv3D filter gradient (dilation 1): x [N, D, H, W, Ci], dy [N, Do, Ho, Wo, Co] -> [kt, kh, kw, Ci, Co]. */
export function conv3dFilterGrad(b: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv3DInfo): tf.TensorInfo {
  const { filterDepth: kt, filterHeight: kh, filterWidth: kw, inChannels: Ci, outChannels: Co } = info;
  const [N, D, H, W] = x.shape;
  const { outDepth: Do, outHeight: Ho, outWidth: Wo, strideDepth: st, strideHeight: sh, strideWidth: sw } = info;
  const hLen = (Ho - 1) * sh + kh;
  const wLen = (Wo - 1) * sw + kw;
  const { front, top, left } = info.padInfo;
  const exact = kt === 1 && st === 1 && front === 0 && Do === D && top === 0 && left === 0 && hLen === H && wLen === W;
  const s = exact
    ? alias(x, [N * D, H, W, Ci])
    : stackFrames(b, x, { start: -front, count: Do, stride: st, taps: kt, dil: 1 }, { start: -top, len: hLen }, { start: -left, len: wLen });
  const g = filterGradValid(b, s, alias(dy, [N * Do, Ho, Wo, Co]), kh, kw, sh, sw); // [kh, kw, kt*Ci, Co]
  if (!exact) free(b, s);
  const out = transposeInfo(b, alias(g, [kh * kw, kt, Ci * Co]), [1, 0, 2]);
  free(b, g);
  return alias(out, [kt, kh, kw, Ci, Co]);
}
