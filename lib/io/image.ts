/**
 * Image and animation output (pure JS, no tensors): PNG (pngjs), animated GIF (gifenc), and
 * layouts for looking at videos: grids of frames, videos-by-frames sheets, side-by-side
 * original | reconstruction animations. Pixels are packed RGB uint8, row-major:
 * an image is H*W*3 bytes, a video T*H*W*3 bytes ([T, H, W, 3]). Files are written atomically.
 */
import { PNG } from 'pngjs';
import { writeFileAtomic } from './atomic';

/** A packed RGB image. */
export interface RgbImage {
  data: Uint8Array; // [H, W, 3]
  width: number;
  height: number;
}

// gifenc ships no type declarations; this is the part of its API used here.
type GifPalette = number[][];
interface GifEncoderStream {
  writeFrame(index: Uint8Array, width: number, height: number, opts: { palette?: GifPalette; delay?: number; repeat?: number }): void;
  finish(): void;
  bytes(): Uint8Array;
}
interface GifencModule {
  GIFEncoder(): GifEncoderStream;
  quantize(rgba: Uint8Array, maxColors: number, opts?: { format?: 'rgb565' | 'rgb444' | 'rgba4444' }): GifPalette;
  applyPalette(rgba: Uint8Array, palette: GifPalette, format?: 'rgb565' | 'rgb444' | 'rgba4444'): Uint8Array;
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const gifenc = require('gifenc') as GifencModule;

function checkDims(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new Error(`${what}: width and height must be positive integers, got ${width}x${height}`);
}

function checkRgb(rgb: Uint8Array, width: number, height: number, what: string): void {
  checkDims(width, height, what);
  if (rgb.length !== width * height * 3) throw new Error(`${what}: expected ${width}x${height}x3 = ${width * height * 3} bytes, got ${rgb.length}`);
}

// ---------------------------------------------------------------------------------------------
// PNG

/** PNG bytes (8-bit RGB, no alpha) for a packed RGB image. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  checkRgb(rgb, width, height, 'encodePng');
  const png = new PNG({ width: 1, height: 1 }); // data replaced below
  png.width = width;
  png.height = height;
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

export function writePng(file: string, rgb: Uint8Array, width: number, height: number): void {
  writeFileAtomic(file, encodePng(rgb, width, height));
}

/** Decodes a PNG (any colour type pngjs reads) to packed RGB; alpha is dropped. */
export function decodePng(bytes: Uint8Array, source = '<buffer>'): RgbImage {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`${source}: not a readable PNG (${(e as Error).message})`);
  }
  const { width, height } = png;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += 4) {
    data[i * 3] = png.data[j];
    data[i * 3 + 1] = png.data[j + 1];
    data[i * 3 + 2] = png.data[j + 2];
  }
  return { data, width, height };
}

// ---------------------------------------------------------------------------------------------
// GIF

export interface GifOptions {
  /** 'global': one 256-colour palette for all frames (no flicker, default); 'per-frame': one each. */
  palette?: 'global' | 'per-frame';
  /** Loop forever (default true); false plays once. */
  loop?: boolean;
}

function rgbToRgba(rgb: Uint8Array): Uint8Array {
  const n = rgb.length / 3;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    out[i * 4] = rgb[i * 3];
    out[i * 4 + 1] = rgb[i * 3 + 1];
    out[i * 4 + 2] = rgb[i * 3 + 2];
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** Animated GIF bytes: frames are packed RGB (each H*W*3), shown at `fps` frames per second. */
export function encodeGif(frames: Uint8Array[], width: number, height: number, fps: number, opts: GifOptions = {}): Uint8Array {
  if (frames.length === 0) throw new Error('encodeGif: no frames');
  if (!(fps > 0)) throw new Error(`encodeGif: fps must be > 0, got ${fps}`);
  if (width > 65535 || height > 65535) throw new Error(`encodeGif: ${width}x${height} exceeds the GIF limit of 65535`);
  frames.forEach((f, i) => checkRgb(f, width, height, `encodeGif frame ${i}`));
  const rgba = frames.map(rgbToRgba);
  const delay = Math.round(1000 / fps); // ms; GIF stores centiseconds
  const repeat = opts.loop === false ? -1 : 0;
  const gif = gifenc.GIFEncoder();
  if ((opts.palette ?? 'global') === 'global') {
    const all = new Uint8Array(rgba.reduce((a, f) => a + f.length, 0));
    let off = 0;
    for (const f of rgba) {
      all.set(f, off);
      off += f.length;
    }
    const palette = gifenc.quantize(all, 256);
    rgba.forEach((f, i) => gif.writeFrame(gifenc.applyPalette(f, palette), width, height, i === 0 ? { palette, delay, repeat } : { delay }));
  } else {
    rgba.forEach((f) => {
      const palette = gifenc.quantize(f, 256);
      gif.writeFrame(gifenc.applyPalette(f, palette), width, height, { palette, delay, repeat });
    });
  }
  gif.finish();
  return gif.bytes();
}

export function writeGif(file: string, frames: Uint8Array[], width: number, height: number, fps: number, opts: GifOptions = {}): void {
  writeFileAtomic(file, encodeGif(frames, width, height, fps, opts));
}

// ---------------------------------------------------------------------------------------------
// Layouts

export type Rgb = [number, number, number];

export interface GridOptions {
  /** Cells per row. */
  cols: number;
  /** Pixels between cells and around the border (default 2). */
  pad?: number;
  /** Which frame of each video (default 0). */
  frame?: number;
  /** Colour of the padding (default white). */
  background?: Rgb;
}

function checkVideos(videos: Uint8Array[], t: number, h: number, w: number, what: string): void {
  checkDims(w, h, what);
  if (!Number.isInteger(t) || t <= 0) throw new Error(`${what}: T must be a positive integer, got ${t}`);
  videos.forEach((v, i) => {
    if (v.length !== t * h * w * 3) throw new Error(`${what}: video ${i} has ${v.length} bytes, expected T*H*W*3 = ${t}*${h}*${w}*3 = ${t * h * w * 3}`);
  });
}

function canvas(width: number, height: number, bg: Rgb): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(bg, i * 3);
  return { data, width, height };
}

