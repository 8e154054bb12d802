/** `lvdm report RUN_DIR`: the HTML report (table, plots, samples, curves, protocols) of a run folder. */
import * as path from 'node:path';
import { Command } from '../types';
import { Plan } from '../../experiments/types';
import { readPlan } from '../../experiments/plan';
import { reportInputFor } from '../../experiments/execute';
import { writeReport } from '../../report';

/** Writes the run's report (report.html, results/aggregates tables, plots); returns report.html's path. */
export async function writeRunReport(plan: Plan, opts: { png?: boolean; log?: (m: string) => void } = {}): Promise<string> {
  const out = await writeReport(reportInputFor(plan), { png: opts.png });
  const log = opts.log ?? ((m: string) => console.error(m));
  for (const m of out.messages) log(`report: ${m}`);
  log(`results table: ${out.tables.results.csv} (.json, .md); plots: ${path.join(plan.runDir, 'plots')}`);
  return out.html;
}

export const command: Command = {
  name: 'report',
  summary: 'build the HTML report of a run folder (results table, plots, sample videos, training curves)',
  description: `RUN_DIR is a folder written by 'lvdm run' (it holds plan.json). The report is also written
at the end of every run. It opens from disk in a browser, with no server and no network.

Example:
  lvdm report runs/smoke`,
  positionals: true,
  options: {
    'no-png': { type: 'boolean', help: 'no PNG figures (skips headless Chromium)' },
  },
  async run(values, positionals) {
    const dir = positionals[0];
    if (!dir || positionals.length > 1) throw new Error('usage: lvdm report RUN_DIR');
    const report = await writeRunReport(readPlan(path.resolve(dir)), { png: values['no-png'] !== true });
    console.log(`report: ${report}`);
    return 0;
  },
};
