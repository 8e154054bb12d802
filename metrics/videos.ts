/**
 * Video inputs for feature extraction: a .npz/.npy array of N x T x H x W x 3 uint8 videos
 * (read row by row, never whole), or a folder of video files decoded with ffmpeg (sorted by
 * relative path, as StyleGAN-V's dataset iterates them).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LazyNpyArray, listNpz, openNpyArray, parseNpyHeader } from '../lib/io/npy';

export interface Frames {
  /** [count, height, width, 3] uint8 */
  data: Uint8Array;
  count: number;
  height: number;
  width: number;
}

export interface VideoSource {
  readonly kind: 'array' | 'folder';
  readonly path: string;
  readonly count: number;
  /** Cheap identity for feature caching (path, sizes, modification times, array name). */
  readonly identity: string;
  /** Stable per-video key (file path or array row). */
  key(i: number): string;
  frameCount(i: number): Promise<number>;
  /** Frames start, start + stride, ... (count of them) of video i. */
  readFrames(i: number, start: number, count: number, stride: number): Promise<Frames>;
  close(): void;
}

export const VIDEO_EXTENSIONS = ['.mp4', '.avi', '.webm', '.mkv', '.mov', '.m4v', '.gif'];

function pickFrames(all: Uint8Array, total: number, h: number, w: number, start: number, count: number, stride: number, label: string): Uint8Array {
  const last = start + (count - 1) * stride;
  if (start < 0 || count < 1 || stride < 1 || last >= total)
    throw new Error(`${label}: frames ${start}..${last} (stride ${stride}) requested, video has ${total}`);
  const fsz = h * w * 3;
  if (stride === 1) return all.slice(start * fsz, (start + count) * fsz);
  const out = new Uint8Array(count * fsz);
  for (let k = 0; k < count; k++) out.set(all.subarray((start + k * stride) * fsz, (start + k * stride + 1) * fsz), k * fsz);
  return out;
}

/** Videos stored as one uint8 array [N, T, H, W, 3] in a .npy or .npz file. */
class ArrayVideoSource implements VideoSource {
  readonly kind = 'array';
  readonly count: number;
  readonly identity: string;
  private readonly t: number;
  private readonly h: number;
  private readonly w: number;
  constructor(
    readonly path: string,
    private readonly arr: LazyNpyArray,
    key: string | undefined,
  ) {
    const [n, t, h, w] = arr.shape;
    this.count = n;
    this.t = t;
    this.h = h;
    this.w = w;
    const st = fs.statSync(path);
    this.identity = `array:${path}:${key ?? ''}:${st.size}:${st.mtimeMs}:${arr.shape.join('x')}`;
  }
  key(i: number): string {
    return `${this.path}[${i}]`;
  }
  async frameCount(): Promise<number> {
    return this.t;
  }
  async readFrames(i: number, start: number, count: number, stride: number): Promise<Frames> {
    const row = (await this.arr.readRows(i, 1)) as Uint8Array;
    return { data: pickFrames(row, this.t, this.h, this.w, start, count, stride, this.key(i)), count, height: this.h, width: this.w };
  }
  close(): void {
    this.arr.close();
  }
}

/** Chooses the video array of a .npz: `key`, else 'videos', else the only 5-D uint8 (or, with `anyDtype`, 5-D) array. */
export function videoArrayKey(file: string, key: string | undefined, anyDtype = false): string | undefined {
  if (!file.toLowerCase().endsWith('.npz')) return undefined;
  const heads = listNpz(file);
  if (key !== undefined) {
    if (!heads.has(key)) throw new Error(`${file}: no array '${key}' (has: ${[...heads.keys()].join(', ')})`);
    return key;
  }
  if (heads.has('videos')) return 'videos';
  const cands = [...heads.entries()].filter(([, h]) => (anyDtype || h.dtype === 'uint8') && h.shape.length === 5);
  if (cands.length !== 1)
    throw new Error(`${file}: expected one N x T x H x W x 3${anyDtype ? '' : ' uint8'} array (or one named 'videos'); found ${[...heads.entries()].map(([k, h]) => `${k} [${h.shape.join(', ')}] ${h.dtype}`).join('; ') || 'none'}`);
  return cands[0][0];
}