/** Copies frame `t` of a [T, H, W, 3] video into `dst` with its top-left corner at (x0, y0). */
function blit(dst: RgbImage, video: Uint8Array, t: number, h: number, w: number, x0: number, y0: number): void {
  const rowBytes = w * 3;
  for (let y = 0; y < h; y++) {
    const src = ((t * h + y) * w) * 3;
    dst.data.set(video.subarray(src, src + rowBytes), ((y0 + y) * dst.width + x0) * 3);
  }
}

/** One frame (opts.frame) of each video, row-major in `cols` columns. */
export function frameGrid(videos: Uint8Array[], T: number, H: number, W: number, opts: GridOptions): RgbImage {
  checkVideos(videos, T, H, W, 'frameGrid');
  if (videos.length === 0) throw new Error('frameGrid: no videos');
  const cols = Math.min(opts.cols, videos.length);
  if (!Number.isInteger(opts.cols) || opts.cols <= 0) throw new Error(`frameGrid: cols must be a positive integer, got ${opts.cols}`);
  const pad = opts.pad ?? 2;
  const t = opts.frame ?? 0;
  if (!Number.isInteger(t) || t < 0 || t >= T) throw new Error(`frameGrid: frame ${t} out of range [0, ${T})`);
  const rows = Math.ceil(videos.length / cols);
  const img = canvas(cols * (W + pad) + pad, rows * (H + pad) + pad, opts.background ?? [255, 255, 255]);
  videos.forEach((v, i) => blit(img, v, t, H, W, pad + (i % cols) * (W + pad), pad + Math.floor(i / cols) * (H + pad)));
  return img;
}

/** One grid image per time step: the frames of an animated grid (for writeGif / Mp4Writer). */
export function animatedGrid(videos: Uint8Array[], T: number, H: number, W: number, opts: Omit<GridOptions, 'frame'>): { frames: Uint8Array[]; width: number; height: number } {
  const frames: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  for (let t = 0; t < T; t++) {
    const g = frameGrid(videos, T, H, W, { ...opts, frame: t });
    frames.push(g.data);
    width = g.width;
    height = g.height;
  }
  return { frames, width, height };
}

export interface VideoGridOptions {
  /** Pixels between cells and around the border (default 2). */
  pad?: number;
  /** Show every k-th frame (default 1). */
  frameStride?: number;
  background?: Rgb;
}

/** A contact sheet: one row per video, one column per frame (every `frameStride`-th). */
export function videoGrid(videos: Uint8Array[], T: number, H: number, W: number, opts: VideoGridOptions = {}): RgbImage {
  checkVideos(videos, T, H, W, 'videoGrid');
  if (videos.length === 0) throw new Error('videoGrid: no videos');
  const pad = opts.pad ?? 2;
  const stride = opts.frameStride ?? 1;
  if (!Number.isInteger(stride) || stride <= 0) throw new Error(`videoGrid: frameStride must be a positive integer, got ${stride}`);
  const shown: number[] = [];
  for (let t = 0; t < T; t += stride) shown.push(t);
  const img = canvas(shown.length * (W + pad) + pad, videos.length * (H + pad) + pad, opts.background ?? [255, 255, 255]);
  videos.forEach((v, r) => shown.forEach((t, c) => blit(img, v, t, H, W, pad + c * (W + pad), pad + r * (H + pad))));
  return img;
}

/**
 * Side-by-side animation frames, each row one pair `original | reconstruction` (pairs stacked
 * vertically when several are given). Returns T frames for writeGif.
 */
export function sideBySideFrames(
  originals: Uint8Array[],
  reconstructions: Uint8Array[],
  T: number,
  H: number,
  W: number,
  opts: { pad?: number; background?: Rgb } = {},
): { frames: Uint8Array[]; width: number; height: number } {
  if (originals.length !== reconstructions.length)
    throw new Error(`sideBySideFrames: ${originals.length} originals but ${reconstructions.length} reconstructions`);
  const interleaved: Uint8Array[] = [];
  originals.forEach((o, i) => interleaved.push(o, reconstructions[i]));
  return animatedGrid(interleaved, T, H, W, { cols: 2, pad: opts.pad, background: opts.background });
}

/** Maps floats in [lo, hi] (default [-1, 1], the model's range) to uint8, clamping and rounding. */
export function floatToUint8(x: ArrayLike<number>, lo = -1, hi = 1): Uint8Array {
  if (!(hi > lo)) throw new Error(`floatToUint8: need hi > lo, got [${lo}, ${hi}]`);
  const out = new Uint8Array(x.length);
  const s = 255 / (hi - lo);
  for (let i = 0; i < x.length; i++) {
    const v = Math.round((x[i] - lo) * s);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v; // NaN -> 0
  }
  return out;
}
