/**
 * Experiments in notebooks: run a plan's tasks in the kernel process (so the live display shows
 * every training stage's bar and loss curve, and a bar over the tasks), then show what the report
 * shows: the results table, aggregates over seeds, paired comparisons against the baseline, the
 * plotly curves (metric vs s, vs w, per frame window, loss curves) and one sample video per setting.
 * Finished tasks (content-keyed, lib/experiments) are reused, so re-running a notebook only
 * computes what changed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Plan, ReportInput } from '../experiments/types';
import { taskState, writePlan } from '../experiments/plan';
import { runTask } from '../experiments/execute';
import { aggregateSettings, aggregatesTable } from '../results/aggregate';
import { comparisonsTable, pairedComparisons, PairedResult } from '../results/paired';
import { metricNames } from '../results/settings';
import { escapeHtml, resultsTable } from '../results/table';
import { experimentFigures } from '../plots/figures';
import { liveBar, liveTraining } from './progress';
import { showFigure } from './plot';
import { showTable } from './table';
import { showHtml } from './output';
import { gifFileHtml } from './video';
import { DEFAULT_MODELS_DIR, reuseShipped } from '../experiments/shipped';

export interface RunInlineResult {
  ran: string[];
  reused: string[];
  seconds: number;
}

/** Runs every unfinished task of `plan` here, in dependency order, with live progress. */
export async function runPlanInline(plan: Plan, opts: { log?: (m: string) => void; fromScratch?: boolean } = {}): Promise<RunInlineResult> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const t0 = Date.now();
  writePlan(plan);
  // Training stages shipped in models/ (same content key) are copied in instead of trained,
  // unless opts.fromScratch or env LVDM_FROM_SCRATCH=1.
  if (!(opts.fromScratch ?? process.env.LVDM_FROM_SCRATCH === '1')) reuseShipped(plan, plan.tasks, DEFAULT_MODELS_DIR, log);
  const ran: string[] = [];
  const reused: string[] = [];
  const bar = liveBar(`${plan.name}: tasks`, plan.tasks.length);
  const live = liveTraining();
  try {
    for (const [i, task] of plan.tasks.entries()) {
      if (taskState(plan, task) === 'done') {
        reused.push(task.id);
        bar.update(i + 1, `reused ${task.id}`);
        continue;
      }
      await runTask(plan, task, { log, onProgress: (f, label) => bar.update(Math.min(i + f, i + 0.999), label) });
      ran.push(task.id);
      bar.update(i + 1, `done ${task.id}`);
    }
  } finally {
    live.stop();
  }
  bar.done(`${ran.length} ran, ${reused.length} reused`);
  return { ran, reused, seconds: (Date.now() - t0) / 1000 };
}

export interface ShowResultsOptions {
  /** Figures to show, by lib/plots name ('metric-vs-s', 'metric-vs-w', 'metric-by-window', 'paired-differences', 'kvd-vs-s', 'kvd-vs-w', 'loss-curves'); default all. */
  figures?: readonly string[];
  /** Bootstrap resamples of the paired comparisons (default 2000). */
  bootstrapB?: number;
}

/** Shows an experiment's results (see the module comment). */
export function showExperimentResults(input: ReportInput, opts: ShowResultsOptions = {}): void {
  const points = input.points;
  if (points.length === 0) {
    showHtml('<div style="color:#666">No finished sweep points yet.</div>');
    return;
  }
  const names = metricNames(points);
  showTable(resultsTable(points), { caption: `results: ${points.length} sweep point(s), ${names.fvd} / ${names.kvd}` });
  const aggs = aggregateSettings(points);
  showTable(aggregatesTable(aggs, points), { caption: `per setting over seeds (${aggs.length} setting(s))` });
  let paired: PairedResult | undefined;
  if (input.baseline) {
    try {
      paired = pairedComparisons(points, input.baseline, { B: opts.bootstrapB ?? 2000, seed: 0 });
      if (paired.comparisons.length > 0) showTable(comparisonsTable(paired, points), { caption: `paired against the baseline ${JSON.stringify(input.baseline)}` });
    } catch (e) {
      showHtml(`<div style="color:#666">${escapeHtml((e as Error).message)}</div>`);
    }
  }
  if (input.floors) {
    const f = input.floors;
    showTable([{ floor: 'real vs real', [names.fvd]: f.real_vs_real.fvd, [names.kvd]: f.real_vs_real.kvd }, { floor: 'autoencoder reconstruction', [names.fvd]: f.reconstruction.fvd, [names.kvd]: f.reconstruction.kvd }], {
      caption: 'floors (same protocol)',
    });
  }
  const figs = experimentFigures(aggs, { metricName: names.fvd, floors: input.floors, paired, curves: input.curves }).filter((f) => !opts.figures || opts.figures.includes(f.name));
  for (const f of figs) showFigure(f.figure);
  // One sample video per setting (the first seed's first GIF).
  const cells = aggs.flatMap((a) => {
    const rel = a.points.map((p) => p.samples.find((s) => s.endsWith('.gif'))).find((s) => s !== undefined);
    const file = rel === undefined ? '' : path.join(input.runDir, rel);
    return rel !== undefined && fs.existsSync(file) ? [gifFileHtml(file, { caption: a.label })] : [];
  });
  if (cells.length > 0) showHtml(`<div><div style="font-weight:bold;margin:6px 0 2px">sample videos per setting</div>${cells.join('')}</div>`);
}