function openArraySource(file: string, key: string | undefined): VideoSource {
  const k = videoArrayKey(file, key);
  const arr = openNpyArray(file, k);
  const label = k ? `${file}:${k}` : file;
  if (arr.dtype !== 'uint8' || arr.shape.length !== 5 || arr.shape[4] !== 3) {
    arr.close();
    throw new Error(`${label}: expected videos as an N x T x H x W x 3 uint8 array, got [${arr.shape.join(', ')}] ${arr.dtype}`);
  }
  if (arr.shape.slice(0, 4).some((v) => v < 1)) {
    arr.close();
    throw new Error(`${label}: empty video array [${arr.shape.join(', ')}]`);
  }
  return new ArrayVideoSource(file, arr, k);
}

function listVideos(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (VIDEO_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

interface Probe {
  width: number;
  height: number;
}

function probe(file: string): Probe {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'json', file], { encoding: 'utf8' });
  if (r.error) throw new Error(`ffprobe could not run (${r.error.message}); install ffmpeg to read video folders`);
  if (r.status !== 0) throw new Error(`${file}: ffprobe failed: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout) as { streams?: { width?: number; height?: number }[] };
  const s = j.streams?.[0];
  if (!s || !s.width || !s.height) throw new Error(`${file}: no video stream found`);
  return { width: s.width, height: s.height };
}

/** Number of video packets (= frames for the usual codecs) without decoding. */
export function countFrames(file: string): number {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file], {
    encoding: 'utf8',
  });
  if (r.error) throw new Error(`ffprobe could not run (${r.error.message}); install ffmpeg to read video folders`);
  const n = Number(r.stdout.trim().split(/[\s,]+/)[0]);
  if (r.status !== 0 || !Number.isInteger(n) || n < 1) throw new Error(`${file}: could not count frames (${r.stderr.trim() || r.stdout.trim()})`);
  return n;
}

/** Decodes a video file to RGB24 frames with ffmpeg (at most `maxFrames` when given). */
export function decodeVideo(file: string, maxFrames?: number): Promise<Frames> {
  const { width, height } = probe(file);
  const args = ['-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0'];
  if (maxFrames !== undefined) args.push('-frames:v', String(maxFrames));
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', '-vsync', 'passthrough', 'pipe:1');
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', (e) => reject(new Error(`ffmpeg could not run (${e.message}); install ffmpeg to read video folders`)));
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${file}: ffmpeg exited with ${code}: ${err.trim()}`));
      const buf = Buffer.concat(chunks);
      const fsz = width * height * 3;
      const count = Math.floor(buf.length / fsz);
      if (count < 1) return reject(new Error(`${file}: no frames decoded`));
      resolve({ data: new Uint8Array(buf.buffer, buf.byteOffset, count * fsz), count, height, width });
    });
  });
}

/** A folder of video files (recursively, sorted by path), decoded with ffmpeg. */
class FolderVideoSource implements VideoSource {
  readonly kind = 'folder';
  readonly identity: string;
  private readonly counts = new Map<number, number>();
  constructor(
    readonly path: string,
    private readonly files: string[],
  ) {
    const h = createHash('sha256');
    for (const f of files) {
      const st = fs.statSync(f);
      h.update(`${path ? f.slice(path.length) : f}\t${st.size}\t${st.mtimeMs}\n`);
    }
    this.identity = `folder:${path}:${files.length}:${h.digest('hex')}`;
  }
  get count(): number {
    return this.files.length;
  }
  key(i: number): string {
    return this.files[i];
  }
  /** Frame count from the container's packet count (no decoding); exact for the usual codecs. */
  async frameCount(i: number): Promise<number> {
    const known = this.counts.get(i);
    if (known !== undefined) return known;
    const n = countFrames(this.files[i]);
    this.counts.set(i, n);
    return n;
  }
  /** Decodes only up to the last frame needed. */
  async readFrames(i: number, start: number, count: number, stride: number): Promise<Frames> {
    const need = start + (count - 1) * stride + 1;
    const v = await decodeVideo(this.files[i], need);
    return { data: pickFrames(v.data, v.count, v.height, v.width, start, count, stride, this.files[i]), count, height: v.height, width: v.width };
  }
  close(): void {
    this.counts.clear();
  }
}

