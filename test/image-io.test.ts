import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { animatedGrid, decodePng, encodeGif, floatToUint8, frameGrid, sideBySideFrames, videoGrid, writeGif, writePng } from '../lib/io/image';
import { Mp4Writer, evenSize, writeMp4 } from '../lib/io/video-writer';
import { Rng } from '../lib/nn/rng';

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-io-test-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(0, 255));
}

/** A smooth moving colour pattern [T, H, W, 3] (encodes well, so decode errors stay small). */
function pattern(t: number, h: number, w: number, phase = 0): Uint8Array {
  const out = new Uint8Array(t * h * w * 3);
  for (let f = 0; f < t; f++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = ((f * h + y) * w + x) * 3;
        out[i] = Math.round(127.5 + 100 * Math.sin((x + 2 * f + phase) / 6));
        out[i + 1] = Math.round(127.5 + 100 * Math.cos((y - f) / 5));
        out[i + 2] = Math.round((255 * (x + y)) / (w + h));
      }
  return out;
}

function pixel(img: { data: Uint8Array; width: number }, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

function tempFiles(): string[] {
  return fs.readdirSync(dir).filter((f) => f.includes('.tmp'));
}

test('PNG round trip is exact (pngjs decode), written atomically', () => {
  const [w, h] = [13, 7];
  const rgb = randomBytes(w * h * 3, 1);
  const file = path.join(dir, 'sub', 'a.png');
  writePng(file, rgb, w, h);
  const raw = PNG.sync.read(fs.readFileSync(file));
  assert.equal(raw.width, w);
  assert.equal(raw.height, h);
  assert.equal(raw.colorType, 2, 'stored as 8-bit RGB');
  const back = decodePng(fs.readFileSync(file));
  assert.deepEqual(back.data, rgb);
  assert.deepEqual(tempFiles(), []);
  assert.throws(() => writePng(path.join(dir, 'b.png'), rgb, w + 1, h), /14x7x3 = 294 bytes, got 273/);
  assert.ok(!fs.existsSync(path.join(dir, 'b.png')));
});

/** Walks the GIF block structure; returns the logical screen size, frame count, delays, loop flag. */
function parseGif(b: Uint8Array): { width: number; height: number; frames: number; delays: number[]; loops: boolean } {
  assert.equal(Buffer.from(b.subarray(0, 6)).toString('latin1'), 'GIF89a');
  const u16 = (o: number): number => b[o] | (b[o + 1] << 8);
  const width = u16(6);
  const height = u16(8);
  let p = 13;
  if (b[10] & 0x80) p += 3 * (1 << ((b[10] & 7) + 1)); // global colour table
  const skipSubBlocks = (): void => {
    while (b[p] !== 0) p += b[p] + 1;
    p++;
  };
  let frames = 0;
  let loops = false;
  const delays: number[] = [];
  for (;;) {
    const id = b[p++];
    if (id === 0x3b) break; // trailer
    if (id === 0x21) {
      const label = b[p++];
      if (label === 0xf9) delays.push(u16(p + 2) * 10);
      if (label === 0xff && Buffer.from(b.subarray(p + 1, p + 12)).toString('latin1') === 'NETSCAPE2.0') loops = true;
      skipSubBlocks();
    } else if (id === 0x2c) {
      frames++;
      const packed = b[p + 8];
      p += 9;
      if (packed & 0x80) p += 3 * (1 << ((packed & 7) + 1)); // local colour table
      p++; // LZW minimum code size
      skipSubBlocks();
    } else {
      throw new Error(`GIF: unexpected block 0x${id.toString(16)} at ${p - 1}`);
    }
  }
  assert.equal(p, b.length, 'trailer is the last byte');
  return { width, height, frames, delays, loops };
}

/** Decodes every frame of an animation to packed RGB with ffmpeg. */
function ffmpegFrames(file: string, w: number, h: number): Uint8Array[] {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-vsync', 'passthrough', 'pipe:1'], { maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, String(r.stderr));
  const out = r.stdout as Buffer;
  const n = w * h * 3;
  assert.equal(out.length % n, 0);
  return Array.from({ length: out.length / n }, (_, i) => new Uint8Array(out.subarray(i * n, (i + 1) * n)));
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

test('animated GIF: header, frame count, delay, loop; frames decode back (ffmpeg)', () => {
  const [t, h, w] = [6, 20, 24];
  // Few colours (16): a 256-colour palette holds them all, so decoding is exact.
  const rng = new Rng(3);
  const colours = Array.from({ length: 16 }, () => [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)]);
  const frames = Array.from({ length: t }, () => {
    const f = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) f.set(colours[rng.int(0, 15)], i * 3);
    return f;
  });
  // A smooth full-colour animation: quantisation error only.
  const video = pattern(t, h, w);
  const smooth = Array.from({ length: t }, (_, i) => video.subarray(i * h * w * 3, (i + 1) * h * w * 3));
  for (const palette of ['global', 'per-frame'] as const) {
    const file = path.join(dir, `anim-${palette}.gif`);
    writeGif(file, frames, w, h, 10, { palette });
    const info = parseGif(fs.readFileSync(file));
    assert.deepEqual(info, { width: w, height: h, frames: t, delays: Array(t).fill(100), loops: true });
    const decoded = ffmpegFrames(file, w, h);
    assert.equal(decoded.length, t);
    decoded.forEach((f, i) => assert.deepEqual(f, frames[i], `${palette} frame ${i}`));

    const file2 = path.join(dir, `smooth-${palette}.gif`);
    writeGif(file2, smooth, w, h, 25, { palette });
    assert.deepEqual(parseGif(fs.readFileSync(file2)).delays, Array(t).fill(40));
    ffmpegFrames(file2, w, h).forEach((f, i) => assert.ok(meanAbsDiff(f, smooth[i]) < 8, `${palette} smooth frame ${i}: mean abs diff ${meanAbsDiff(f, smooth[i])}`));
  }
  assert.equal(parseGif(encodeGif(frames, w, h, 4, { loop: false })).loops, false);
  assert.throws(() => encodeGif([frames[0], frames[1].subarray(3)], w, h, 10), /frame 1/);
  assert.deepEqual(tempFiles(), []);
});

