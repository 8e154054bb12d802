/**
 * How many clips per metric window (issue 12): the sampling noise of FVD_proxy at n generated
 * clips, measured on sets whose true distance is known. Draws `sets` fresh held-out real sets of n
 * clips (content seeds the run never used) and scores each against the run's reference real clips
 * as the runner does (same window, n_real, features, covariance), and the same sets passed
 * through the run's autoencoder. The spread across sets at a given n is the noise that one
 * sweep point (one seed) carries from its clip count alone; settings whose paired differences
 * are smaller than about twice that spread cannot be separated at that n without more seeds.
 *
 *   node --import tsx experiments/clip-count-noise.ts [--experiment experiments/sky-synthetic-long.yaml]
 *        [--run runs/sky-synthetic-long] [--n 8,16,32] [--sets 8]
 * Needs the run's `real` task finished. Writes <run>/clip-count-noise.json; prints a markdown table.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../lib/backend';
import { writeJsonAtomic } from '../lib/io/atomic';
import { findTask, planExperiment, readPlan, taskDir, taskState } from '../lib/experiments/plan';
import { type MetricSettings, protocolFor, REAL_CLIPS } from '../lib/experiments/execute';
import { openExtractor, writeReconstructed, writeRealClips } from '../lib/experiments/real';
import { AE_WEIGHTS } from '../lib/autoencoder/pipeline';
import type { DataConfig } from '../lib/config/schema';
import { computeMetrics } from '../metrics/evaluate';
import { mean, std } from '../lib/results/stats';

type RealTaskConfig = MetricSettings & { data: DataConfig };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { experiment: { type: 'string' }, run: { type: 'string' }, n: { type: 'string' }, sets: { type: 'string' } },
  });
  const file = values.experiment ?? path.join(__dirname, 'sky-synthetic-long.yaml');
  // A run folder's own plan (with the --set overrides it ran with), else the file's default run folder.
  const plan = values.run ? readPlan(values.run) : planExperiment(file, {});
  const real = findTask(plan, 'real');
  if (taskState(plan, real) !== 'done') throw new Error(`${plan.runDir}: its 'real' task is not finished (lvdm run ${plan.file} --only real)`);
  const ae = findTask(plan, real.deps.find((d) => findTask(plan, d).kind === 'autoencoder')!);
  const c = real.config as unknown as RealTaskConfig;
  const ns = (values.n ?? '8,16,32').split(',').map(Number);
  const sets = Number(values.sets ?? 8);
  if (ns.some((n) => !Number.isInteger(n) || n < 2) || !(sets >= 2)) throw new Error('--n: clip counts >= 2 (comma list); --sets: >= 2');
  await initBackend({ quiet: true });
  const reference = path.join(taskDir(plan, real), REAL_CLIPS);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-clip-noise-'));
  const extractor = openExtractor(c.features);
  const rows: { n: number; real_vs_real: number[]; reconstruction: number[] }[] = [];
  try {
    for (const n of ns) {
      const row = { n, real_vs_real: [] as number[], reconstruction: [] as number[] };
      for (let k = 0; k < sets; k++) {
        const clips = path.join(tmp, `real-${n}-${k}.npz`);
        const rec = path.join(tmp, `rec-${n}-${k}.npz`);
        // Content seeds 1 and 2 are the run's reference and floor sets; 1000 + ... are unused.
        await writeRealClips(c.data, c.seed, clips, n, c.window, 1000 + 100 * n + k);
        await writeReconstructed(path.join(taskDir(plan, ae), AE_WEIGHTS), clips, rec);
        const protocol = protocolFor(c, n);
        for (const [fake, into] of [[clips, row.real_vs_real], [rec, row.reconstruction]] as const) {
          const r = await computeMetrics({ real: reference, fake, covariance: c.covariance, protocol, runs: 1, extractor, cacheDir: null, progress: false, log: () => undefined });
          into.push(Number(r[(r.metric_names as { fvd: string }).fvd]));
        }
      }
      rows.push(row);
      console.error(`n ${n}: real vs real ${mean(row.real_vs_real).toFixed(1)} ± ${std(row.real_vs_real).toFixed(1)}, reconstructions ${mean(row.reconstruction).toFixed(1)} ± ${std(row.reconstruction).toFixed(1)}`);
    }
  } finally {
    extractor.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const out = path.join(plan.runDir, 'clip-count-noise.json');
  writeJsonAtomic(out, { experiment: path.relative(process.cwd(), plan.file), window: c.window, n_real: c.n_real, sets, rows });
  const fmt = (a: number[]): string => `${mean(a).toFixed(0)} ± ${std(a).toFixed(0)} (${Math.min(...a).toFixed(0)}-${Math.max(...a).toFixed(0)})`;
  console.log(`| clips n | real vs real FVD_proxy, mean ± sd over ${sets} sets (range) | reconstructions |`);
  console.log('|---|---|---|');
  for (const r of rows) console.log(`| ${r.n} | ${fmt(r.real_vs_real)} | ${fmt(r.reconstruction)} |`);
  console.log(`\nwritten: ${out}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
