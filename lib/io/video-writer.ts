/**
 * MP4 (H.264) output by streaming raw RGB frames to an ffmpeg child process.
 * Encoding: libx264, yuv420p (plays everywhere), constant quality (-crf), faststart.
 * yuv420p needs even sizes: odd widths/heights are padded (default, black border on the
 * right/bottom) or scaled down to even. Output goes to a temp file in the target folder and is
 * renamed into place only when ffmpeg succeeds.
 */
import { ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';

export interface Mp4WriterOptions {
  /** Frames per second (default 8). */
  fps?: number;
  /** x264 constant rate factor, 0 (lossless luma) .. 51 (worst); default 18. */
  crf?: number;
  /** x264 preset (default 'medium'). */
  preset?: string;
  /** How to make odd sizes even for yuv420p: 'pad' (default) or 'scale'. */
  evenSize?: 'pad' | 'scale';
  /** ffmpeg binary (default env FFMPEG_PATH, else 'ffmpeg' on PATH). */
  ffmpegPath?: string;
}

const STDERR_KEEP = 8192;

function missingFfmpeg(bin: string): Error {
  return new Error(
    `Mp4Writer: ffmpeg not found (tried '${bin}'). MP4 output needs ffmpeg with libx264: ` +
      `install it with 'apt-get install ffmpeg' (Debian/Ubuntu) or 'brew install ffmpeg' (macOS), or set FFMPEG_PATH.`,
  );
}

/** Output size after making both sides even. */
export function evenSize(width: number, height: number, mode: 'pad' | 'scale' = 'pad'): [number, number] {
  const f = (s: number): number => (s % 2 === 0 ? s : mode === 'pad' ? s + 1 : Math.max(2, s - 1));
  return [f(width), f(height)];
}

export class Mp4Writer {
  readonly fps: number;
  readonly crf: number;
  /** Size of the encoded video (even). */
  readonly outputWidth: number;
  readonly outputHeight: number;
  private readonly tmp: string;
  private readonly proc: ChildProcessByStdio<Writable, null, Readable>;
  private readonly exited: Promise<void>;
  private exitCode: number | null = null;
  private exitSignal: NodeJS.Signals | null = null;
  private spawnError: Error | null = null;
  private stdinError: Error | null = null;
  private stderr = '';
  private state: 'open' | 'closing' | 'closed' | 'failed' = 'open';
  private count = 0;

  /** Starts ffmpeg for `file`; throws at once if ffmpeg is missing or the options are invalid. */
  constructor(readonly file: string, readonly width: number, readonly height: number, opts: Mp4WriterOptions = {}) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
      throw new Error(`Mp4Writer(${file}): width and height must be positive integers, got ${width}x${height}`);
    this.fps = opts.fps ?? 8;
    this.crf = opts.crf ?? 18;
    if (!(this.fps > 0)) throw new Error(`Mp4Writer(${file}): fps must be > 0, got ${this.fps}`);
    if (!(this.crf >= 0 && this.crf <= 51)) throw new Error(`Mp4Writer(${file}): crf must be in [0, 51], got ${this.crf}`);
    const mode = opts.evenSize ?? 'pad';
    [this.outputWidth, this.outputHeight] = evenSize(width, height, mode);
    const bin = opts.ffmpegPath ?? process.env.FFMPEG_PATH ?? 'ffmpeg';
    const probe = spawnSync(bin, ['-hide_banner', '-version'], { stdio: 'ignore' });
    if (probe.error) {
      if ((probe.error as NodeJS.ErrnoException).code === 'ENOENT') throw missingFfmpeg(bin);
      throw new Error(`Mp4Writer: could not run ffmpeg '${bin}': ${probe.error.message}`);
    }

    const dir = path.dirname(file);
    fs.mkdirSync(dir, { recursive: true });
    this.tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp.mp4`);
    const even = this.outputWidth === width && this.outputHeight === height;
    const filter = even ? [] : ['-vf', mode === 'pad' ? `pad=${this.outputWidth}:${this.outputHeight}:0:0:black` : `scale=${this.outputWidth}:${this.outputHeight}`];
    const args = [
      '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-framerate', String(this.fps), '-i', 'pipe:0',
      ...filter,
      '-c:v', 'libx264', '-preset', opts.preset ?? 'medium', '-crf', String(this.crf), '-pix_fmt', 'yuv420p',
      '-movflags', '+faststart', '-f', 'mp4', this.tmp,
    ];
    // '-nostdin' only stops ffmpeg's interactive keys; the video itself still comes from pipe:0.
    this.proc = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-STDERR_KEEP);
    });
    this.proc.stdin.on('error', (e: Error) => {
      this.stdinError = e; // EPIPE when ffmpeg died; reported with its stderr
    });
    this.exited = new Promise<void>((resolve) => {
      this.proc.on('error', (e: Error) => {
        this.spawnError = (e as NodeJS.ErrnoException).code === 'ENOENT' ? missingFfmpeg(bin) : e;
        resolve();
      });
      this.proc.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
    });
  }

  /** Frames accepted so far. */
  get framesWritten(): number {
    return this.count;
  }

  private failure(): Error {
    if (this.spawnError) return this.spawnError;
    const how = this.exitSignal ? `was killed by ${this.exitSignal}` : `exited with code ${this.exitCode}`;
    const tail = this.stderr.trim() || this.stdinError?.message || '(no output)';
    return new Error(`Mp4Writer(${this.file}): ffmpeg ${how}: ${tail}`);
  }

  private hasExited(): boolean {
    return this.spawnError !== null || this.exitCode !== null || this.exitSignal !== null;
  }

  private cleanupTmp(): void {
    fs.rmSync(this.tmp, { force: true });
  }

  /** Queues one packed RGB frame (H*W*3 bytes); resolves when ffmpeg can take more (backpressure). */
  async write(frame: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new Error(`Mp4Writer(${this.file}): write after ${this.state === 'failed' ? 'failure' : 'close'}`);
    if (frame.length !== this.width * this.height * 3)
      throw new Error(`Mp4Writer(${this.file}): frame ${this.count} has ${frame.length} bytes, expected ${this.width}x${this.height}x3 = ${this.width * this.height * 3}`);
    if (this.hasExited()) return this.fail();
    // Buffer.from copies: the caller may reuse its frame buffer while the pipe still holds this one.
    const ok = this.proc.stdin.write(Buffer.from(frame));
    this.count++;
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.proc.stdin.off('drain', done);
          resolve();
        };
        this.proc.stdin.on('drain', done);
        void this.exited.then(done);
      });
      if (this.hasExited()) return this.fail();
    }
  }

  private async fail(): Promise<never> {
    this.state = 'failed';
    await this.exited;
    this.cleanupTmp();
    throw this.failure();
  }

  /** Ends the stream, waits for ffmpeg, and renames the finished file into place. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state !== 'open') throw new Error(`Mp4Writer(${this.file}): close after ${this.state === 'failed' ? 'failure' : 'close started'}`);
    this.state = 'closing';
    if (this.count === 0) {
      this.abort();
      await this.exited; // ffmpeg is gone and its partial file removed before we report
      this.cleanupTmp();
      throw new Error(`Mp4Writer(${this.file}): no frames were written`);
    }
    this.proc.stdin.end();
    await this.exited;
    if (this.spawnError || this.exitCode !== 0) {
      this.state = 'failed';
      this.cleanupTmp();
      throw this.failure();
    }
    fs.renameSync(this.tmp, this.file);
    this.state = 'closed';
  }

  /** Stops ffmpeg and removes the partial output (no file is created). */
  abort(): void {
    if (this.state === 'closed') return;
    this.state = 'failed';
    this.proc.stdin.destroy();
    if (!this.hasExited()) this.proc.kill('SIGKILL');
    void this.exited.then(() => this.cleanupTmp());
    this.cleanupTmp();
  }
}

/** Writes a whole clip (frames packed RGB, each H*W*3) to an MP4 file. */
export async function writeMp4(file: string, frames: Uint8Array[], width: number, height: number, opts: Mp4WriterOptions = {}): Promise<void> {
  const w = new Mp4Writer(file, width, height, opts);
  try {
    for (const f of frames) await w.write(f);
  } catch (e) {
    w.abort();
    throw e;
  }
  await w.close();
}