test('frameGrid / videoGrid / sideBySide place every frame where expected', () => {
  const [t, h, w] = [3, 4, 5];
  const vids = [0, 1, 2, 3, 4].map((s) => randomBytes(t * h * w * 3, 10 + s));
  const at = (v: Uint8Array, f: number, x: number, y: number): number[] => {
    const i = ((f * h + y) * w + x) * 3;
    return [v[i], v[i + 1], v[i + 2]];
  };
  // 5 videos, 2 columns -> 3 rows; pad 1
  const g = frameGrid(vids, t, h, w, { cols: 2, pad: 1, frame: 2, background: [1, 2, 3] });
  assert.equal(g.width, 2 * (w + 1) + 1);
  assert.equal(g.height, 3 * (h + 1) + 1);
  for (let i = 0; i < 5; i++) {
    const x0 = 1 + (i % 2) * (w + 1);
    const y0 = 1 + Math.floor(i / 2) * (h + 1);
    for (const [x, y] of [[0, 0], [w - 1, h - 1], [2, 1]]) assert.deepEqual(pixel(g, x0 + x, y0 + y), at(vids[i], 2, x, y), `video ${i} (${x},${y})`);
  }
  assert.deepEqual(pixel(g, 0, 0), [1, 2, 3]);
  assert.deepEqual(pixel(g, g.width - 2, g.height - 2), [1, 2, 3], 'empty sixth cell is background');
  // rows = videos, columns = frames
  const s = videoGrid(vids.slice(0, 2), t, h, w, { pad: 0 });
  assert.equal(s.width, t * w);
  assert.equal(s.height, 2 * h);
  for (let r = 0; r < 2; r++) for (let f = 0; f < t; f++) assert.deepEqual(pixel(s, f * w + 3, r * h + 2), at(vids[r], f, 3, 2));
  const strided = videoGrid(vids.slice(0, 1), t, h, w, { pad: 0, frameStride: 2 });
  assert.equal(strided.width, 2 * w); // frames 0 and 2
  assert.deepEqual(pixel(strided, w + 1, 1), at(vids[0], 2, 1, 1));
  // original | reconstruction, one pair per row, T frames
  const sb = sideBySideFrames([vids[0], vids[1]], [vids[2], vids[3]], t, h, w, { pad: 2 });
  assert.equal(sb.frames.length, t);
  assert.equal(sb.width, 2 * (w + 2) + 2);
  assert.equal(sb.height, 2 * (h + 2) + 2);
  const f1 = { data: sb.frames[1], width: sb.width };
  assert.deepEqual(pixel(f1, 2, 2), at(vids[0], 1, 0, 0));
  assert.deepEqual(pixel(f1, 2 + w + 2, 2), at(vids[2], 1, 0, 0));
  assert.deepEqual(pixel(f1, 2 + w + 2, 2 + h + 2), at(vids[3], 1, 0, 0));
  const ag = animatedGrid(vids, t, h, w, { cols: 5, pad: 0 });
  assert.equal(ag.frames.length, t);
  assert.deepEqual(pixel({ data: ag.frames[2], width: ag.width }, 4 * w, 0), at(vids[4], 2, 0, 0));
  // a grid written as PNG
  const file = path.join(dir, 'grid.png');
  writePng(file, s.data, s.width, s.height);
  assert.deepEqual(decodePng(fs.readFileSync(file)).data, s.data);
  assert.throws(() => frameGrid([vids[0], vids[1].subarray(1)], t, h, w, { cols: 2 }), /video 1 has 179 bytes/);
  assert.throws(() => frameGrid(vids, t, h, w, { cols: 2, frame: 3 }), /frame 3 out of range/);
  assert.throws(() => sideBySideFrames([vids[0]], [], t, h, w), /1 originals but 0 reconstructions/);
});

