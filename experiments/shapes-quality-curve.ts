/**
 * Time to quality of the shapes short-video model (issue 12): every snapshot the `lvdm` stage of
 * experiments/shapes.yaml wrote while training (`train.snapshots: true` -> snapshots/lvdm-<step>),
 * sampled and read against the training time it took to get there:
 *   - object consistency (metrics/object-consistency.ts): the fraction of clips whose object keeps
 *     its shape and velocity, a reading a person can check on the GIFs;
 *   - polygons: the fraction of clips that are consistent and whose object reads as a square or
 *     a triangle (metrics/shape-kind.ts), the reading for "recognisable shapes" (real clips: about
 *     half; a model that draws only discs: 0);
 *   - regular: the fraction of clips that are consistent and whose object's outline is regular (a
 *     disc, square or triangle rather than a lumpy blob: shape-kind.ts isRegularOutline; real clips
 *     about 0.9; absent from curves written before it);
 *   - FVD_proxy against the run's held-out real clips (the runner's `real` task), next to the
 *     real-vs-real and autoencoder-reconstruction floors.
 * Clips are decoded by the experiment's sweep decoder (`sweep.decoder`, e.g. a 'decoder' stage that
 * fine-tuned the autoencoder's decoder on noised latents), else by the autoencoder.
 * Training time = the short model's wall time at that step (from its metrics.jsonl), and "from
 * scratch": that plus the autoencoder's and the decoder stage's wall times.
 *
 *   node --import tsx experiments/shapes-quality-curve.ts [--experiment experiments/shapes.yaml] [--run runs/shapes] [--set key=value ...] [--n 32] [--steps 25] [--eta 0] [--seed 1] [--plot-only]
 *     [--label LEGEND] [--compare RUN=LABEL ...] [--budget MINUTES] [--every STEPS]
 * (--set: the run's overrides, as given to `lvdm run`, so the stages plan to the run's keys.
 * --compare draws other runs' curves (their quality-curve/results.json) in the same figures, with
 * this run's floors; --budget marks a time budget with a vertical line; --every samples only the
 * snapshots whose step is a multiple of STEPS, for a coarser curve in less time; none is an error.)
 * Needs the run's ae, lvdm and real tasks finished (`lvdm run experiments/shapes.yaml --only ae,lvdm,real`).
 * Writes <run>/quality-curve/{results.json, <reading>.html/.png, step-<k>/}; prints a markdown table.
 * --plot-only redraws the figures and the table from an earlier results.json, sampling nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../lib/backend';
import { writeFileAtomic, writeJsonAtomic } from '../lib/io/atomic';
import { writeNpz } from '../lib/io/npy';
import { loadAutoencoder } from '../lib/autoencoder/io';
import { loadLvdm } from '../lib/lvdm/weights';
import { SNAPSHOT_DIR } from '../lib/lvdm/pipeline';
import { heldOutConditioning } from '../lib/lvdm/captions';
import { generateVideos, writeSampleOutputs } from '../lib/lvdm/generate';
import { planExperiment, findTask, taskDir, readDone } from '../lib/experiments/plan';
import { protocolFor, REAL_CLIPS, VIDEOS_FILE } from '../lib/experiments/execute';
import { openExtractor } from '../lib/experiments/real';
import { computeMetrics } from '../metrics/evaluate';
import { consistencyReadings } from '../metrics/object-consistency-io';
import { Figure, baseLayout, color } from '../lib/plots/figure';
import { figureHtml } from '../lib/plots/html';
import { renderPng } from '../lib/plots/chromium';

const EXPERIMENT = path.join(__dirname, 'shapes.yaml');

interface CurvePoint {
  step: number;
  /** The short model's training time at this step. */
  short_minutes: number;
  /** From scratch: the autoencoder, the decoder stage (if any) and the short model. */
  train_minutes: number;
  consistency: number;
  /** Without the edge-sharpness test (object found, constant area and velocity). */
  motion_consistency: number;
  /** Consistent clips whose object reads as a square or triangle (metrics/shape-kind.ts). */
  polygons: number;
  /** Consistent clips whose object's outline is regular (metrics/shape-kind.ts; absent from curves written before it). */
  regular?: number;
  fvd_proxy: number;
  kvd_proxy: number;
  sample_seconds: number;
}

