/**
 * `writeReport`: one static HTML page per experiment run (report.html in the run folder) that
 * opens from disk with no server and no network: the experiment and its resolved config, the
 * results table, aggregates over seeds, paired comparisons against the baseline, every plot
 * (plotly inlined once), sample videos per setting side by side, the training curves, the
 * protocol of every metric and the floors. Next to it: results/aggregates/comparisons as CSV,
 * JSON and markdown, and each figure as HTML + PNG under plots/.
 */
import * as path from 'node:path';
import type { ReportInput } from '../experiments/types';
import { writeFileAtomic } from '../io/atomic';
import { plotDiv, plotlyPage } from '../plots/html';
import { baselineText, experimentFigures, type NamedFigure } from '../plots/figures';
import { writeFiguresFiles } from '../plots/files';
import { aggregateSettings, aggregatesTable } from '../results/aggregate';
import { comparisonsTable, pairedComparisons, type PairedResult } from '../results/paired';
import { metricNames } from '../results/settings';
import { escapeHtml, resultsTable, tableHtml, type WrittenTable, writeTable } from '../results/table';
import { configHtml, floorsHtml, protocolsHtml, relUrl, REPORT_CSS, samplesHtml, section, stagesHtml } from './sections';

export interface ReportOptions {
  /** Render each figure's PNG with headless Chromium (default true). */
  png?: boolean;
  /** PNG size (default 900 x 520). */
  pngWidth?: number;
  pngHeight?: number;
  /** Bootstrap resamples and seed of the paired comparisons (default 10000, 0). */
  bootstrapB?: number;
  bootstrapSeed?: number;
  /** Only these figures (names as in experimentFigures, e.g. 'metric-vs-s'); default all. */
  figures?: readonly string[];
}

export interface ReportFigure {
  name: string;
  title: string;
  /** Standalone HTML of the figure. */
  html: string;
  png?: string;
}

export interface ReportOutput {
  /** report.html. */
  html: string;
  /** The headline figure's PNG (the first figure that has one), for READMEs. */
  png?: string;
  tables: { results: WrittenTable; aggregates: WrittenTable; comparisons?: WrittenTable };
  figures: ReportFigure[];
  /** Things left out and why (a PNG without Chromium, a baseline that matched nothing, ...). */
  messages: string[];
}

/** Writes the report and its tables and figures into input.runDir; see the module comment. */
export async function writeReport(input: ReportInput, o: ReportOptions = {}): Promise<ReportOutput> {
  const runDir = path.resolve(input.runDir);
  const messages: string[] = [];
  const points = input.points;
  const names = metricNames(points);

  const table = resultsTable(points);
  const aggs = aggregateSettings(points);
  const aggTable = aggregatesTable(aggs, points);
  let paired: PairedResult | undefined;
  if (input.baseline && points.length > 0) {
    try {
      paired = pairedComparisons(points, input.baseline, { B: o.bootstrapB, seed: o.bootstrapSeed });
      messages.push(...paired.unmatched.map((u) => `paired comparison skipped: ${u}`));
    } catch (e) {
      messages.push((e as Error).message);
    }
  }
  const cmpTable = paired && paired.comparisons.length > 0 ? comparisonsTable(paired, points) : undefined;
  const tables = {
    results: writeTable(table, runDir, 'results'),
    aggregates: writeTable(aggTable, runDir, 'aggregates'),
    comparisons: cmpTable ? writeTable(cmpTable, runDir, 'comparisons') : undefined,
  };

  const named: NamedFigure[] = experimentFigures(aggs, { metricName: names.fvd, floors: input.floors, paired, curves: input.curves }).filter((f) => !o.figures || o.figures.includes(f.name));
  const files = await writeFiguresFiles(named, path.join(runDir, 'plots'), { png: o.png, width: o.pngWidth, height: o.pngHeight });
  const figures: ReportFigure[] = files.map((f, i) => ({ name: f.name, title: named[i].title, html: f.html, png: f.png }));
  for (const f of files) if (f.message) messages.push(f.message);

  const html = reportHtml(input, {
    metric: names.fvd,
    kvd: names.kvd,
    resultsTable: tableHtml(table),
    aggregatesTable: tableHtml(aggTable),
    comparisons: cmpTable ? tableHtml(cmpTable) : undefined,
    paired,
    figures: named,
    figureFiles: figures,
    samples: samplesHtml(runDir, aggs),
    protocols: protocolsHtml(points, aggs),
    settings: aggs.length,
    seeds: new Set(points.map((p) => p.seed)).size,
    messages,
    runDir,
  });
  const file = path.join(runDir, 'report.html');
  writeFileAtomic(file, html);
  return { html: file, png: figures.find((f) => f.png)?.png, tables, figures, messages };
}

