/** Files `lvdm reconstruct` and the demo write: original | reconstruction as animated GIF and PNG frame grid. */
import * as path from 'node:path';
import { RgbImage, sideBySideFrames, videoGrid, writeGif, writePng } from '../io/image';
import type { ReconstructionResult } from './pipeline';

/** Nearest-neighbour enlargement by an integer factor (tiny clips are unreadable at 1x). */
export function upscaleNearest(img: RgbImage, k: number): RgbImage {
  if (k === 1) return img;
  const w = img.width * k;
  const h = img.height * k;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = Math.floor(y / k);
    for (let x = 0; x < w; x++) {
      const s = (sy * img.width + Math.floor(x / k)) * 3;
      const d = (y * w + x) * 3;
      data[d] = img.data[s];
      data[d + 1] = img.data[s + 1];
      data[d + 2] = img.data[s + 2];
    }
  }
  return { data, width: w, height: h };
}

/** Upscale factor so the longer side of a frame is at least ~128 px. */
export function displayScale(h: number, w: number): number {
  return Math.max(1, Math.ceil(128 / Math.max(h, w)));
}

/** Writes `reconstruction.gif` (rows: original | reconstruction) and `reconstruction.png` (rows alternate original / reconstruction, columns = frames). */
export function writeReconstructionOutputs(dir: string, rec: ReconstructionResult, fps = 8): string[] {
  const { frames: t, height: h, width: w } = rec;
  const k = displayScale(h, w);
  const anim = sideBySideFrames(rec.originals, rec.reconstructions, t, h, w);
  const gifFrames = anim.frames.map((f) => upscaleNearest({ data: f, width: anim.width, height: anim.height }, k));
  const gif = path.join(dir, 'reconstruction.gif');
  writeGif(gif, gifFrames.map((f) => f.data), gifFrames[0].width, gifFrames[0].height, fps);
  const rows: Uint8Array[] = [];
  rec.originals.forEach((o, i) => rows.push(o, rec.reconstructions[i]));
  const grid = upscaleNearest(videoGrid(rows, t, h, w), k);
  const png = path.join(dir, 'reconstruction.png');
  writePng(png, grid.data, grid.width, grid.height);
  return [gif, png];
}