test('floatToUint8 maps [-1, 1] to [0, 255] with clamping', () => {
  assert.deepEqual(Array.from(floatToUint8([-1, 0, 1, -3, 7, 0.5, NaN])), [0, 128, 255, 0, 255, 191, 0]);
  assert.deepEqual(Array.from(floatToUint8([0, 0.5, 1], 0, 1)), [0, 128, 255]);
});

function ffprobe(file: string): { width: number; height: number; frames: number; codec: string; pixFmt: string } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,nb_read_frames,codec_name,pix_fmt', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = (JSON.parse(r.stdout) as { streams: { width: number; height: number; nb_read_frames: string; codec_name: string; pix_fmt: string }[] }).streams[0];
  return { width: s.width, height: s.height, frames: Number(s.nb_read_frames), codec: s.codec_name, pixFmt: s.pix_fmt };
}

test('MP4: streamed frames probe to the right count and size; odd sizes padded or scaled', async () => {
  const [t, h, w] = [12, 18, 32];
  const video = pattern(t, h, w, 3);
  const frames = Array.from({ length: t }, (_, i) => video.subarray(i * h * w * 3, (i + 1) * h * w * 3));
  const file = path.join(dir, 'clip.mp4');
  const writer = new Mp4Writer(file, w, h, { fps: 8, crf: 10 });
  const reused = new Uint8Array(w * h * 3);
  for (const f of frames) {
    reused.set(f); // the writer must copy: the caller reuses its buffer
    await writer.write(reused);
  }
  assert.ok(!fs.existsSync(file), 'nothing at the target before close');
  await writer.close();
  assert.equal(writer.framesWritten, t);
  assert.deepEqual(ffprobe(file), { width: w, height: h, frames: t, codec: 'h264', pixFmt: 'yuv420p' });
  const decoded = ffmpegFrames(file, w, h);
  assert.equal(decoded.length, t);
  decoded.forEach((f, i) => assert.ok(meanAbsDiff(f, frames[i]) < 6, `frame ${i}: mean abs diff ${meanAbsDiff(f, frames[i])}`));

  const [ow, oh] = [33, 17];
  const odd = pattern(5, oh, ow);
  const oddFrames = Array.from({ length: 5 }, (_, i) => odd.subarray(i * oh * ow * 3, (i + 1) * oh * ow * 3));
  assert.deepEqual(evenSize(ow, oh), [34, 18]);
  assert.deepEqual(evenSize(ow, oh, 'scale'), [32, 16]);
  await writeMp4(path.join(dir, 'odd-pad.mp4'), oddFrames, ow, oh);
  assert.deepEqual(ffprobe(path.join(dir, 'odd-pad.mp4')), { width: 34, height: 18, frames: 5, codec: 'h264', pixFmt: 'yuv420p' });
  // padding is black on the right/bottom; the picture itself is not shifted or scaled
  const padded = ffmpegFrames(path.join(dir, 'odd-pad.mp4'), 34, 18)[2];
  const crop = new Uint8Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) crop.set(padded.subarray(y * 34 * 3, (y * 34 + ow) * 3), y * ow * 3);
  assert.ok(meanAbsDiff(crop, oddFrames[2]) < 8, `padded picture: mean abs diff ${meanAbsDiff(crop, oddFrames[2])}`);
  // (luma: yuv420p shares chroma between the last picture row/column and the border)
  const luma = ([r, g, b]: number[]): number => 0.299 * r + 0.587 * g + 0.114 * b;
  for (const [x, y] of [[33, 8], [33, 0], [10, 17], [33, 17]]) assert.ok(luma(pixel({ data: padded, width: 34 }, x, y)) < 30, `border (${x}, ${y}) is black: ${pixel({ data: padded, width: 34 }, x, y)}`);
  await writeMp4(path.join(dir, 'odd-scale.mp4'), oddFrames, ow, oh, { evenSize: 'scale' });
  assert.deepEqual(ffprobe(path.join(dir, 'odd-scale.mp4')), { width: 32, height: 16, frames: 5, codec: 'h264', pixFmt: 'yuv420p' });
  // Frames far above the pipe's buffer: every write waits for 'drain' (backpressure path).
  const [bw, bh, bt] = [256, 192, 6];
  const big = pattern(bt, bh, bw);
  const bigFile = path.join(dir, 'big.mp4');
  const bwriter = new Mp4Writer(bigFile, bw, bh, { fps: 24, preset: 'ultrafast' });
  for (let i = 0; i < bt; i++) await bwriter.write(big.subarray(i * bw * bh * 3, (i + 1) * bw * bh * 3));
  await bwriter.close();
  assert.deepEqual(ffprobe(bigFile), { width: bw, height: bh, frames: bt, codec: 'h264', pixFmt: 'yuv420p' });
  assert.deepEqual(tempFiles(), []);
});

