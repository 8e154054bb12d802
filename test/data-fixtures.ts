/**
 * Fixtures for the data tests: tiny videos and frame folders in the real data set layouts,
 * written with ffmpeg. Frames are solid colours that encode their index (see `codeColour`), so
 * decoded windows can be checked for positions and stride within codec tolerance.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Colour of frame i: R steps of 10 over i mod 24, G steps of 40 over (i / 24) mod 6, B steps over i / 144. */
export function codeColour(i: number): [number, number, number] {
  return [20 + 10 * (i % 24), 20 + 40 * (Math.floor(i / 24) % 6), 60 + 60 * Math.floor(i / 144)];
}

/** Inverse of codeColour (nearest code). */
export function decodeIndex(r: number, g: number, b: number): number {
  return Math.round((r - 20) / 10) + 24 * Math.round((g - 20) / 40) + 144 * Math.round((b - 60) / 60);
}

export type FramePainter = (i: number, w: number, h: number) => Uint8Array;

/** Solid frames coloured by index. */
export const solidCoded: FramePainter = (i, w, h) => {
  const c = codeColour(i);
  const f = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) f.set(c, p * 3);
  return f;
};

/** Three vertical bands: red | frame-coded colour | blue, band edges at w/4 and 3w/4. */
export const bandedCoded: FramePainter = (i, w, h) => {
  const c = codeColour(i);
  const f = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const col = x < w / 4 ? [230, 30, 30] : x >= (3 * w) / 4 ? [30, 30, 230] : c;
      f.set(col, (y * w + x) * 3);
    }
  }
  return f;
};

function ffmpeg(args: string[], input?: Buffer): void {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr?.toString()}`);
}

function rawFrames(n: number, w: number, h: number, paint: FramePainter): Buffer {
  const buf = Buffer.alloc(n * w * h * 3);
  for (let i = 0; i < n; i++) buf.set(paint(i, w, h), i * w * h * 3);
  return buf;
}

/** A video file; codec from the extension (near-lossless settings where the format allows). */
export function writeVideo(file: string, n: number, w: number, h: number, opts: { fps?: number; paint?: FramePainter } = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const ext = path.extname(file).toLowerCase();
  const codec =
    ext === '.avi' ? ['-c:v', 'mpeg4', '-q:v', '1', '-vtag', 'XVID']
      : ext === '.webm' ? ['-c:v', 'libvpx-vp9', '-lossless', '1']
        : ['-c:v', 'libx264', '-qp', '0', '-pix_fmt', 'yuv444p'];
  ffmpeg(
    ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${w}x${h}`, '-r', String(opts.fps ?? 25), '-i', 'pipe:0', ...codec, file],
    rawFrames(n, w, h, opts.paint ?? solidCoded),
  );
}

/** A folder of frame images named like `prefix%0Nd.ext`, written by ffmpeg (JPEG at -q:v 1, or PNG). */
export function writeFrames(dir: string, n: number, w: number, h: number, opts: { ext?: 'jpg' | 'png'; pattern?: string; paint?: FramePainter; start?: number } = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const ext = opts.ext ?? 'jpg';
  const pattern = opts.pattern ?? `%05d.${ext}`;
  ffmpeg(
    [
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${w}x${h}`, '-r', '25', '-i', 'pipe:0',
      ...(ext === 'jpg' ? ['-q:v', '1', '-pix_fmt', 'yuvj444p'] : []),
      '-start_number', String(opts.start ?? 0), '-f', 'image2', path.join(dir, pattern),
    ],
    rawFrames(n, w, h, opts.paint ?? solidCoded),
  );
}

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lvdm-${tag}-`));
}

export const UCF_CLASSES = ['ApplyEyeMakeup', 'Basketball', 'YoYo'];

/**
 * UCF-101 layout: root/UCF-101/<Class>/v_<Class>_gXX_cXX.avi (64x48, 25 fps, 30 frames; banded),
 * root/ucfTrainTestlist/{classInd.txt, trainlist0{1,2}.txt, testlist0{1,2}.txt} with CRLF.
 * Groups g01-g02 are test in fold 1, g03-g04 train. Extras in YoYo (train, fold 1): a zero-byte
 * video (g03_c02), a truncated one (g03_c03: probes as 30 frames, decodes fewer), a short one of 5 frames (g03_c04); and a listed
 * video that does not exist (g04_c09).
 */
export function buildUcf(root: string): void {
  const vids = path.join(root, 'UCF-101');
  const lists = path.join(root, 'ucfTrainTestlist');
  fs.mkdirSync(lists, { recursive: true });
  const name = (c: string, g: number, k: number): string => `${c}/v_${c}_g${String(g).padStart(2, '0')}_c${String(k).padStart(2, '0')}.avi`;
  const train1: string[] = [];
  const test1: string[] = [];
  UCF_CLASSES.forEach((c, ci) => {
    for (let g = 1; g <= 4; g++) {
      const rel = name(c, g, 1);
      writeVideo(path.join(vids, rel), 30, 64, 48, { paint: bandedCoded });
      (g <= 2 ? test1 : train1).push(g <= 2 ? rel : `${rel} ${ci + 1}`);
    }
  });
  // Broken inputs in YoYo (train of fold 1).
  fs.writeFileSync(path.join(vids, name('YoYo', 3, 2)), Buffer.alloc(0));
  const good = fs.readFileSync(path.join(vids, name('YoYo', 3, 1)));
  // Cut inside the frame data ('movi' list): the header still says 30 frames, about 12 decode.
  const movi = good.indexOf('movi');
  fs.writeFileSync(path.join(vids, name('YoYo', 3, 3)), good.subarray(0, movi + Math.floor((good.length - movi) * 0.4)));
  writeVideo(path.join(vids, name('YoYo', 3, 4)), 5, 64, 48, { paint: bandedCoded });
  for (const k of [2, 3, 4]) train1.push(`${name('YoYo', 3, k)} 3`);
  train1.push(`${name('YoYo', 4, 9)} 3`);
  const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');
  fs.writeFileSync(path.join(lists, 'classInd.txt'), crlf(UCF_CLASSES.map((c, i) => `${i + 1} ${c}`)));
  fs.writeFileSync(path.join(lists, 'trainlist01.txt'), crlf(train1));
  fs.writeFileSync(path.join(lists, 'testlist01.txt'), crlf(test1));
  // Fold 2: groups 1 and 3 test, 2 and 4 train (good videos only).
  const train2: string[] = [];
  const test2: string[] = [];
  UCF_CLASSES.forEach((c, ci) => {
    for (let g = 1; g <= 4; g++) (g % 2 === 1 ? test2 : train2).push(g % 2 === 1 ? name(c, g, 1) : `${name(c, g, 1)} ${ci + 1}`);
  });
  fs.writeFileSync(path.join(lists, 'trainlist02.txt'), crlf(train2));
  fs.writeFileSync(path.join(lists, 'testlist02.txt'), crlf(test2));
}
