/**
 * Video decoding through ffmpeg as a streamed child process.
 *
 * Frames arrive as rawvideo rgb24 on a pipe and are handed to a callback one at a time, so a
 * video is never held in memory whole. `ffprobe` gives the metadata. The binaries are found on
 * PATH, or at $LVDM_FFMPEG / $LVDM_FFPROBE.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface VideoInfo {
  /** Display size (after any rotation metadata is applied, as ffmpeg outputs it). */
  width: number;
  height: number;
  /** Frame rate (r_frame_rate, falling back to avg_frame_rate). */
  fps: number;
  /** Frame count: the container's, or counted packets when the container has none. */
  frames: number;
  /** Seconds. */
  duration: number;
  codec: string;
}

export function ffmpegPath(): string {
  return process.env.LVDM_FFMPEG || 'ffmpeg';
}

export function ffprobePath(): string {
  return process.env.LVDM_FFPROBE || 'ffprobe';
}

const checked = new Map<string, true>();

/** ffmpeg / ffprobe cannot be run: a setup problem, never a reason to skip one video. */
export class FfmpegMissingError extends Error {
  override name = 'FfmpegMissingError';
}

/** Throws a clear error when ffmpeg / ffprobe cannot be run; `forWhat` names what needs it. */
export function requireFfmpeg(forWhat: string): void {
  for (const bin of [ffmpegPath(), ffprobePath()]) {
    if (checked.has(bin)) continue;
    const r = spawnSync(bin, ['-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    if (r.error || r.status !== 0) {
      throw new FfmpegMissingError(
        `${bin} was not found or does not run (needed to decode ${forWhat}). Install ffmpeg ` +
          `(Debian/Ubuntu: apt-get install ffmpeg) or set LVDM_FFMPEG / LVDM_FFPROBE to the binaries.`,
      );
    }
    checked.set(bin, true);
  }
}

function run(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

function parseRate(r: unknown): number {
  if (typeof r !== 'string') return NaN;
  const [a, b] = r.split('/').map(Number);
  return b ? a / b : a;
}

interface ProbeJson {
  streams?: {
    width?: number;
    height?: number;
    r_frame_rate?: string;
    avg_frame_rate?: string;
    nb_frames?: string;
    nb_read_packets?: string;
    duration?: string;
    codec_name?: string;
    tags?: { rotate?: string };
    side_data_list?: { rotation?: number }[];
  }[];
  format?: { duration?: string };
}

/** Metadata of the first video stream; throws (naming the file) when there is none. */
export async function probeVideo(file: string): Promise<VideoInfo> {
  requireFfmpeg(file);
  const args = [
    '-v', 'error', '-select_streams', 'v:0',
    '-show_entries', 'stream=width,height,r_frame_rate,avg_frame_rate,nb_frames,duration,codec_name:stream_tags=rotate:stream_side_data=rotation:format=duration',
    '-of', 'json', file,
  ];
  const r = await run(ffprobePath(), args);
  let j: ProbeJson = {};
  try {
    j = JSON.parse(r.stdout || '{}') as ProbeJson;
  } catch {
    j = {};
  }
  const s = j.streams?.[0];
  if (r.code !== 0 || !s || !s.width || !s.height) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    const why = (last.startsWith(`${file}: `) ? last.slice(file.length + 2) : last) || 'no video stream';
    throw new Error(`${file}: not a readable video (${why})`);
  }
  let fps = parseRate(s.r_frame_rate);
  const avg = parseRate(s.avg_frame_rate);
  if (!(fps > 0) || fps > 1000) fps = avg;
  if (!(fps > 0)) throw new Error(`${file}: video has no frame rate`);
  const duration = Number(s.duration ?? j.format?.duration ?? NaN);
  let frames = Number(s.nb_frames ?? NaN);
  if (!(frames > 0)) {
    const c = await run(ffprobePath(), ['-v', 'error', '-count_packets', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_packets', '-of', 'json', file]);
    try {
      frames = Number((JSON.parse(c.stdout) as ProbeJson).streams?.[0]?.nb_read_packets ?? NaN);
    } catch {
      frames = NaN;
    }
    if (!(frames > 0) && duration > 0) frames = Math.floor(duration * fps);
  }
  if (!(frames > 0)) throw new Error(`${file}: video has no frames`);
  const rot = Math.abs(Number(s.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? s.tags?.rotate ?? 0)) % 180;
  const [width, height] = rot === 90 ? [s.height, s.width] : [s.width, s.height];
  return { width, height, fps, frames, duration: duration > 0 ? duration : frames / fps, codec: s.codec_name ?? 'unknown' };
}

export interface DecodeOptions {
  /** Source display size (from probeVideo). */
  width: number;
  height: number;
  /** Have ffmpeg shrink frames by this integer factor first (box filter); must divide width and height. */
  shrink?: number;
  /** Resample to this frame rate first (ffmpeg fps filter); frame indices then count resampled frames. */
  fps?: number;
  /** Index of the first frame wanted (default 0). */
  start?: number;
  /** Keep every `stride`-th frame from `start` (default 1). */
  stride?: number;
  /** Stop after this many kept frames (default: to the end). */
  count?: number;
  /** Frame rate of the stream that indices refer to (the source fps, or `fps`); enables seeking. */
  indexFps?: number;
}

export interface DecodeResult {
  /** Frames delivered to the callback. */
  frames: number;
  /** ffmpeg's error output (empty when clean). */
  errors: string;
  exitCode: number | null;
}

/** Seeking is only used this far into a video (seconds); before that, frames are decoded and dropped. */
const SEEK_MIN_SECONDS = 10;

/**
 * Decode frames `start, start + stride, ...` of a video (after optional fps resampling) and
 * pass each RGB frame ([height / shrink, width / shrink, 3], a view valid only during the call) to `onFrame`.
 * Resolves with the number of frames delivered: fewer than asked means the video ended or broke.
 */
export function decodeVideo(file: string, opts: DecodeOptions, onFrame: (rgb: Uint8Array, k: number) => void): Promise<DecodeResult> {
  requireFfmpeg(file);
  const start = opts.start ?? 0;
  const stride = opts.stride ?? 1;
  const count = opts.count;
  const shrink = opts.shrink ?? 1;
  if (!Number.isInteger(shrink) || shrink < 1 || opts.width % shrink !== 0 || opts.height % shrink !== 0) {
    throw new Error(`decodeVideo: shrink ${shrink} must be an integer dividing ${opts.width}x${opts.height}`);
  }
  const frameBytes = (opts.width / shrink) * (opts.height / shrink) * 3;
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error'];
  let first = start;
  const rate = opts.indexFps;
  if (rate && start / rate > SEEK_MIN_SECONDS) {
    // Input seek to half a frame before the wanted one: frames before it are dropped exactly.
    args.push('-ss', ((start - 0.5) / rate).toFixed(6));
    first = 0;
  }
  args.push('-i', file, '-an', '-sn', '-dn');
  const filters: string[] = [];
  if (opts.fps) filters.push(`fps=${opts.fps}`);
  if (shrink > 1) filters.push(`scale=${opts.width / shrink}:${opts.height / shrink}:flags=area`);
  if (first > 0 || stride > 1) filters.push(`select='gte(n\\,${first})*not(mod(n-${first}\\,${stride}))'`);
  if (filters.length) args.push('-vf', filters.join(','));
  args.push('-fps_mode', 'passthrough');
  if (count !== undefined) args.push('-frames:v', String(count));
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');

  return new Promise((resolve, reject) => {
    const p = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const frame = new Uint8Array(frameBytes);
    let filled = 0;
    let k = 0;
    let done = false;
    let failure: Error | null = null;
    const err: Buffer[] = [];
    p.stderr.on('data', (b: Buffer) => {
      if (err.length < 64) err.push(b);
    });
    p.stdout.on('data', (chunk: Buffer) => {
      if (done) return;
      let pos = 0;
      while (pos < chunk.length) {
        const n = Math.min(frameBytes - filled, chunk.length - pos);
        frame.set(chunk.subarray(pos, pos + n), filled);
        filled += n;
        pos += n;
        if (filled === frameBytes) {
          filled = 0;
          try {
            onFrame(frame, k++);
          } catch (e) {
            failure = e as Error;
          }
          if (failure || (count !== undefined && k >= count)) {
            done = true;
            p.stdout.destroy();
            p.kill('SIGKILL');
            return;
          }
        }
      }
    });
    p.on('error', (e) => reject(new Error(`${file}: cannot run ffmpeg (${e.message})`)));
    p.on('close', (code) => {
      if (failure) return reject(failure);
      const errors = Buffer.concat(err).toString('utf8').trim();
      resolve({ frames: k, errors, exitCode: done ? 0 : code });
    });
  });
}
