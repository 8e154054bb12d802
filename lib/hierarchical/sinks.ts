/**
 * Where decoded frames go, as they are produced (memory stays flat with video length):
 * - Mp4Sink: one streaming MP4 per video (ffmpeg), frames optionally enlarged for viewing;
 * - NpzChunkSink: `chunks/frames_<start>-<end>.npz`, each holding 'videos' uint8
 *   [n, chunkFrames, H, W, 3] (frames start..end-1 of every video): each chunk is a valid
 *   `lvdm metrics --fake` input (FVD of that frame window);
 * - mergeChunks: after the run, streams the chunks into one `videos.npz` [n, F, H, W, 3] (what
 *   `lvdm metrics --window W` reads), one video row block at a time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Mp4Writer } from '../io/video-writer';
import { NpzStreamWriter, openNpyArray, writeNpz } from '../io/npy';
import { upscaleNearest } from '../autoencoder/outputs';
import { FrameBlock, videoFrames } from './decode';

export interface FrameSink {
  write(block: FrameBlock): Promise<void>;
  /** Finishes the outputs; returns the files written. */
  close(): Promise<string[]>;
  /** Stops and removes partial outputs. */
  abort(): void;
}

/** Counts frames per video (tests, benchmarks) and optionally keeps them. */
export class MemorySink implements FrameSink {
  frames = 0;
  blocks = 0;
  readonly kept: Uint8Array[] = [];
  constructor(private readonly keep = false) {}
  async write(b: FrameBlock): Promise<void> {
    if (b.start !== this.frames) throw new Error(`MemorySink: block starts at frame ${b.start}, expected ${this.frames}`);
    this.frames += b.count;
    this.blocks += 1;
    if (this.keep) this.kept.push(b.data.slice());
  }
  async close(): Promise<string[]> {
    return [];
  }
  abort(): void {}
}

export class Mp4Sink implements FrameSink {
  private writers: Mp4Writer[] | null = null;
  private readonly files: string[];
  constructor(
    readonly dir: string,
    readonly n: number,
    readonly opts: { fps: number; scale: number; crf?: number; prefix?: string },
  ) {
    this.files = Array.from({ length: n }, (_, v) => path.join(dir, `${opts.prefix ?? 'video'}_${String(v).padStart(3, '0')}.mp4`));
  }
  async write(b: FrameBlock): Promise<void> {
    const k = this.opts.scale;
    if (!this.writers) this.writers = this.files.map((f) => new Mp4Writer(f, b.width * k, b.height * k, { fps: this.opts.fps, crf: this.opts.crf ?? 18, preset: 'veryfast' }));
    const fsz = b.height * b.width * 3;
    for (let v = 0; v < b.n; v++) {
      const fr = videoFrames(b, v);
      for (let i = 0; i < b.count; i++) {
        const f = fr.subarray(i * fsz, (i + 1) * fsz);
        await this.writers[v].write(k === 1 ? f : upscaleNearest({ data: f, width: b.width, height: b.height }, k).data);
      }
    }
  }
  async close(): Promise<string[]> {
    if (!this.writers) return [];
    for (const w of this.writers) await w.close();
    return this.files;
  }
  abort(): void {
    for (const w of this.writers ?? []) w.abort();
  }
}

/** Name of the chunk holding frames [start, end). */
export function chunkName(start: number, end: number): string {
  return `frames_${String(start).padStart(6, '0')}-${String(end - 1).padStart(6, '0')}.npz`;
}

export class NpzChunkSink implements FrameSink {
  private buf: Uint8Array | null = null;
  private bufStart = 0;
  private filled = 0;
  private geom: { n: number; h: number; w: number } | null = null;
  readonly written: { file: string; start: number; count: number }[] = [];
  constructor(readonly dir: string, readonly chunkFrames: number) {
    if (!Number.isInteger(chunkFrames) || chunkFrames < 1) throw new Error(`npz chunks: chunk length must be a positive integer (pixel frames), got ${chunkFrames}`);
  }
  private flush(): void {
    const g = this.geom;
    if (!g || !this.buf || this.filled === 0) return;
    const fsz = g.h * g.w * 3;
    const c = this.filled;
    const data = new Uint8Array(g.n * c * fsz);
    for (let v = 0; v < g.n; v++) data.set(this.buf.subarray(v * this.chunkFrames * fsz, (v * this.chunkFrames + c) * fsz), v * c * fsz);
    const file = path.join(this.dir, 'chunks', chunkName(this.bufStart, this.bufStart + c));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeNpz(file, { videos: { shape: [g.n, c, g.h, g.w, 3], data } });
    this.written.push({ file, start: this.bufStart, count: c });
    this.bufStart += c;
    this.filled = 0;
  }
  async write(b: FrameBlock): Promise<void> {
    if (!this.geom) {
      this.geom = { n: b.n, h: b.height, w: b.width };
      this.buf = new Uint8Array(b.n * this.chunkFrames * b.height * b.width * 3);
    }
    const g = this.geom;
    const fsz = g.h * g.w * 3;
    let i = 0;
    while (i < b.count) {
      const take = Math.min(b.count - i, this.chunkFrames - this.filled);
      for (let v = 0; v < g.n; v++) {
        const src = videoFrames(b, v).subarray(i * fsz, (i + take) * fsz);
        this.buf!.set(src, (v * this.chunkFrames + this.filled) * fsz);
      }
      this.filled += take;
      i += take;
      if (this.filled === this.chunkFrames) this.flush();
    }
  }
  async close(): Promise<string[]> {
    this.flush();
    this.buf = null;
    return this.written.map((w) => w.file);
  }
  abort(): void {
    this.buf = null;
  }
}

/** Streams chunk files (in order) into one `file` holding 'videos' [n, F, H, W, 3]; returns F. */
export async function mergeChunks(chunks: readonly string[], file: string): Promise<number> {
  if (chunks.length === 0) throw new Error(`mergeChunks: no chunks to merge into ${file}`);
  const arrays = chunks.map((c) => openNpyArray(c, 'videos'));
  const out = new NpzStreamWriter(file);
  try {
    const [n, , h, w] = arrays[0].shape;
    for (const a of arrays) if (a.shape[0] !== n || a.shape[2] !== h || a.shape[3] !== w) throw new Error(`${a.source}: shape [${a.shape}] does not match [${n}, *, ${h}, ${w}, 3]`);
    const total = arrays.reduce((s, a) => s + a.shape[1], 0);
    out.beginArray('videos', 'uint8', [n, total, h, w, 3]);
    // Row v of the merged array is video v's frames: chunk rows v in order (one chunk row in memory at a time).
    for (let v = 0; v < n; v++) for (const a of arrays) out.writeRows(await a.readRows(v, 1));
    out.endArray();
    out.close();
    return total;
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    for (const a of arrays) a.close();
  }
}
