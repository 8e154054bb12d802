/**
 * Figures on disk: `<name>.html` (interactive, standalone, offline) and `<name>.png`, rendered by
 * one headless Chromium from one page holding every figure at the PNG size, without mode bars. A
 * missing Chromium leaves the PNGs out with a message saying what to install; the HTML is always
 * written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import { renderPageClips } from './chromium';
import type { Figure } from './figure';
import { figureSheetHtml, writeFigureHtml } from './html';

export interface FigureFiles {
  name: string;
  html: string;
  png?: string;
  /** Why there is no PNG (Chromium missing or failing). */
  message?: string;
}

export interface FigureFileOptions {
  /** PNG size in pixels (default 900 x 520). */
  width?: number;
  height?: number;
  /** Render the PNGs (default true). */
  png?: boolean;
}

/** Writes `<dir>/<name>.html` for every figure and, unless told not to, `<dir>/<name>.png`. */
export async function writeFiguresFiles(figs: readonly { name: string; title: string; figure: Figure }[], dir: string, o: FigureFileOptions = {}): Promise<FigureFiles[]> {
  const out: FigureFiles[] = figs.map((f) => {
    if (!/^[\w.-]+$/.test(f.name)) throw new Error(`figure name '${f.name}' is not a plain file name`);
    const html = path.join(dir, `${f.name}.html`);
    writeFigureHtml(html, f.figure, f.title);
    return { name: f.name, html };
  });
  if (o.png === false || figs.length === 0) return out;
  const width = o.width ?? 900;
  const height = o.height ?? 520;
  // one page holding every figure at the PNG size: plotly is parsed once for all the PNGs
  const sheet = path.join(dir, `.figures.${process.pid}.png-sheet.html`);
  try {
    writeFileAtomic(sheet, figureSheetHtml(figs.map((f) => f.figure), width, height));
    const clips = figs.map((f, i) => ({ png: path.join(dir, `${f.name}.png`), x: 0, y: i * height, width, height }));
    const res = await renderPageClips(sheet, clips, { width, height: Math.min(height * figs.length, 16_000) });
    res.forEach((r, i) => {
      if (r.ok) out[i].png = r.file;
      else out[i].message = r.message;
    });
    return out;
  } finally {
    fs.rmSync(sheet, { force: true });
  }
}

/** One figure: writeFiguresFiles for a list of one. */
export async function writeFigureFiles(fig: Figure, title: string, dir: string, name: string, o: FigureFileOptions = {}): Promise<FigureFiles> {
  return (await writeFiguresFiles([{ name, title, figure: fig }], dir, o))[0];
}
