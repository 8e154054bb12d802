/** Public API of the report layer: the static HTML experiment report. */
export type { ReportFigure, ReportOptions, ReportOutput } from './report';
export { writeReport } from './report';
export { section, relUrl, floorsHtml, stagesHtml, configHtml, protocolsHtml, samplesHtml, REPORT_CSS } from './sections';