interface CurveResult {
  experiment: string;
  n: number;
  ddim_steps: number;
  eta: number;
  seed: number;
  autoencoder_minutes: number;
  decoder: string;
  floors: Record<'fvd_proxy_real_vs_real' | 'fvd_proxy_reconstruction' | 'consistency_real' | 'consistency_reconstruction' | 'motion_consistency_real' | 'motion_consistency_reconstruction' | 'polygons_real' | 'polygons_reconstruction', number> &
    Partial<Record<'regular_real' | 'regular_reconstruction', number>>;
  points: CurvePoint[];
}

/** Wall seconds of the short model's training at `step` (metrics.jsonl's last line at or before it). */
function wallAt(metricsFile: string, step: number): number {
  let wall = 0;
  for (const line of fs.readFileSync(metricsFile, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const r = JSON.parse(line) as { step?: number; wall_s?: number };
    if (r.step !== undefined && r.step <= step && r.wall_s !== undefined) wall = r.wall_s;
  }
  return wall;
}

/** The figures' size, for the page and its PNG alike (room for a legend below the plot). */
const PNG_SIZE = { width: 900, height: 540 };

type CurveKey = 'consistency' | 'motion_consistency' | 'polygons' | 'regular' | 'fvd_proxy';

/** One curve of a figure: a run's snapshots under a legend label. */
interface Series {
  label: string;
  points: readonly CurvePoint[];
}

function curveFigure(series: readonly Series[], key: CurveKey, floors: { label: string; value: number }[], budgetMinutes: number | null): Figure {
  const title = { consistency: 'Object consistency', motion_consistency: 'Motion consistency (no edge test)', polygons: 'Polygons (consistent squares and triangles)', regular: 'Regular outlines (consistent clean discs, squares and triangles)', fvd_proxy: 'FVD_proxy' }[key] + ' of generated clips vs training time';
  const fig: Figure = {
    data: series.map((s, i) => ({ type: 'scatter', mode: 'lines+markers', name: s.label, x: s.points.map((p) => p.train_minutes), y: s.points.map((p) => p[key] ?? null), line: { color: color(i) } })),
    layout: baseLayout(title, 'training time from scratch (minutes, autoencoder included)', key === 'fvd_proxy' ? 'FVD_proxy (lower is better)' : key === 'polygons' || key === 'regular' ? 'fraction of clips' : 'fraction of consistent clips'),
  };
  const x = series.flatMap((s) => s.points.map((p) => p.train_minutes));
  const [x0, x1] = [Math.min(...x), Math.max(...x)];
  // Floors of the first series' run (a compared run on other latents has its own reconstruction floor).
  floors.forEach((f, i) => fig.data.push({ type: 'scatter', mode: 'lines', name: f.label, x: [x0, x1], y: [f.value, f.value], line: { color: color(series.length + i), dash: 'dash' } }));
  if (budgetMinutes !== null) {
    const y = series.flatMap((s) => s.points.map((p) => p[key] ?? NaN)).filter(Number.isFinite).concat(floors.map((f) => f.value));
    fig.data.push({ type: 'scatter', mode: 'lines', name: `${budgetMinutes}-minute budget`, x: [budgetMinutes, budgetMinutes], y: [Math.min(...y), Math.max(...y)], line: { color: 'black', dash: 'dot' } });
  }
  if (key === 'fvd_proxy') fig.layout.yaxis.type = 'log';
  if (series.length > 1) {
    // Long labels: below the plot, with a bottom margin that holds two rows of them (the automatic
    // margin cut the second row off under a log axis).
    fig.layout.legend = { orientation: 'h', x: 0, y: -0.25, yanchor: 'top' };
    fig.layout.margin = { ...fig.layout.margin, b: 150 };
  }
  return fig;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      experiment: { type: 'string', default: EXPERIMENT },
      run: { type: 'string', default: 'runs/shapes' },
      n: { type: 'string', default: '32' },
      steps: { type: 'string', default: '25' },
      eta: { type: 'string', default: '0' },
      'plot-only': { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      batch: { type: 'string', default: '16' },
      set: { type: 'string', multiple: true, default: [] },
      label: { type: 'string' },
      compare: { type: 'string', multiple: true, default: [] },
      budget: { type: 'string' },
      every: { type: 'string' },
    },
  });
  const label = values.label ?? `${path.basename(values.experiment!, '.yaml')} (short model snapshots)`;
  const compare = values.compare!.map(parseCompare);
  const budget = values.budget === undefined ? null : Number(values.budget);
  if (budget !== null && !(budget > 0)) throw new Error(`--budget: expected minutes > 0, got '${values.budget}'`);
  const figureOptions = { label, compare, budget };
  if (values['plot-only'] && values.every !== undefined) throw new Error('--every: --plot-only samples nothing, so it has no snapshots to choose; drop one of them');
  const every = Number(values.every ?? '1');
  if (!(Number.isInteger(every) && every > 0)) throw new Error(`--every: expected a whole number of steps > 0, got '${values.every}'`);
  const n = Number(values.n);
  const experiment = values.experiment!;
  const plan = planExperiment(experiment, { out: values.run, set: values.set });
  if (values['plot-only']) {
    const file = path.join(plan.runDir, 'quality-curve', 'results.json');
    await writeOutputs(path.dirname(file), readCurve(file, '--plot-only: ', 'run the curve without --plot-only first'), figureOptions);
    return;
  }
  await initBackend({ quiet: false });
  const dirOf = (stage: string): string => {
    const dir = taskDir(plan, findTask(plan, stage));
    if (!readDone(dir)) throw new Error(`${dir}: stage '${stage}' is not finished (lvdm run ${path.relative(process.cwd(), experiment)} --out ${values.run}${values.set!.map((x) => ` --set ${x}`).join('')} --only ${stage})`);
    return dir;
  };
  const aeDir = dirOf('ae');
  const decoderStage = (plan.resolved.sweep as { decoder?: string } | undefined)?.decoder;
  const decDir = decoderStage ? dirOf(decoderStage) : aeDir;
  const lvdmDir = dirOf('lvdm');
  const realDir = dirOf('real');
  const aeMinutes = ((readDone(aeDir)?.wall_s ?? 0) + (decDir !== aeDir ? (readDone(decDir)?.wall_s ?? 0) : 0)) / 60; // 'sweep.decoder: ae' is the autoencoder itself
  const all = fs
    .readdirSync(path.join(lvdmDir, SNAPSHOT_DIR))
    .map((f) => ({ f, step: Number(/^lvdm-(\d+)\.safetensors$/.exec(f)?.[1]) }))
    .filter((s) => Number.isFinite(s.step))
    .sort((a, b) => a.step - b.step);
  const snapshots = all.filter((s) => s.step % every === 0);
  if (snapshots.length === 0)
    throw new Error(`--every ${every}: no snapshot in ${path.join(lvdmDir, SNAPSHOT_DIR)} is at a multiple of it (steps ${all.map((s) => s.step).join(', ') || 'none'})`);
  const out = path.join(plan.runDir, 'quality-curve');
  fs.mkdirSync(out, { recursive: true });
  const floors = JSON.parse(fs.readFileSync(path.join(realDir, 'floors.json'), 'utf8')) as { real_vs_real: { fvd: number }; reconstruction: { fvd: number } };
  const real = await consistencyReadings(path.join(realDir, REAL_CLIPS));
  const recon = await consistencyReadings(path.join(realDir, 'floor-reconstructed.npz'));
  const [realConsistency, realMotion, reconConsistency, reconMotion] = [real.object, real.motion, recon.object, recon.motion];
  const extractor = openExtractor({ name: 'synthetic-motion', i3d: null });
  const ae = loadAutoencoder(path.join(decDir, 'autoencoder.safetensors'));
  const points: CurvePoint[] = [];
  try {
    for (const s of snapshots) {
      const model = loadLvdm(path.join(lvdmDir, SNAPSHOT_DIR, s.f));
      const asked = await heldOutConditioning(model, n); // conditional snapshots: the held-out clips' captions or labels, unguided
      const gen = await generateVideos(model, ae.ae, { n, batchSize: Number(values.batch), sampler: 'ddim', steps: Number(values.steps), eta: Number(values.eta), seed: Number(values.seed), ...asked });
      model.dispose();
      const { frames: t, height: h, width: w } = gen;
      const all = new Uint8Array(n * t * h * w * 3);
      gen.videos.forEach((v, i) => all.set(v, i * v.length));
      const dir = path.join(out, `step-${s.step}`);
      fs.mkdirSync(dir, { recursive: true });
      writeNpz(path.join(dir, VIDEOS_FILE), { videos: { shape: [n, t, h, w, 3], data: all } });
      await writeSampleOutputs(dir, { ...gen, videos: gen.videos.slice(0, 4) }, { fps: 8, mp4: false, gif: true });
      const m = await computeMetrics({
        real: path.join(realDir, REAL_CLIPS),
        fake: path.join(dir, VIDEOS_FILE),
        covariance: 'unbiased',
        protocol: protocolFor({ window: t, n_real: 64, seed: 0 }, n),
        runs: 1,
        extractor,
        cacheDir: null,
        progress: false,
        log: () => undefined,
      });
      const names = m.metric_names as { fvd: string; kvd: string };
      const readings = await consistencyReadings(path.join(dir, VIDEOS_FILE));
      const p: CurvePoint = {
        step: s.step,
        short_minutes: wallAt(path.join(lvdmDir, 'metrics.jsonl'), s.step) / 60,
        train_minutes: aeMinutes + wallAt(path.join(lvdmDir, 'metrics.jsonl'), s.step) / 60,
        consistency: readings.object,
        motion_consistency: readings.motion,
        polygons: readings.polygons,
        regular: readings.regular,
        fvd_proxy: Number(m[names.fvd]),
        kvd_proxy: Number(m[names.kvd]),
        sample_seconds: gen.sampleSeconds + gen.decodeSeconds,
      };
      points.push(p);
      process.stderr.write(`[curve] step ${p.step}: ${p.train_minutes.toFixed(1)} min, consistency ${p.consistency.toFixed(3)}, polygons ${p.polygons.toFixed(3)}, regular ${p.regular!.toFixed(3)}, fvd_proxy ${p.fvd_proxy.toFixed(1)}\n`);
    }
  } finally {
    extractor.dispose();
    ae.dispose();
  }
  const result: CurveResult = {
    experiment: path.relative(path.join(__dirname, '..'), path.resolve(experiment)),
    n,
    ddim_steps: Number(values.steps),
    eta: Number(values.eta),
    seed: Number(values.seed),
    autoencoder_minutes: aeMinutes,
    decoder: decoderStage ?? 'ae',
    floors: { fvd_proxy_real_vs_real: floors.real_vs_real.fvd, fvd_proxy_reconstruction: floors.reconstruction.fvd, consistency_real: realConsistency, consistency_reconstruction: reconConsistency, motion_consistency_real: realMotion, motion_consistency_reconstruction: reconMotion, polygons_real: real.polygons, polygons_reconstruction: recon.polygons, regular_real: real.regular, regular_reconstruction: recon.regular },
    points,
  };
  writeJsonAtomic(path.join(out, 'results.json'), result);
  await writeOutputs(out, result, figureOptions);
}

