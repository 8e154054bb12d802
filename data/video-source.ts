/**
 * Reading frames of one VideoEntry (a video file through ffmpeg, or a frame folder decoded in
 * process), resized to cover the target and centre-cropped.
 *
 * Frame indices refer to the entry's timeline: source frames, or frames after resampling to
 * `fps` when that option is set (a frame folder's own rate is `frameFps`, default 25).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeVideo, probeVideo } from './ffmpeg';
import { decodeImageFile, resizeCenterCrop } from './image';
import type { VideoEntry } from './layouts';

export interface FrameGeometry {
  height: number;
  width: number;
  /** Resample to this frame rate (frames per second); unset keeps the source rate. */
  fps?: number;
  /** Frame rate of frame folders (default 25). */
  frameFps?: number;
}

export interface EntryInfo {
  /** Frames in the entry's timeline (after fps resampling). */
  frames: number;
  srcWidth: number;
  srcHeight: number;
  srcFps: number;
  srcFrames: number;
}

const DEFAULT_FRAME_FPS = 25;

/** Width and height from a PNG or JPEG header without decoding the image. */
export function imageSize(file: string): { width: number; height: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    const b = head.subarray(0, n);
    if (n >= 24 && b[0] === 0x89 && b.toString('latin1', 1, 4) === 'PNG') {
      return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
    }
    if (n >= 4 && b[0] === 0xff && b[1] === 0xd8) {
      let p = 2;
      while (p + 9 < n) {
        if (b[p] !== 0xff) {
          p++;
          continue;
        }
        const m = b[p + 1];
        const len = b.readUInt16BE(p + 2);
        // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size.
        if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
          return { height: b.readUInt16BE(p + 5), width: b.readUInt16BE(p + 7) };
        }
        p += 2 + len;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  throw new Error(`${file}: cannot read the image size (not a PNG/JPEG or a damaged header)`);
}

/** Frame count and source metadata of an entry (ffprobe for files, the folder listing for frames). */
export async function entryInfo(e: VideoEntry, g: Pick<FrameGeometry, 'fps' | 'frameFps'>): Promise<EntryInfo> {
  if (e.file) {
    const v = await probeVideo(e.file);
    const frames = g.fps ? Math.floor(v.duration * g.fps + 1e-6) : v.frames;
    return { frames, srcWidth: v.width, srcHeight: v.height, srcFps: v.fps, srcFrames: v.frames };
  }
  const files = e.frameFiles ?? [];
  if (!e.frameDir || files.length === 0) throw new Error(`${e.id}: frame folder has no images`);
  const size = imageSize(path.join(e.frameDir, files[0]));
  const srcFps = g.frameFps ?? DEFAULT_FRAME_FPS;
  const frames = g.fps ? Math.floor((files.length * g.fps) / srcFps + 1e-6) : files.length;
  return { frames, srcWidth: size.width, srcHeight: size.height, srcFps, srcFrames: files.length };
}

/**
 * Integer factor by which ffmpeg may box-shrink a large source before the exact resize here:
 * the largest of 8, 4, 2 that divides both sides and leaves at least twice the cover-scaled
 * size (so the geometry is unchanged and the final filter still sees enough pixels).
 */
export function shrinkFactor(srcW: number, srcH: number, outW: number, outH: number): number {
  const scale = Math.max(outW / srcW, outH / srcH);
  for (const d of [8, 4, 2]) {
    if (srcW % d === 0 && srcH % d === 0 && scale * d <= 0.5) return d;
  }
  return 1;
}

/** Source frame of a frame folder for timeline index j (nearest frame when resampling). */
function folderIndex(j: number, n: number, g: FrameGeometry): number {
  if (!g.fps) return j;
  return Math.min(n - 1, Math.round((j * (g.frameFps ?? DEFAULT_FRAME_FPS)) / g.fps));
}

/**
 * Frames start, start + stride, ... (up to `count`, or to the end when count is undefined),
 * each resized + cropped to (height, width) and passed to `onFrame` ([H, W, 3], a fresh array).
 * Resolves with the number of frames delivered.
 */
export async function readEntryFrames(
  e: VideoEntry,
  info: EntryInfo,
  g: FrameGeometry,
  sel: { start: number; stride: number; count?: number },
  onFrame: (rgb: Uint8Array, k: number) => void,
): Promise<{ frames: number; errors: string }> {
  if (e.file) {
    const d = shrinkFactor(info.srcWidth, info.srcHeight, g.width, g.height);
    const w = info.srcWidth / d;
    const h = info.srcHeight / d;
    const r = await decodeVideo(
      e.file,
      { width: info.srcWidth, height: info.srcHeight, shrink: d, fps: g.fps, start: sel.start, stride: sel.stride, count: sel.count, indexFps: g.fps ?? info.srcFps },
      (rgb, k) => onFrame(resizeCenterCrop(rgb, w, h, g.width, g.height), k),
    );
    return { frames: r.frames, errors: r.errors };
  }
  const files = e.frameFiles ?? [];
  const dir = e.frameDir as string;
  let k = 0;
  for (let j = sel.start; j < info.frames && (sel.count === undefined || k < sel.count); j += sel.stride) {
    const file = path.join(dir, files[folderIndex(j, files.length, g)]);
    const img = decodeImageFile(file);
    onFrame(resizeCenterCrop(img.data, img.width, img.height, g.width, g.height), k++);
    if (k % 8 === 0) await new Promise<void>((r) => setImmediate(r)); // let other work run between frames
  }
  return { frames: k, errors: '' };
}

/** A window of `count` frames as one [count, H, W, 3] array; throws when fewer frames come back. */
export async function readEntryWindow(
  e: VideoEntry,
  info: EntryInfo,
  g: FrameGeometry,
  start: number,
  count: number,
  stride: number,
): Promise<Uint8Array> {
  const frameBytes = g.height * g.width * 3;
  const out = new Uint8Array(count * frameBytes);
  const r = await readEntryFrames(e, info, g, { start, stride, count }, (rgb, k) => out.set(rgb, k * frameBytes));
  if (r.frames < count) {
    throw new Error(
      `${e.file ?? e.frameDir}: decoded ${r.frames} of ${count} frames for the window at frame ${start} (stride ${stride}); ` +
        `truncated or damaged${r.errors ? `: ${r.errors.split('\n')[0]}` : ''}`,
    );
  }
  return out;
}