interface Parts {
  metric: string;
  kvd: string;
  resultsTable: string;
  aggregatesTable: string;
  comparisons?: string;
  paired?: PairedResult;
  figures: NamedFigure[];
  figureFiles: ReportFigure[];
  samples: string;
  protocols: string;
  settings: number;
  seeds: number;
  messages: string[];
  runDir: string;
}

function rel(runDir: string, file: string): string {
  return relUrl(path.relative(runDir, file));
}

function reportHtml(input: ReportInput, p: Parts): string {
  const results = p.figures.filter((f) => f.name !== 'loss-curves');
  const loss = p.figures.find((f) => f.name === 'loss-curves');
  let n = 0;
  const fig = (f: NamedFigure): string => `<div class="plot">${plotDiv(f.figure, `plot${n++}`)}</div>`;
  const links = (base: string): string => ['csv', 'json', 'md'].map((e) => `<a href="${base}.${e}">${base}.${e}</a>`).join(' · ');
  const figLinks = p.figureFiles.map((f) => `${escapeHtml(f.name)}: <a href="${rel(p.runDir, f.html)}">html</a>${f.png ? ` · <a href="${rel(p.runDir, f.png)}">png</a>` : ''}`).join('<br>');

  const comparisons = p.paired
    ? section(
        'paired',
        `Paired comparisons against the baseline (${baselineText(p.paired.baseline)})`,
        `<p class="note">Each setting minus its baseline counterpart on the same seed (same conditioning frames and noise), averaged over seeds; the interval is a 95% percentile bootstrap over seeds. <code>sd_diff</code> is the spread of the paired differences and <code>sd_seeds</code> the spread of the setting between seeds: pairing removes the seed-to-seed variation that dominates the unpaired numbers. Negative: lower ${escapeHtml(p.metric)} than the baseline.</p>` +
          (p.comparisons ? `<div class="scroll">${p.comparisons}</div>` : '<p class="note">No setting could be paired with the baseline.</p>') +
          `<p class="note">Files: ${p.comparisons ? links('comparisons') : '–'}</p>`,
      )
    : '';

  const body = [
    section(
      'results',
      'Results',
      `<p>${p.settings} settings × ${p.seeds} seeds = ${input.points.length} sweep points. Mean, std (ddof 1) and 95% t-interval over seeds per setting:</p>` +
        `<div class="scroll">${p.aggregatesTable}</div>` +
        `<details><summary>every sweep point (${input.points.length} rows)</summary><div class="scroll">${p.resultsTable}</div></details>` +
        `<p class="note">Files: ${links('results')} · ${links('aggregates')}</p>`,
    ),
    comparisons,
    section('plots', 'Plots', results.length > 0 ? results.map((f) => `<h3>${escapeHtml(f.title)}</h3>${fig(f)}`).join('\n') + `<p class="note">${figLinks}</p>` : '<p class="note">Not enough sweep points to plot.</p>'),
    section('samples', 'Sample videos per setting', p.samples),
    section('training', 'Training curves', loss ? fig(loss) : '<p class="note">No training curves recorded.</p>'),
    section('floors', 'Metric floors', floorsHtml(input.floors, p.metric, p.kvd)),
    section('protocol', 'Metric protocol', p.protocols),
    section('stages', 'Stages', stagesHtml(input.stages)),
    section('config', 'Configuration', configHtml(input)),
    p.messages.length > 0 ? section('notes', 'Notes', `<ul>${p.messages.map((m) => `<li>${escapeHtml(m)}</li>`).join('')}</ul>`) : '',
  ];
  const nav = [['results', 'results'], p.paired ? ['paired', 'paired comparisons'] : null, ['plots', 'plots'], ['samples', 'samples'], ['training', 'training'], ['floors', 'floors'], ['protocol', 'protocol'], ['stages', 'stages'], ['config', 'config']]
    .filter((x): x is string[] => x !== null)
    .map(([id, t]) => `<a href="#${id}">${t}</a>`)
    .join('');
  return plotlyPage(`${input.name} — LVDM.ts experiment report`, REPORT_CSS, [
    `<header><h1>${escapeHtml(input.name)}</h1>`,
    input.description ? `<p>${escapeHtml(input.description)}</p>` : '',
    input.overrides && input.overrides.length > 0
      ? `<p class="overrides">run with <code>${input.overrides.map((o) => `--set ${escapeHtml(o)}`).join(' ')}</code>: the description above is the experiment file's; the tables and plots show the values used.</p>`
      : '',
    `<p>experiment file <code>${escapeHtml(input.file)}</code> · metric ${escapeHtml(p.metric)} · run folder <code>${escapeHtml(p.runDir)}</code></p></header>`,
    `<nav>${nav}</nav>`,
    '<main>',
    ...body,
    '</main>',
  ]);
}