function readCurve(file: string, context = '', hint = 'run the curve on that run folder first'): CurveResult {
  if (!fs.existsSync(file)) throw new Error(`${context}${file} does not exist (${hint})`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CurveResult;
}

/** `--compare RUN=LABEL`: another run's curve (RUN/quality-curve/results.json) drawn beside this one. */
function parseCompare(arg: string): Series {
  const eq = arg.indexOf('=');
  if (eq <= 0 || eq === arg.length - 1) throw new Error(`--compare: expected RUN_FOLDER=LABEL, got '${arg}'`);
  return { label: arg.slice(eq + 1), points: readCurve(path.join(arg.slice(0, eq), 'quality-curve', 'results.json')).points };
}

/** A fraction to 3 decimals, or empty where a curve written before the reading lacks it. */
function fix3(v: number | undefined): string {
  return v === undefined ? '' : v.toFixed(3);
}

/** The figures (HTML and PNG per reading, with their floors) and the markdown table of a curve. */
async function writeOutputs(out: string, r: CurveResult, opts: { label: string; compare: Series[]; budget: number | null }): Promise<void> {
  const f = r.floors;
  const floorLines = (realValue: number, reconValue: number, realLabel = 'real clips') => [{ label: realLabel, value: realValue }, { label: 'autoencoder reconstructions', value: reconValue }];
  const figures: [CurveKey, { label: string; value: number }[]][] = [
    ['consistency', floorLines(f.consistency_real, f.consistency_reconstruction)],
    ['motion_consistency', floorLines(f.motion_consistency_real, f.motion_consistency_reconstruction)],
    ['polygons', floorLines(f.polygons_real, f.polygons_reconstruction)],
    ...(f.regular_real !== undefined ? [['regular', floorLines(f.regular_real, f.regular_reconstruction ?? NaN)] as [CurveKey, { label: string; value: number }[]]] : []),
    ['fvd_proxy', floorLines(f.fvd_proxy_real_vs_real, f.fvd_proxy_reconstruction, 'real vs real')],
  ];
  for (const [key, fl] of figures) {
    const html = path.join(out, `${key}.html`);
    writeFileAtomic(html, figureHtml(curveFigure([{ label: opts.label, points: r.points }, ...opts.compare], key, fl, opts.budget), `shapes: ${key} vs training time`, { ...PNG_SIZE, modeBar: false }));
    const png = await renderPng(html, path.join(out, `${key}.png`), PNG_SIZE);
    if (!png.ok) process.stderr.write(`[curve] no PNG: ${png.message}\n`);
  }
  console.log(`| step | short model (min) | from scratch (min) | object consistency | motion consistency | polygons | regular outlines | FVD_proxy | KVD_proxy |`);
  console.log(`|---|---|---|---|---|---|---|---|---|`);
  console.log(`| real clips | | | ${f.consistency_real.toFixed(3)} | ${f.motion_consistency_real.toFixed(3)} | ${f.polygons_real.toFixed(3)} | ${fix3(f.regular_real)} | ${f.fvd_proxy_real_vs_real.toFixed(1)} (real vs real) | |`);
  console.log(`| autoencoder reconstructions | | | ${f.consistency_reconstruction.toFixed(3)} | ${f.motion_consistency_reconstruction.toFixed(3)} | ${f.polygons_reconstruction.toFixed(3)} | ${fix3(f.regular_reconstruction)} | ${f.fvd_proxy_reconstruction.toFixed(1)} | |`);
  for (const p of r.points) console.log(`| ${p.step} | ${p.short_minutes.toFixed(1)} | ${p.train_minutes.toFixed(1)} | ${p.consistency.toFixed(3)} | ${p.motion_consistency.toFixed(3)} | ${p.polygons.toFixed(3)} | ${fix3(p.regular)} | ${p.fvd_proxy.toFixed(1)} | ${p.kvd_proxy.toFixed(1)} |`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
