/**
 * Shape kinds of single frames (issue 12: does the network draw corners in a still frame, without
 * the time axis?). The object-consistency reading (metrics/object-consistency.ts) finds the
 * object as the pixels that differ from the clip's per-pixel temporal median, so a still frame F is
 * judged as the 16-frame clip [F x 5, B x 11], B the flat frame of F's per-channel median colour:
 * the median is then B and the object F's non-background region. The kind is read from the
 * object's outline as for a clip (shape-kind.ts), and whether the outline is regular (a disc, a
 * square or a triangle rather than a lumpy blob: isRegularOutline), and of the regular ones how many
 * are squares and triangles (a round blob reads as a regular disc); the clip cannot be
 * "consistent" (found in 5 of 16 frames), so only the kinds and outlines are counted. The same
 * reading is taken of real frames, their reconstructions and every model's samples, so the
 * counts compare like with like.
 *
 *   node --import tsx experiments/still-kinds.ts [--frames 0,8] [--sheet FILE.png [--sheet-clips 16]] SET...
 *
 * SET is a video array (videos.npz, samples.npz, real.npz; uint8 N x T x H x W x 3). --frames
 * names the frames read of each clip (default 0; each is judged on its own). --sheet writes the
 * first --frames frame of the first --sheet-clips clips of each SET (default 16), 8 per row, 4x
 * enlarged, one set below the other.
 */
import { parseArgs } from 'node:util';
import { openNpyArray } from '../lib/io/npy';
import { RgbImage, frameGrid, writePng } from '../lib/io/image';
import { upscaleNearest } from '../lib/autoencoder/outputs';
import { videoArrayKey } from '../metrics/videos';
import { clipConsistency } from '../metrics/object-consistency';
import { SHAPE_KINDS, ShapeKind, isPolygon, isRegularOutline } from '../metrics/shape-kind';

const SHOWN = 5;
const BLANK = 11;

/** The still clip [F x SHOWN, B x BLANK] of frame `frame` ([H, W, 3] uint8), B flat at F's per-channel median. */
function stillClip(frame: Uint8Array, h: number, w: number): Uint8Array {
  const px = h * w;
  const med = [0, 1, 2].map((c) => {
    const v = Array.from({ length: px }, (_, p) => frame[p * 3 + c]).sort((a, b) => a - b);
    return v[px >> 1];
  });
  const out = new Uint8Array((SHOWN + BLANK) * px * 3);
  for (let f = 0; f < SHOWN; f++) out.set(frame, f * px * 3);
  for (let i = SHOWN * px * 3; i < out.length; i++) out[i] = med[i % 3];
  return out;
}

async function kindsOf(set: string, frames: number[], sheetClips: number): Promise<{ counts: Record<ShapeKind | 'none', number>; regular: number; regularPolygons: number; edges: number[]; sheet: RgbImage }> {
  const arr = openNpyArray(set, videoArrayKey(set, undefined, true));
  const counts: Record<ShapeKind | 'none', number> = { disc: 0, square: 0, triangle: 0, none: 0 };
  const shown: Uint8Array[] = [];
  const edges: number[] = [];
  let regular = 0;
  let regularPolygons = 0;
  let size: [number, number] = [0, 0];
  try {
    const [n, t, h, w, c] = arr.shape;
    if (arr.shape.length !== 5 || c !== 3 || arr.dtype !== 'uint8') throw new Error(`${set}: expected uint8 videos N x T x H x W x 3, got ${arr.dtype} [${arr.shape}]`);
    size = [h, w];
    for (const f of frames) if (f >= t) throw new Error(`--frames: frame ${f} is past the clips' ${t} frames (${set})`);
    for (let i = 0; i < n; i++) {
      const row = (await arr.readRows(i, 1)) as Uint8Array;
      if (shown.length < sheetClips) shown.push(row.slice(frames[0] * h * w * 3, (frames[0] + 1) * h * w * 3));
      for (const f of frames) {
        const clip = stillClip(row.subarray(f * h * w * 3, (f + 1) * h * w * 3), h, w);
        const { kind, edge, outline } = clipConsistency(clip, [SHOWN + BLANK, h, w, 3], { range: '[0, 255]' });
        counts[kind ?? 'none'] += 1;
        if (isRegularOutline(outline)) {
          regular += 1;
          if (kind && isPolygon(kind)) regularPolygons += 1; // a clean square or triangle, not a round blob read as a disc
        }
        if (Number.isFinite(edge)) edges.push(edge);
      }
    }
  } finally {
    arr.close();
  }
  return { counts, regular, regularPolygons, edges, sheet: upscaleNearest(frameGrid(shown, 1, size[0], size[1], { cols: 8, pad: 1 }), 4) };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { frames: { type: 'string', default: '0' }, sheet: { type: 'string' }, 'sheet-clips': { type: 'string', default: '16' } }, allowPositionals: true });
  const frames = values.frames!.split(',').map((s) => Number(s));
  if (frames.some((f) => !Number.isInteger(f) || f < 0)) throw new Error(`--frames: expected a comma list of frame indices, got '${values.frames}'`);
  const sheetClips = Number(values['sheet-clips']);
  if (!Number.isInteger(sheetClips) || sheetClips < 1) throw new Error(`--sheet-clips: expected a positive integer, got '${values['sheet-clips']}'`);
  if (positionals.length === 0) throw new Error('expected one or more video arrays (videos.npz, samples.npz, real.npz)');
  const sheets: RgbImage[] = [];
  for (const set of positionals) {
    const { counts: k, regular, regularPolygons, edges, sheet } = await kindsOf(set, frames, sheetClips);
    edges.sort((a, b) => a - b);
    sheets.push(sheet);
    const found = k.disc + k.square + k.triangle;
    const poly = SHAPE_KINDS.filter(isPolygon).reduce((s, x) => s + k[x], 0);
    console.log(`${set}: frames ${found + k.none}; disc ${k.disc}, square ${k.square}, triangle ${k.triangle}, no object ${k.none}; squares and triangles ${poly} (${((100 * poly) / Math.max(found, 1)).toFixed(0)}% of objects); regular outlines ${regular} (${((100 * regular) / Math.max(found, 1)).toFixed(0)}%), of them squares and triangles ${regularPolygons}; edge sharpness median ${edges.length ? edges[edges.length >> 1].toFixed(2) : 'n/a'}`);
  }
  if (values.sheet) {
    const width = Math.max(...sheets.map((s) => s.width));
    const height = sheets.reduce((a, s) => a + s.height + 8, 0);
    const out = new Uint8Array(width * height * 3).fill(255);
    let y0 = 0;
    for (const s of sheets) {
      for (let y = 0; y < s.height; y++) out.set(s.data.subarray(y * s.width * 3, (y + 1) * s.width * 3), ((y0 + y) * width) * 3);
      y0 += s.height + 8;
    }
    writePng(values.sheet, out, width, height);
    console.log(`sheet: ${values.sheet}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
