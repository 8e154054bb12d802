/** Public API of the plots layer: typed plotly figure specs, offline HTML, PNG and browser checks. */
export type { Axis, ErrorBar, Figure, Layout, Line, ScatterTrace, Trace } from './figure';
export { PALETTE, color, withAlpha, baseLayout } from './figure';
export type { MetricFigureOptions, NamedFigure, Quantity } from './figures';
export { metricVsField, metricByWindow, pairedDifferences, lossCurvesFigure, floorTraces, baselineText, experimentFigures } from './figures';
export type { FigurePageOptions, PlotConfig } from './html';
export { plotlyJs, plotlyScriptTag, plotlyPage, plotDiv, figureHtml, figuresPageHtml, figureSheetHtml, writeFigureHtml, jsonForScript, scriptSafe, escapeHtml } from './html';
export type { CheckOptions, ImageState, PageCheck, PlotState, PngOptions, PngResult, VideoState } from './chromium';
export { findChromium, renderPng, renderPngs, renderPageClips, checkPageInBrowser, withBrowser, BrowserSession, BrowserPage, CHROMIUM_INSTALL_HINT } from './chromium';
export type { FigureFileOptions, FigureFiles } from './files';
export { writeFigureFiles, writeFiguresFiles } from './files';
