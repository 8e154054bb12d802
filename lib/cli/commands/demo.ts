/**
 * `lvdm demo` (`npm run demo`): experiments/shapes.yaml end to end through the experiment runner
 * (synthetic moving shapes; autoencoder and its noise-tolerant decoder, short-video model,
 * prediction, interpolation and autoregressive models; short clips and hierarchical generation
 * swept over s and w against the autoregressive baseline; FVD_proxy per window and object
 * consistency; results table, plots, report). The trained stages come from the shipped models
 * (models/) unless --from-scratch.
 */
import * as path from 'node:path';
import { Command } from '../types';
import { flag, int, list, str } from '../args';
import { initBackend } from '../../backend';
import { planExperiment } from '../../experiments/plan';
import { collectResults } from '../../experiments/execute';
import { defaultWorkers, formatSummary, runLocal } from '../../experiments/local';
import { resultsTable, tableMarkdown } from '../../results';
import { writeRunReport } from './report';
import { SHIPPED_OPTIONS, modelsOption } from './common';

export const DEMO_EXPERIMENT = path.join(__dirname, '..', '..', '..', 'experiments', 'shapes.yaml');

export const command: Command = {
  name: 'demo',
  summary: 'short clips and a mini ablation of perturbation s and guidance w on synthetic moving shapes, end to end (no flags needed)',
  description: `Runs experiments/shapes.yaml through the experiment runner (as 'lvdm run' does) on synthetic
moving shapes (32x32): the autoencoder, its robust-latent decoder stage (encoder and decoder trained
further against latent noise), the short-video model and the long-video models (v-prediction, MSE)
come from the shipped models (models/, same content keys; --from-scratch trains them here, --models DIR
points elsewhere); then 16-frame clips from the short model (DDIM 100, eta 1), and 128-frame videos generated
hierarchically for s in {0, 100} and w in {0, 0.1} plus the autoregressive baseline, FVD_proxy per
16-frame window, object consistency, polygons (squares and triangles) and regular outlines (clean discs, squares and triangles) of the clips, the results table, the plots and the HTML
report. Finished stages in the run folder (default runs/demo) are reused, so a second demo only
redoes what changed. Prints the report's path and the results table.`,
  options: {
    out: { type: 'string', short: 'o', help: 'run folder', default: 'runs/demo' },
    workers: { type: 'string', help: 'worker processes (default: cores / backend threads per worker)' },
    set: { type: 'string', multiple: true, help: 'override a key of the experiment file, e.g. --set sweep.n=4' },
    quiet: { type: 'boolean', help: 'no progress bars' },
    ...SHIPPED_OPTIONS,
  },
  async run(values) {
    const t0 = Date.now();
    const models = modelsOption(values);
    const plan = planExperiment(DEMO_EXPERIMENT, { set: list(values, 'set'), out: str(values, 'out') ?? 'runs/demo' });
    const backend = await initBackend({ quiet: false });
    const workers = int(values, 'workers', defaultWorkers(backend.name))!;
    console.log(`demo: ${path.relative(process.cwd(), DEMO_EXPERIMENT)} -> ${plan.runDir} (backend ${backend.name}, ${workers} worker(s))`);
    const r = await runLocal(plan, { workers, resume: true, progress: !flag(values, 'quiet'), models });
    console.log(formatSummary(plan, r));
    if (!r.ok) return 1;
    const report = await writeRunReport(plan);
    console.log(`\n${tableMarkdown(resultsTable(collectResults(plan)))}\n`);
    console.log(`demo finished in ${((Date.now() - t0) / 1000).toFixed(0)} s; report: ${report}`);
    return 0;
  },
};
