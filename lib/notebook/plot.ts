/**
 * Plotly figures (lib/plots figure specs) as notebook outputs that render offline, in the notebook
 * server and in exported HTML. The plotly.js bundle is inlined once per kernel session: the first
 * figure's output carries it; later figures wait for `window.Plotly`. `showPlotlyBundle()`
 * re-sends it (e.g. after clearing that first output).
 *
 * The classic notebook page (and nbconvert's HTML) load require.js, and plotly's UMD header would
 * then register an anonymous AMD module instead of `window.Plotly`: the bundle runs inside a
 * function whose `define` / `exports` / `module` parameters are undefined, so it sets the global.
 */
import * as crypto from 'node:crypto';
import type { Figure } from '../plots/figure';
import { jsonForScript, plotlyJs, scriptSafe } from '../plots/html';
import { showHtml } from './output';

let bundleSent = false;

/** The plotly.js bundle as one inline `<script>` that always defines `window.Plotly`. */
export function plotlyBundleHtml(): string {
  return `<script type="text/javascript">(function (define, exports, module) {\n${scriptSafe(plotlyJs())}\n}).call(window);</script>`;
}

export interface FigureHtmlOptions {
  /** CSS height in pixels (default: layout.height or 420). */
  height?: number;
  /** Include the plotly bundle in this output (default: only for the first figure of the session). */
  bundle?: boolean;
}

/** A figure's HTML: a div and a script that draws it as soon as plotly.js is available. */
export function figureHtml(fig: Figure, opts: FigureHtmlOptions = {}): string {
  const id = `lvdm-plot-${crypto.randomBytes(6).toString('hex')}`;
  const height = opts.height ?? fig.layout.height ?? 420;
  const config = { responsive: true, displaylogo: false };
  const script =
    `(function () {` +
    `var id = ${jsonForScript(id)}, data = ${jsonForScript(fig.data)}, layout = ${jsonForScript(fig.layout)}, config = ${jsonForScript(config)}, tries = 0;` +
    `function draw() {` +
    `var el = document.getElementById(id); if (!el) return;` +
    `if (window.Plotly) { window.Plotly.newPlot(el, data, layout, config); return; }` +
    `if (++tries > 200) { el.textContent = 'plotly.js is not loaded: run showPlotlyBundle() and re-run this cell'; return; }` +
    `setTimeout(draw, 50); }` +
    `draw(); })();`;
  return `${opts.bundle ? plotlyBundleHtml() : ''}<div id="${id}" class="lvdm-plot" style="width:100%;max-width:760px;height:${height}px"></div><script type="text/javascript">${script}</script>`;
}

/** Shows a figure (null, as lib/plots returns for missing data: a short note); the first figure of the kernel session carries the plotly bundle. */
export function showFigure(fig: Figure | null, opts: FigureHtmlOptions = {}): void {
  if (fig === null) {
    showHtml('<div style="color:#666">(no data to plot)</div>');
    return;
  }
  const bundle = opts.bundle ?? !bundleSent;
  showHtml(figureHtml(fig, { ...opts, bundle }));
  if (bundle) bundleSent = true;
}

/** Sends the plotly bundle as its own output (figures shown afterwards use it). */
export function showPlotlyBundle(): void {
  showHtml(plotlyBundleHtml());
  bundleSent = true;
}
