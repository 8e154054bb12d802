/**
 * Notebook helpers (tslab): display plotly figures, videos and tables as HTML outputs, live
 * training progress, and the profile (LVDM_PROFILE) that sizes each notebook.
 * Notebooks import this as `import * as nb from './lib/notebook'`.
 */
export { showHtml, setOutputSink, outputSink, inTslabKernel, htmlText } from './output';
export type { OutputSink, LiveOutput } from './output';
export { showFigure, figureHtml, showPlotlyBundle, plotlyBundleHtml } from './plot';
export type { FigureHtmlOptions } from './plot';
export { showVideo, showVideoGrid, showGifFiles, videoHtml, videoGridHtml, gifHtml, gifFileHtml } from './video';
export type { VideoHtmlOptions, VideoGridHtmlOptions } from './video';
export { showTable, tableHtml } from './table';
export { markdownTables, readMarkdownTables } from './markdown';
export type { MarkdownTable } from './markdown';
export type { TableOptions } from './table';
export { liveTraining, withLiveTraining, liveBar, curveSvg, barHtml } from './progress';
export type { LiveTraining, LiveTrainingOptions, LiveBar } from './progress';
export { readLossCurve, readLogCurves } from './curves';
export { lossCurvesFigure } from '../plots/figures';
export { baseLayout } from '../plots/figure';
export { profileName, notebookSettings, ucfShippedSettings, shippedLongSettings, PROFILES, NOTEBOOKS } from './profile';
export type { ProfileName, NotebookId, NotebookSettings } from './profile';
export { ensureAutoencoder, sharedAutoencoderDir, contentKey } from './stages';
export { runPlanInline, showExperimentResults } from './experiment';
export type { RunInlineResult, ShowResultsOptions } from './experiment';
