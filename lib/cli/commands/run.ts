/**
 * `lvdm run EXP.yaml`: plans an experiment file (stages + sweep -> tasks with content keys) and
 * runs what is not finished, locally on worker processes or through a job queue (`--queue`);
 * writes the report at the end. `--list` / `--dry-run` print the plan with each task's state.
 */
import * as path from 'node:path';
import { Command } from '../types';
import { flag, int, list, str } from '../args';
import { initBackend } from '../../backend';
import { Plan, SweepValues, TaskSpec } from '../../experiments/types';
import { planExperiment, taskState, selectTasks, writePlan } from '../../experiments/plan';
import { defaultWorkers, formatSummary, runLocal } from '../../experiments/local';
import { isShipped, reuseShipped } from '../../experiments/shipped';
import { SHIPPED_OPTIONS, modelsOption } from './common';
import { writeRunReport } from './report';

/** done / stale / todo, or 'shipped' for an unfinished training task the shipped models hold. */
function shownState(plan: Plan, t: TaskSpec, models: string | null): string {
  const s = taskState(plan, t);
  return s !== 'done' && isShipped(models, t) ? 'shipped' : s;
}

function listing(plan: Plan, only: string[], models: string | null): string {
  const chosen = new Set(selectTasks(plan, only).map((t) => t.id));
  const state = (t: TaskSpec): string => (chosen.has(t.id) ? shownState(plan, t, models) : `${shownState(plan, t, models)} (not selected)`);
  const out = [`${plan.name} (${path.relative(process.cwd(), plan.file)}) -> ${plan.runDir}`, 'stages:'];
  const stages = plan.tasks.filter((t) => t.kind !== 'sample' && t.kind !== 'evaluate');
  const w = Math.max(...stages.map((t) => t.id.length));
  for (const t of stages) out.push(`  ${t.id.padEnd(w)}  ${t.kind.padEnd(13)}  ${state(t).padEnd(7)}  ${t.outDir}`);
  const samples = plan.tasks.filter((t) => t.kind === 'sample');
  if (samples.length) {
    out.push(`sweep points (${samples.length}):`);
    const cols: (keyof SweepValues)[] = ['mode', 's', 'w', 'frames', 'steps', ...(samples.some((t) => t.point!.eta !== undefined) ? (['eta'] as const) : []), 'seed'];
    const rows = samples.map((t) => {
      const ev = plan.tasks.find((e) => e.kind === 'evaluate' && e.id === `evaluate/${t.id.slice('sample/'.length)}`)!;
      return [...cols.map((c) => String(t.point![c] ?? '-')), state(t), state(ev)];
    });
    const head = [...cols, 'sample', 'evaluate'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    out.push(`  ${head.map((h, i) => h.padEnd(widths[i])).join('  ')}`);
    for (const r of rows) out.push(`  ${r.map((c, i) => c.padEnd(widths[i])).join('  ')}`);
  }
  const counts: Record<string, number> = { done: 0, stale: 0, todo: 0, shipped: 0 };
  for (const t of plan.tasks) if (chosen.has(t.id)) counts[shownState(plan, t, models)] += 1;
  const shipped = counts.shipped ? `, ${counts.shipped} shipped (copied from ${models}, not trained)` : '';
  out.push(`${counts.done} done, ${counts.stale} stale (to rerun: an input or the config changed), ${counts.todo} to do${shipped}`);
  return out.join('\n');
}

type QueueModule = typeof import('../../queue/submit');

/** The job queue (bullmq) is loaded only when --queue is given. */
function loadQueue(): QueueModule {
  try {
    return require('../../queue/submit') as QueueModule;
  } catch (e) {
    throw new Error(`--queue: the job queue module lib/queue/submit.ts could not be loaded (${(e as Error).message})`);
  }
}

export const command: Command = {
  name: 'run',
  summary: 'run an experiment file: training stages, sweep points in parallel, metrics, results table, plots and report',
  description: `Each task's output is stored under a key of its resolved config and its inputs' keys
(run folder store/<kind>/<key>), so a rerun skips finished tasks and sweep points and a changed
config reruns exactly what depends on it. Finished tasks are always reused; --resume also
continues interrupted tasks (training from its last checkpoint, long-video sampling from its
last finished window), without it they start over.
A training task the shipped models (models/, written by 'lvdm ship') hold under the same key is
copied into the run folder instead of trained; --from-scratch trains it.
See lib/experiments/README.md.

Examples:
  lvdm run experiments/smoke.yaml
  lvdm run experiments/sky-mini.yaml --set data.source=synthetic-sky --workers 2
  lvdm run experiments/long-sky.yaml --list
  lvdm run experiments/long-sky.yaml --only sweep --resume
  lvdm run experiments/shapes.yaml --from-scratch`,
  positionals: true,
  options: {
    resume: { type: 'boolean', help: 'continue interrupted tasks from their checkpoints or latent journals (finished tasks are always reused)' },
    only: { type: 'string', multiple: true, help: "run only these stages (comma list; 'real', 'sample', 'evaluate' or 'sweep' for the sweep); their inputs must be finished" },
    set: { type: 'string', multiple: true, help: 'override a key of the experiment file, e.g. --set stages.ae.autoencoder.train.steps=10 (repeatable)' },
    workers: { type: 'string', help: 'worker processes (default: cores / backend threads per worker)' },
    out: { type: 'string', short: 'o', help: 'run folder (default runs/<experiment name>)' },
    list: { type: 'boolean', help: 'print the stages and sweep points with their state (done / stale / todo) and exit' },
    'dry-run': { type: 'boolean', help: 'like --list, plus what would run; changes nothing' },
    queue: { type: 'string', help: 'submit the tasks to a job queue (redis://HOST:PORT) and follow them instead of running locally' },
    'no-report': { type: 'boolean', help: 'do not write the report at the end' },
    'no-png': { type: 'boolean', help: 'report without PNG figures (skips headless Chromium)' },
    quiet: { type: 'boolean', help: 'no progress bars' },
    ...SHIPPED_OPTIONS,
  },
  async run(values, positionals) {
    const file = positionals[0];
    if (!file || positionals.length > 1) throw new Error('usage: lvdm run EXPERIMENT.yaml [options] (one experiment file)');
    const only = list(values, 'only').flatMap((o) => o.split(',')).filter((o) => o !== '');
    const plan = planExperiment(file, { set: list(values, 'set'), out: str(values, 'out') });
    const models = modelsOption(values);
    if (flag(values, 'list') || flag(values, 'dry-run')) {
      console.log(listing(plan, only, models));
      if (flag(values, 'dry-run')) {
        const todo = selectTasks(plan, only).filter((t) => taskState(plan, t) !== 'done');
        const copy = todo.filter((t) => isShipped(models, t));
        const run = todo.filter((t) => !isShipped(models, t));
        if (copy.length) console.log(`would copy ${copy.length} shipped model(s): ${copy.map((t) => t.id).join(', ')}`);
        console.log(`would run ${run.length} task(s): ${run.map((t) => t.id).join(', ') || 'none'}`);
      }
      return 0;
    }
    const resume = flag(values, 'resume');
    const queue = str(values, 'queue');
    if (queue) {
      if (only.length) throw new Error('--only cannot be combined with --queue');
      writePlan(plan);
      reuseShipped(plan, plan.tasks, models, (m) => console.error(m));
      await loadQueue().submitAndFollow(plan, { url: queue, resume, log: (m: string) => console.error(m) });
    } else {
      const backend = await initBackend({ quiet: true });
      const workers = int(values, 'workers', defaultWorkers(backend.name))!;
      if (workers < 1) throw new Error(`--workers: expected a positive integer, got ${workers}`);
      const r = await runLocal(plan, { workers, only, resume, progress: !flag(values, 'quiet'), models });
      console.log(formatSummary(plan, r));
      if (!r.ok) return 1;
    }
    if (!flag(values, 'no-report')) {
      const report = await writeRunReport(plan, { png: !flag(values, 'no-png') });
      console.log(`report: ${report}`);
    }
    return 0;
  },
};
