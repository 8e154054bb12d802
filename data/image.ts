/**
 * Frame geometry and in-process image decoding.
 *
 * Clip geometry (lvdm-facts section 7): scale the frame so it covers the target (for a square
 * target: the short side becomes the target size), then crop the centre. Resampling is
 * separable and antialiased: a triangle (bilinear) filter whose support widens by 1/scale
 * when shrinking, so downscaling averages every source pixel (no aliasing).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';

export interface RgbImage {
  /** [H, W, 3] uint8. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface CropGeometry {
  /** Source-to-output scale (the same on both axes). */
  scale: number;
  /** Size of the whole scaled frame before cropping. */
  scaledWidth: number;
  scaledHeight: number;
  /** Left / top offset of the crop inside the scaled frame (scaled pixels). */
  offsetX: number;
  offsetY: number;
}

/** Cover-scale then centre-crop geometry for a (srcW x srcH) frame and an (outW x outH) target. */
export function coverCropGeometry(srcW: number, srcH: number, outW: number, outH: number): CropGeometry {
  if (!(srcW > 0 && srcH > 0 && outW > 0 && outH > 0)) {
    throw new Error(`coverCropGeometry: sizes must be positive, got source ${srcW}x${srcH}, target ${outW}x${outH}`);
  }
  const scale = Math.max(outW / srcW, outH / srcH);
  const scaledWidth = srcW * scale;
  const scaledHeight = srcH * scale;
  return { scale, scaledWidth, scaledHeight, offsetX: (scaledWidth - outW) / 2, offsetY: (scaledHeight - outH) / 2 };
}

interface AxisWeights {
  start: Int32Array; // first source index per output index
  count: Int32Array; // taps per output index
  taps: number; // stride of `weights`
  weights: Float32Array; // [out, taps]
}

/** Triangle-filter weights along one axis (edge pixels replicated). */
function axisWeights(srcN: number, outN: number, scale: number, offset: number): AxisWeights {
  const radius = Math.max(1, 1 / scale);
  const taps = Math.ceil(2 * radius) + 2;
  const start = new Int32Array(outN);
  const count = new Int32Array(outN);
  const weights = new Float32Array(outN * taps);
  for (let o = 0; o < outN; o++) {
    const c = (o + 0.5 + offset) / scale; // centre in source pixel coordinates
    let lo = Math.floor(c - radius - 0.5);
    let hi = Math.ceil(c + radius - 0.5);
    const tmp: number[] = [];
    let sum = 0;
    for (let j = lo; j <= hi; j++) {
      const w = Math.max(0, 1 - Math.abs(j + 0.5 - c) / radius);
      tmp.push(w);
      sum += w;
    }
    // Clamp to the image: fold weights of out-of-range taps onto the edge pixel.
    const folded = new Map<number, number>();
    for (let k = 0; k < tmp.length; k++) {
      if (tmp[k] === 0) continue;
      const j = Math.min(srcN - 1, Math.max(0, lo + k));
      folded.set(j, (folded.get(j) ?? 0) + tmp[k] / sum);
    }
    const idx = [...folded.keys()].sort((a, b) => a - b);
    lo = idx[0];
    hi = idx[idx.length - 1];
    start[o] = lo;
    count[o] = hi - lo + 1;
    for (const j of idx) weights[o * taps + (j - lo)] = folded.get(j) as number;
  }
  return { start, count, taps, weights };
}

/** Cache of weight tables: clips repeat the same geometry for every frame. */
const weightCache = new Map<string, { wx: AxisWeights; wy: AxisWeights }>();

function weightsFor(srcW: number, srcH: number, outW: number, outH: number): { wx: AxisWeights; wy: AxisWeights } {
  const key = `${srcW}x${srcH}>${outW}x${outH}`;
  const hit = weightCache.get(key);
  if (hit) return hit;
  const g = coverCropGeometry(srcW, srcH, outW, outH);
  const v = { wx: axisWeights(srcW, outW, g.scale, g.offsetX), wy: axisWeights(srcH, outH, g.scale, g.offsetY) };
  if (weightCache.size > 64) weightCache.clear();
  weightCache.set(key, v);
  return v;
}

