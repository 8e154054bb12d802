/**
 * Videos in notebooks as animated GIFs inside an HTML `<img src="data:image/gif;base64,...">`:
 * the classic notebook shows it, and it survives nbconvert's HTML export (which drops bare
 * image/gif outputs). Small frames are scaled up with nearest-neighbour rendering.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { animatedGrid, encodeGif } from '../io/image';
import { escapeHtml } from '../results/table';
import { showHtml } from './output';

export interface VideoHtmlOptions {
  /** Frames per second (default 8). */
  fps?: number;
  /** Displayed width in CSS pixels (default: the GIF scaled by an integer factor to at least 128 px). */
  width?: number;
  caption?: string;
}

/** Integer upscale so that `w` pixels show at least `min` CSS pixels wide (at most 8x). */
function displayWidth(w: number, min = 128): number {
  return w * Math.max(1, Math.min(8, Math.ceil(min / w)));
}

/** A figure with an animated GIF (bytes) and an optional caption. */
export function gifHtml(gif: Uint8Array, pixelWidth: number, opts: VideoHtmlOptions = {}): string {
  const width = opts.width ?? displayWidth(pixelWidth);
  const b64 = Buffer.from(gif.buffer, gif.byteOffset, gif.byteLength).toString('base64');
  const caption = opts.caption ? `<figcaption style="font:12px sans-serif;color:#444">${escapeHtml(opts.caption)}</figcaption>` : '';
  return (
    `<figure class="lvdm-video" style="display:inline-block;margin:4px 8px 4px 0">` +
    `<img alt="${escapeHtml(opts.caption ?? 'video')}" src="data:image/gif;base64,${b64}" style="width:${width}px;image-rendering:pixelated">` +
    `${caption}</figure>`
  );
}

/** One video, packed RGB uint8 [T, H, W, 3], as HTML. */
export function videoHtml(video: Uint8Array, T: number, H: number, W: number, opts: VideoHtmlOptions = {}): string {
  const per = H * W * 3;
  if (video.length !== T * per) throw new Error(`videoHtml: expected ${T}x${H}x${W}x3 = ${T * per} bytes, got ${video.length}`);
  const frames = Array.from({ length: T }, (_, t) => video.subarray(t * per, (t + 1) * per));
  return gifHtml(encodeGif(frames, W, H, opts.fps ?? 8), W, opts);
}

export interface VideoGridHtmlOptions extends VideoHtmlOptions {
  /** Videos per row (default: all in one row, at most 8). */
  cols?: number;
}

/** Several videos of one size [T, H, W, 3] animated together in one grid GIF. */
export function videoGridHtml(videos: Uint8Array[], T: number, H: number, W: number, opts: VideoGridHtmlOptions = {}): string {
  if (videos.length === 0) throw new Error('videoGridHtml: no videos');
  const grid = animatedGrid(videos, T, H, W, { cols: opts.cols ?? Math.min(8, videos.length), pad: 2 });
  return gifHtml(encodeGif(grid.frames, grid.width, grid.height, opts.fps ?? 8), grid.width, { ...opts, width: opts.width ?? displayWidth(grid.width, 256) });
}

/** A GIF file on disk (e.g. a run's sample) as HTML; its pixel width is read from the GIF header. */
export function gifFileHtml(file: string, opts: VideoHtmlOptions = {}): string {
  const bytes = fs.readFileSync(file);
  if (bytes.length < 10 || bytes.toString('latin1', 0, 3) !== 'GIF') throw new Error(`${file}: not a GIF file`);
  const width = bytes.readUInt16LE(6);
  return gifHtml(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), width, { ...opts, caption: opts.caption ?? path.basename(file) });
}

export function showVideo(video: Uint8Array, T: number, H: number, W: number, opts: VideoHtmlOptions = {}): void {
  showHtml(videoHtml(video, T, H, W, opts));
}

export function showVideoGrid(videos: Uint8Array[], T: number, H: number, W: number, opts: VideoGridHtmlOptions = {}): void {
  showHtml(videoGridHtml(videos, T, H, W, opts));
}

/** Shows GIF files side by side (one output). */
export function showGifFiles(files: string[], opts: Omit<VideoHtmlOptions, 'caption'> & { captions?: string[] } = {}): void {
  showHtml(`<div>${files.map((f, i) => gifFileHtml(f, { ...opts, caption: opts.captions?.[i] })).join('')}</div>`);
}