/**
 * Opens videos: a folder (video files, recursively), or a .npz / .npy holding an
 * N x T x H x W x 3 uint8 array (`key` names the .npz member).
 */
export function openVideoSource(p: string, key?: string): VideoSource {
  if (!fs.existsSync(p)) throw new Error(`${p}: not found (expected a folder of videos or a .npz/.npy video array)`);
  if (fs.statSync(p).isDirectory()) {
    const files = listVideos(p);
    if (files.length === 0) throw new Error(`${p}: folder holds no video files (${VIDEO_EXTENSIONS.join(', ')})`);
    return new FolderVideoSource(p, files);
  }
  const lower = p.toLowerCase();
  if (lower.endsWith('.npz') || lower.endsWith('.npy')) return openArraySource(p, key);
  throw new Error(`${p}: unsupported video input (expected a folder of videos, or a .npz/.npy N x T x H x W x 3 uint8 array)`);
}

export type InputKind = 'features' | 'videos';

/**
 * What an input path holds: 'features' (a 2-D float array in a .npy/.npz) or 'videos' (a folder,
 * or a 5-D uint8 array). Other contents are errors naming the file.
 */
export function classifyInput(p: string, key?: string): InputKind {
  if (!fs.existsSync(p)) throw new Error(`${p}: not found`);
  if (fs.statSync(p).isDirectory()) return 'videos';
  const lower = p.toLowerCase();
  const kindOf = (dtype: string, shape: number[], label: string): InputKind => {
    if (shape.length === 2 && (dtype === 'float32' || dtype === 'float64')) return 'features';
    if (shape.length === 5 && dtype === 'uint8') return 'videos';
    throw new Error(`${label}: expected features (N x D float32/float64) or videos (N x T x H x W x 3 uint8), got [${shape.join(', ')}] ${dtype}`);
  };
  if (lower.endsWith('.npy')) {
    const fd = fs.openSync(p, 'r');
    try {
      const buf = Buffer.alloc(Math.min(fs.fstatSync(fd).size, 1 << 16));
      fs.readSync(fd, buf, 0, buf.length, 0);
      const h = parseNpyHeader(buf, p);
      return kindOf(h.dtype, h.shape, p);
    } finally {
      fs.closeSync(fd);
    }
  }
  if (lower.endsWith('.npz')) {
    const heads = listNpz(p);
    if (key !== undefined) {
      const h = heads.get(key);
      if (!h) throw new Error(`${p}: no array '${key}' (has: ${[...heads.keys()].join(', ')})`);
      return kindOf(h.dtype, h.shape, `${p}:${key}`);
    }
    if (heads.has('features')) return kindOf(heads.get('features')!.dtype, heads.get('features')!.shape, `${p}:features`);
    if (heads.has('videos')) return kindOf(heads.get('videos')!.dtype, heads.get('videos')!.shape, `${p}:videos`);
    const kinds = new Set<InputKind>();
    for (const [k, h] of heads) {
      try {
        kinds.add(kindOf(h.dtype, h.shape, `${p}:${k}`));
      } catch {
        // other arrays (labels, ...) are ignored
      }
    }
    if (kinds.size === 1) return [...kinds][0];
    throw new Error(`${p}: cannot tell features from videos (arrays: ${[...heads.entries()].map(([k, h]) => `${k} [${h.shape.join(', ')}] ${h.dtype}`).join('; ')}); name one with --real-key/--fake-key`);
  }
  throw new Error(`${p}: unsupported input (expected .npy/.npz features or videos, or a folder of videos)`);
}