/**
 * Resize an RGB frame to cover (outW x outH) and crop the centre, writing [outH, outW, 3] into
 * `out` at `outOffset`. `src` is [srcH, srcW, channels] with 3 (RGB) or 4 (RGBA, alpha dropped).
 */
export function resizeCenterCrop(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  outW: number,
  outH: number,
  out?: Uint8Array,
  outOffset = 0,
  channels = 3,
): Uint8Array {
  if (src.length < srcW * srcH * channels) {
    throw new Error(`resizeCenterCrop: buffer of ${src.length} bytes is too small for ${srcW}x${srcH}x${channels}`);
  }
  const dst = out ?? new Uint8Array(outW * outH * 3);
  if (srcW === outW && srcH === outH && channels === 3) {
    dst.set(src.subarray(0, outW * outH * 3), outOffset);
    return dst;
  }
  const { wx, wy } = weightsFor(srcW, srcH, outW, outH);
  // Rows of the source that the vertical pass reads.
  const rowLo = wy.start[0];
  const rowHi = wy.start[outH - 1] + wy.count[outH - 1] - 1;
  const rows = rowHi - rowLo + 1;
  const tmp = new Float32Array(rows * outW * 3); // [rows, outW, 3] after the horizontal pass
  for (let r = 0; r < rows; r++) {
    const srow = (rowLo + r) * srcW * channels;
    for (let x = 0; x < outW; x++) {
      const s0 = wx.start[x];
      const n = wx.count[x];
      const wb = x * wx.taps;
      let a = 0;
      let b = 0;
      let c = 0;
      for (let k = 0; k < n; k++) {
        const w = wx.weights[wb + k];
        const p = srow + (s0 + k) * channels;
        a += w * src[p];
        b += w * src[p + 1];
        c += w * src[p + 2];
      }
      const t = (r * outW + x) * 3;
      tmp[t] = a;
      tmp[t + 1] = b;
      tmp[t + 2] = c;
    }
  }
  for (let y = 0; y < outH; y++) {
    const r0 = wy.start[y] - rowLo;
    const n = wy.count[y];
    const wb = y * wy.taps;
    for (let x = 0; x < outW; x++) {
      let a = 0;
      let b = 0;
      let c = 0;
      for (let k = 0; k < n; k++) {
        const w = wy.weights[wb + k];
        const t = ((r0 + k) * outW + x) * 3;
        a += w * tmp[t];
        b += w * tmp[t + 1];
        c += w * tmp[t + 2];
      }
      const d = outOffset + (y * outW + x) * 3;
      dst[d] = a < 0 ? 0 : a > 255 ? 255 : a + 0.5;
      dst[d + 1] = b < 0 ? 0 : b > 255 ? 255 : b + 0.5;
      dst[d + 2] = c < 0 ? 0 : c > 255 ? 255 : c + 0.5;
    }
  }
  return dst;
}

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png'];

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** Decode a JPEG or PNG file to RGB (alpha dropped). Errors name the file. */
export function decodeImageFile(file: string): RgbImage {
  const buf = fs.readFileSync(file);
  return decodeImageBuffer(buf, file);
}

export function decodeImageBuffer(buf: Uint8Array, name: string): RgbImage {
  if (buf.length === 0) throw new Error(`${name}: empty image file`);
  const isPng = buf.length >= 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47;
  const isJpeg = buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8;
  try {
    if (isJpeg) {
      const img = decodeJpeg(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
      return { data: img.data, width: img.width, height: img.height };
    }
    if (isPng) {
      const img = PNG.sync.read(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
      const n = img.width * img.height;
      const rgb = new Uint8Array(n * 3);
      for (let i = 0; i < n; i++) {
        rgb[i * 3] = img.data[i * 4];
        rgb[i * 3 + 1] = img.data[i * 4 + 1];
        rgb[i * 3 + 2] = img.data[i * 4 + 2];
      }
      return { data: rgb, width: img.width, height: img.height };
    }
  } catch (e) {
    throw new Error(`${name}: cannot decode image (${(e as Error).message})`);
  }
  throw new Error(`${name}: not a JPEG or PNG file`);
}

/** Natural sort ('frame2' before 'frame10'), used for frame file names. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
