/**
 * Standalone HTML for plotly figures that works offline from file://: plotly.min.js
 * (plotly.js-dist-min) is inlined once per page, each figure is a <div> drawn by
 * `Plotly.newPlot(div, data, layout, config)`.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from '../io/atomic';
import { escapeHtml } from '../results/table';
import type { Figure } from './figure';

let plotlySource: string | undefined;

/** The plotly.js bundle (read once per process). */
export function plotlyJs(): string {
  if (plotlySource === undefined) {
    let file: string;
    try {
      file = require.resolve('plotly.js-dist-min');
    } catch {
      throw new Error("plotly.js-dist-min is not installed (run 'npm ci' in the repository root)");
    }
    plotlySource = fs.readFileSync(file, 'utf8');
  }
  return plotlySource;
}

/** Text that is safe inside an inline <script> element. */
export function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** JSON that is safe inside an inline <script> element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export { escapeHtml };

/** The <script> element carrying plotly.js; put it once in a page, before any plotDiv. */
export function plotlyScriptTag(): string {
  return `<script>${scriptSafe(plotlyJs())}</script>`;
}

/** plotly's config object (the part used here). */
export interface PlotConfig {
  displaylogo?: boolean;
  responsive?: boolean;
  /** false: no mode bar (static images); default: on hover. */
  displayModeBar?: boolean;
  staticPlot?: boolean;
}

const PLOT_CONFIG: PlotConfig = { displaylogo: false, responsive: true };

/**
 * A <div> with a figure and the inline script that draws it (needs plotlyScriptTag earlier in
 * the page). `style` sizes the div (default: full width, the figure's layout height or 420 px, so
 * a figure of stacked subplots does not spill out of its div).
 */
export function plotDiv(fig: Figure, id: string, style = `width:100%;height:${fig.layout.height ?? 420}px`, config: PlotConfig = PLOT_CONFIG): string {
  if (!/^[A-Za-z][\w-]*$/.test(id)) throw new Error(`plotDiv: id must be a plain identifier, got '${id}'`);
  return (
    `<div id="${id}" class="lvdm-plot" style="${escapeHtml(style)}"></div>\n` +
    `<script>Plotly.newPlot(${jsonForScript(id)}, ${jsonForScript(fig.data)}, ${jsonForScript(fig.layout)}, ${jsonForScript(config)});</script>`
  );
}

export interface FigurePageOptions {
  /** Fixed size in CSS pixels (both or neither); default: the figure fills the window. */
  width?: number;
  height?: number;
  /** Show plotly's mode bar on hover (default true; false for PNGs). */
  modeBar?: boolean;
}

/** A whole HTML page: plotly inlined once in the head, then `body`. */
export function plotlyPage(title: string, css: string, body: readonly string[]): string {
  return ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">', `<title>${escapeHtml(title)}</title>`, `<style>${css}</style>`, plotlyScriptTag(), '</head><body>', ...body, '</body></html>', ''].join('\n');
}

/** A standalone page with one figure, filling the window or at a fixed size (for the PNG). */
export function figureHtml(fig: Figure, title: string, o: FigurePageOptions = {}): string {
  const fixed = o.width !== undefined && o.height !== undefined;
  const f: Figure = fixed ? { data: fig.data, layout: { ...fig.layout, width: o.width, height: o.height, autosize: false } } : fig;
  const style = fixed ? `width:${o.width}px;height:${o.height}px` : 'width:100vw;height:100vh';
  const config: PlotConfig = o.modeBar === false ? { displaylogo: false, responsive: !fixed, displayModeBar: false } : { displaylogo: false, responsive: !fixed };
  return plotlyPage(title, 'html,body{margin:0;padding:0;background:#fff;overflow:hidden}', [plotDiv(f, 'plot', style, config)]);
}

/** A page with several figures one below the other; plotly is inlined once. */
export function figuresPageHtml(title: string, figs: readonly { title: string; figure: Figure }[]): string {
  return plotlyPage(title, 'body{font-family:"DejaVu Sans",Arial,sans-serif;margin:16px;background:#fff}h2{font-size:15px;margin:18px 0 4px}', [
    `<h1 style="font-size:20px">${escapeHtml(title)}</h1>`,
    ...figs.map((f, i) => `<h2>${escapeHtml(f.title)}</h2>\n${plotDiv(f.figure, `plot${i}`)}`),
  ]);
}

/** Writes figureHtml(fig, title, o) to `file` atomically. */
export function writeFigureHtml(file: string, fig: Figure, title: string, o: FigurePageOptions = {}): void {
  writeFileAtomic(file, figureHtml(fig, title, o));
}

/**
 * A sheet of figures for rendering PNGs in one page load: each figure at a fixed width x height,
 * stacked vertically (figure i at y = i * height), without mode bars.
 */
export function figureSheetHtml(figs: readonly Figure[], width: number, height: number): string {
  const divs = figs.map((f, i) =>
    plotDiv({ data: f.data, layout: { ...f.layout, width, height, autosize: false } }, `sheet${i}`, `position:absolute;left:0;top:${i * height}px;width:${width}px;height:${height}px`, {
      displaylogo: false,
      responsive: false,
      displayModeBar: false,
    }),
  );
  return plotlyPage('figure sheet', 'html,body{margin:0;padding:0;background:#fff}', divs);
}