test('MP4 errors: missing ffmpeg names the fix; bad frames; ffmpeg failure leaves no file', async () => {
  assert.throws(
    () => new Mp4Writer(path.join(dir, 'x.mp4'), 8, 8, { ffmpegPath: path.join(dir, 'no-such-ffmpeg') }),
    (e: Error) => e.message.includes('ffmpeg not found') && e.message.includes('apt-get install ffmpeg') && e.message.includes('no-such-ffmpeg'),
  );
  const w = new Mp4Writer(path.join(dir, 'y.mp4'), 8, 8);
  await assert.rejects(w.write(new Uint8Array(10)), /frame 0 has 10 bytes, expected 8x8x3 = 192/);
  w.abort();
  const empty = new Mp4Writer(path.join(dir, 'z.mp4'), 8, 8);
  await assert.rejects(empty.close(), /no frames/);
  // an encoder option ffmpeg rejects: close reports ffmpeg's own message, no output file remains
  const bad = new Mp4Writer(path.join(dir, 'bad.mp4'), 8, 8, { preset: 'no-such-preset' });
  let err: Error | null = null;
  try {
    for (let i = 0; i < 3; i++) await bad.write(new Uint8Array(192));
    await bad.close();
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err !== null && /ffmpeg exited with code \d+/.test(err.message) && /preset/i.test(err.message), String(err));
  assert.ok(!fs.existsSync(path.join(dir, 'bad.mp4')));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(tempFiles(), []);
  assert.throws(() => new Mp4Writer(path.join(dir, 'c.mp4'), 8, 8, { crf: 60 }), /crf must be in \[0, 51\]/);
});
