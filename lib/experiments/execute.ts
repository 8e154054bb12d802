/**
 * Running one task of a plan, and reading a run folder's results back. A task writes into
 * `<outDir>.partial`, ends with a DONE marker (its id and key) and is renamed to `<outDir>`, so a
 * folder without `.partial` is always complete. Training tasks keep their checkpoint in the
 * `.partial` folder: a task killed at any moment (SIGKILL included) continues from it and ends with
 * the parameters of an uninterrupted run (lib/train/loop.ts). Long-video sampling tasks keep their
 * latent journal there (lib/hierarchical/journal.ts) and continue from their last finished window
 * to the videos of an uninterrupted run. The stage code is the existing one:
 * trainAutoencoder, trainLvdm, trainLongModel, sampleLong / generateVideos, computeMetrics.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { heldOutConditioning } from '../lvdm/captions';
import { DataConfig, DecoderFinetuneConfig, ExperimentConfig } from '../config/schema';
import { readJsonl, writeJsonAtomic } from '../io/atomic';
import { backendName, withPrecision, type Precision } from '../backend';
import { readNpz, writeNpz } from '../io/npy';
import { writeGif } from '../io/image';
import { LAST_CHECKPOINT, METRICS_LOG } from '../train/loop';
import { addProgressListener } from '../train/progress';
import { AE_WEIGHTS, trainAutoencoder } from '../autoencoder/pipeline';
import { displayScale, upscaleNearest } from '../autoencoder/outputs';
import { loadAutoencoder } from '../autoencoder/io';
import { finetuneDecoder } from '../autoencoder/noise-finetune';
import { LVDM_WEIGHTS, loadLvdm, type LoadedLvdm } from '../lvdm/weights';
import { latentCacheFile, trainLvdm } from '../lvdm/pipeline';
import type { InitSpec } from '../lvdm/init';
import { generateVideos, writeSampleOutputs } from '../lvdm/generate';
import { trainLongModel } from '../hierarchical/train';
import { JOURNAL_DIR, sampleLong } from '../hierarchical/pipeline';
import { hasJournal } from '../hierarchical/journal';
import { prepareShards } from '../../data/shards';
import { isShapesFamily, syntheticFamilyFromSource } from '../../data/synthetic';
import type { DatasetKind } from '../../data/layouts';
import { computeMetrics } from '../../metrics/evaluate';
import { consistencyReadings } from '../../metrics/object-consistency-io';
import { FeatureChoice, openExtractor, writeRealClips, writeReconstructed } from './real';
import { DONE_FILE, DoneMarker, findTask, readDone, taskDir, taskInputs, taskState } from './plan';
import { LossCurve, MetricFloors, Plan, PointResult, ReportInput, SweepValues, TaskKind, TaskSpec } from './types';

export interface RunTaskOptions {
  log?: (msg: string) => void;
  /** Fraction done in [0, 1] and what is running. */
  onProgress?: (fraction: number, label: string) => void;
  /** Continue an interrupted task from its `.partial` folder (training: its checkpoint). Default true; false starts it over. */
  resume?: boolean;
}

const TRAINING: readonly TaskKind[] = ['autoencoder', 'decoder', 'short', 'prediction', 'interpolation'];

export const REAL_CLIPS = 'real.npz';
export const FLOORS_FILE = 'floors.json';
export const VIDEOS_FILE = 'videos.npz';
export const SAMPLE_FILE = 'sample.json';
export const RESULT_FILE = 'result.json';

/** The temp folder a task writes into before it is renamed to its outDir. */
export function partialDir(plan: Plan, task: TaskSpec): string {
  return `${taskDir(plan, task)}.partial`;
}

/** A finished input's folder. */
function inputDir(plan: Plan, task: TaskSpec, role: string): string {
  const dep = taskInputs(plan, task)[role];
  if (!dep) throw new Error(`${task.id}: no '${role}' input`);
  return taskDir(plan, dep);
}

/** Object consistency (metrics/object-consistency.ts) is defined for the synthetic shapes families. */
function hasObjectConsistency(source: string): boolean {
  const family = syntheticFamilyFromSource(source);
  return family !== null && isShapesFamily(family);
}

/** The data a stage reads: its config's data, or the train / test shards of its 'prepare' input. */
function stageData(plan: Plan, task: TaskSpec, data: DataConfig, split: 'train' | 'test'): DataConfig {
  if (!taskInputs(plan, task).shards) return data;
  return { ...data, source: 'shards', root: path.join(inputDir(plan, task, 'shards'), split) };
}

/** Runs one task (no-op when done). Its inputs must be done. */
export async function runTask(plan: Plan, task: TaskSpec, opts: RunTaskOptions = {}): Promise<void> {
  if (taskState(plan, task) === 'done') return;
  for (const d of task.deps) if (taskState(plan, findTask(plan, d)) !== 'done') throw new Error(`${task.id}: its input '${d}' is not finished`);
  const log = opts.log ?? ((m: string) => process.stderr.write(`[lvdm] ${m}\n`));
  const progress = opts.onProgress ?? (() => undefined);
  const final = taskDir(plan, task);
  const tmp = partialDir(plan, task);
  const continuing = opts.resume !== false && (task.kind === 'prepare' || fs.existsSync(path.join(tmp, LAST_CHECKPOINT)) || hasJournal(path.join(tmp, JOURNAL_DIR)));
  if (!continuing) fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const t0 = Date.now();
  const stopListening = addProgressListener((e) => progress(e.step / Math.max(1, e.total), `${task.id} step ${e.step}/${e.total}`));
  try {
    progress(0, task.id);
    switch (task.kind) {
      case 'prepare':
        await runPrepare(task, tmp, progress);
        break;
      case 'autoencoder':
      case 'decoder':
      case 'short':
      case 'prediction':
      case 'interpolation':
        await trainStage(plan, task, tmp, continuing, log);
        break;
      case 'real':
        await runReal(plan, task, tmp, log);
        break;
      case 'sample':
        await runSample(plan, task, tmp, progress, log);
        break;
      case 'evaluate':
        await runEvaluate(plan, task, tmp, t0, log);
        break;
      default:
        throw new Error(`${task.id}: unknown task kind '${String(task.kind)}'`);
    }
  } finally {
    stopListening();
  }
  const marker: DoneMarker = { id: task.id, key: task.key, kind: task.kind, wall_s: (Date.now() - t0) / 1000, finished: new Date().toISOString(), backend: backendName() || undefined };
  writeJsonAtomic(path.join(tmp, DONE_FILE), marker);
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  progress(1, task.id);
}

async function runPrepare(task: TaskSpec, out: string, progress: (f: number, l: string) => void): Promise<void> {
  const c = task.config as { data: DataConfig; shard_mb: number; jobs: number };
  const splits = ['train', 'test'] as const;
  for (const [i, split] of splits.entries()) {
    await prepareShards({
      dataset: c.data.source as DatasetKind,
      root: c.data.root!,
      split,
      fold: c.data.fold,
      out: path.join(out, split),
      height: c.data.size,
      width: c.data.size,
      frames: c.data.frames,
      stride: c.data.frame_stride,
      shardMB: c.shard_mb,
      jobs: c.jobs,
      progress: (p) => progress((i + p.done / Math.max(1, p.total)) / splits.length, `${task.id} ${split} ${p.done}/${p.total} videos`),
    });
  }
}

/** The ExperimentConfig a training task runs with (its data possibly replaced by its shards). */
function trainingConfig(plan: Plan, task: TaskSpec): ExperimentConfig {
  const exp = task.config.experiment as ExperimentConfig;
  return { ...exp, data: stageData(plan, task, exp.data, 'train') };
}

function latentCacheDir(plan: Plan): string {
  return path.join(plan.runDir, 'cache', 'latents');
}

/**
 * The latent cache a latent-model training task reads (null for other tasks): models on the same
 * autoencoder and data share one, so the scheduler lets one of them build it first.
 */
export function latentCacheOf(plan: Plan, task: TaskSpec): string | null {
  if (task.kind !== 'short' && task.kind !== 'prediction' && task.kind !== 'interpolation') return null;
  return latentCacheFile(trainingConfig(plan, task), path.join(inputDir(plan, task, 'autoencoder'), AE_WEIGHTS), latentCacheDir(plan)).file;
}

/** A short stage's `init` with the weights its init stage wrote (undefined without one). */
function initOf(plan: Plan, task: TaskSpec): InitSpec | undefined {
  const init = task.config.init as Omit<InitSpec, 'weights'> | undefined;
  return init ? { ...init, weights: path.join(inputDir(plan, task, 'init'), LVDM_WEIGHTS) } : undefined;
}

async function trainStage(plan: Plan, task: TaskSpec, out: string, resume: boolean, log: (m: string) => void): Promise<void> {
  const config = trainingConfig(plan, task);
  const common = { config, outDir: out, resume, progress: false, log };
  if (task.kind === 'autoencoder') {
    await trainAutoencoder(common);
    return;
  }
  const autoencoder = path.join(inputDir(plan, task, 'autoencoder'), AE_WEIGHTS);
  if (task.kind === 'decoder') {
    const finetune = task.config.finetune as DecoderFinetuneConfig;
    await finetuneDecoder({ ...common, autoencoder, data: config.data, seed: config.seed, finetune }, AE_WEIGHTS);
    return;
  }
  const cacheDir = latentCacheDir(plan);
  if (task.kind === 'short') await trainLvdm({ ...common, autoencoder, cacheDir, init: initOf(plan, task) });
  else await trainLongModel({ ...common, autoencoder, cacheDir, role: task.kind === 'prediction' ? 'prediction' : 'interpolation' });
}

/** The metric protocol with its input paths relative to the run folder (results do not depend on where the run folder is). */
function portableProtocol(protocol: unknown, runDir: string): Record<string, unknown> {
  const p = { ...(protocol as Record<string, unknown>) };
  for (const side of ['real', 'fake']) {
    const s = p[side] as { path?: string } | undefined;
    if (s?.path) p[side] = { ...s, path: path.relative(runDir, path.resolve(s.path)).replace(/\.partial(?=[/\\]|$)/, '') };
  }
  return p;
}

export interface MetricSettings {
  window: number;
  n_real: number;
  features: FeatureChoice;
  covariance: 'unbiased' | 'biased';
  seed: number;
}

/** The clip protocol the runner scores a sweep point (or a floor) of `nFake` clips with. */
export function protocolFor(m: Pick<MetricSettings, 'window' | 'n_real' | 'seed'>, nFake: number): { name: string; frames: number; stride: number; numReal: number; numFake: number; realSelection: 'first'; seed: number } {
  return { name: 'custom', frames: m.window, stride: 1, numReal: m.n_real, numFake: nFake, realSelection: 'first', seed: m.seed };
}

async function runReal(plan: Plan, task: TaskSpec, out: string, log: (m: string) => void): Promise<void> {
  const c = task.config as unknown as MetricSettings & { data: DataConfig; n_floor: number };
  const data = stageData(plan, task, c.data, 'test');
  const realFile = path.join(out, REAL_CLIPS);
  const floorFile = path.join(out, 'floor.npz');
  const recFile = path.join(out, 'floor-reconstructed.npz');
  // Content seeds 1 and 2 give two disjoint held-out sets (synthetic families); seeded clip starts.
  await writeRealClips(data, c.seed, realFile, c.n_real, c.window, 1);
  await writeRealClips(data, c.seed, floorFile, c.n_floor, c.window, 2);
  await writeReconstructed(path.join(inputDir(plan, task, 'autoencoder'), AE_WEIGHTS), floorFile, recFile);
  const extractor = openExtractor(c.features);
  try {
    const protocol = protocolFor(c, c.n_floor);
    const common = { real: realFile, covariance: c.covariance, protocol, runs: 1, extractor, cacheDir: null, progress: false, log };
    const floor = await computeMetrics({ ...common, fake: floorFile });
    const rec = await computeMetrics({ ...common, fake: recFile });
    const names = floor.metric_names as { fvd: string; kvd: string };
    const pick = (r: Record<string, unknown>): { fvd: number; kvd: number } => ({ fvd: Number(r[names.fvd]), kvd: Number(r[names.kvd]) });
    const floors: MetricFloors = { real_vs_real: pick(floor), reconstruction: pick(rec) };
    if (hasObjectConsistency(data.source)) {
      const real = await consistencyReadings(floorFile, { window: c.window });
      const rec = await consistencyReadings(recFile, { window: c.window });
      floors.object_consistency = {
        real: real.object, reconstruction: rec.object, motion_real: real.motion, motion_reconstruction: rec.motion, polygons_real: real.polygons, polygons_reconstruction: rec.polygons,
        regular_real: real.regular, regular_reconstruction: rec.regular,
      };
    }
    writeJsonAtomic(path.join(out, FLOORS_FILE), { ...floors, metric: names.fvd, protocol: portableProtocol(floor.protocol, plan.runDir) });
    log(`floors (${names.fvd}): real vs real ${floors.real_vs_real.fvd.toFixed(1)}, autoencoder reconstructions ${floors.reconstruction.fvd.toFixed(1)}`);
  } finally {
    extractor.dispose();
  }
}

interface SampleSettings {
  point: SweepValues;
  sampler: 'ddim' | 'ddpm';
  eta: number;
  n: number;
  max_batch: number;
  decode_window: number;
  decode_overlap: number;
  fps: number;
  gifs: number;
  /** sweep.precision (unset = fp32). */
  precision?: Precision;
}

/** At most this many frames of a long video go into its GIF (the report's preview). */
const GIF_MAX_FRAMES = 256;

function writeGifs(dir: string, file: string, count: number, fps: number): string[] {
  const a = readNpz(file).get('videos')!;
  const [n, t, h, w] = a.shape;
  const k = displayScale(h, w);
  const frameSize = h * w * 3;
  const out: string[] = [];
  for (let i = 0; i < Math.min(n, count); i++) {
    const frames: Uint8Array[] = [];
    for (let f = 0; f < Math.min(t, GIF_MAX_FRAMES); f++) {
      const off = (i * t + f) * frameSize;
      frames.push(upscaleNearest({ data: (a.data as Uint8Array).subarray(off, off + frameSize), width: w, height: h }, k).data);
    }
    const name = `sample_${String(i).padStart(3, '0')}.gif`;
    writeGif(path.join(dir, name), frames, w * k, h * k, fps);
    out.push(name);
  }
  return out;
}

async function runSample(plan: Plan, task: TaskSpec, out: string, progress: (f: number, l: string) => void, log: (m: string) => void): Promise<void> {
  const c = task.config as unknown as SampleSettings;
  await withPrecision(c.precision, () => sampleAt(plan, task, c, out, progress, log), `${task.id}: sweep.precision`);
}

async function sampleAt(plan: Plan, task: TaskSpec, c: SampleSettings, out: string, progress: (f: number, l: string) => void, log: (m: string) => void): Promise<void> {
  const p = c.point;
  const aeFile = path.join(inputDir(plan, task, 'autoencoder'), AE_WEIGHTS);
  const t0 = Date.now();
  let before = 0;
  let detail: Record<string, unknown>;
  if (p.mode === 'short') {
    const model = loadLvdm(path.join(inputDir(plan, task, 'model'), LVDM_WEIGHTS));
    const ae = loadAutoencoder(aeFile);
    let autoguide: { model: LoadedLvdm; scale: number } | undefined;
    try {
      // Autoguidance (sweep.models.short.guide): the point's w weights the weaker model, s = 1 + w.
      if ('guide' in taskInputs(plan, task)) autoguide = { model: loadLvdm(path.join(inputDir(plan, task, 'guide'), LVDM_WEIGHTS)), scale: 1 + p.w };
      // Text-to-video and class-conditional models: prompts / labels are the held-out clips' captions / labels;
      // the sweep's w is the guidance weight, s_cfg = 1 + w.
      const { prompts, classLabels } = await heldOutConditioning(model, c.n);
      const cfg = prompts || classLabels ? 1 + p.w : undefined;
      const gen = await generateVideos(model, ae.ae, {
        n: c.n,
        frames: p.frames,
        batchSize: c.max_batch,
        sampler: c.sampler,
        steps: p.steps,
        eta: c.eta,
        seed: p.seed,
        prompts,
        classLabels,
        cfg,
        autoguide,
        onProgress: (done, total) => progress(done / total, `${task.id} ${done}/${total} videos`),
      });
      const { frames: t, height: h, width: w } = gen;
      const all = new Uint8Array(gen.videos.length * t * h * w * 3);
      gen.videos.forEach((v, i) => all.set(v, i * v.length));
      writeNpz(path.join(out, VIDEOS_FILE), { videos: { shape: [gen.videos.length, t, h, w, 3], data: all } });
      if (c.gifs > 0) await writeSampleOutputs(out, { ...gen, videos: gen.videos.slice(0, c.gifs) }, { fps: c.fps, mp4: false, gif: true });
      detail = {
        sample_seconds: gen.sampleSeconds,
        decode_seconds: gen.decodeSeconds,
        ...(prompts ? { cfg_scale: cfg, prompts } : {}),
        ...(classLabels ? { cfg_scale: cfg, class_labels: classLabels } : {}),
        ...(autoguide ? { autoguide_scale: autoguide.scale, autoguide_step: autoguide.model.step } : {}),
      };
    } finally {
      autoguide?.model.dispose();
      model.dispose();
      ae.dispose();
    }
  } else {
    const hier = p.mode === 'hierarchical';
    const done: Record<string, number> = {};
    const summary = await sampleLong({
      pred: path.join(inputDir(plan, task, 'pred'), LVDM_WEIGHTS),
      interp: hier ? path.join(inputDir(plan, task, 'interp'), LVDM_WEIGHTS) : undefined,
      autoencoder: aeFile,
      out,
      mode: p.mode,
      frames: p.frames,
      n: c.n,
      seed: p.seed,
      s: p.s,
      w: p.w,
      sampler: c.sampler,
      steps: p.steps,
      eta: c.eta,
      maxBatch: c.max_batch,
      decodeWindowLatents: c.decode_window,
      decodeOverlapLatents: c.decode_overlap,
      chunkFrames: Math.min(p.frames, 128),
      merge: true,
      mp4: false,
      fps: c.fps,
      resume: true, // runTask removed the .partial folder unless it continues this task
      log: (m) => log(`${task.id}: ${m}`),
      // Hierarchical: keyframes take about a fifth of the windows' work, interpolation the rest
      // (the two stages interleave: the latent stream interpolates as soon as keyframes exist).
      onWindow: (stage, i, total) => {
        done[stage] = (i + 1) / total;
        progress(!hier ? done[stage] : 0.2 * (done.key ?? 0) + 0.8 * (done.interp ?? 0), `${task.id} ${stage} window ${i + 1}/${total}`);
      },
    });
    fs.rmSync(path.join(out, 'chunks'), { recursive: true, force: true }); // merged into videos.npz
    writeGifs(out, path.join(out, VIDEOS_FILE), c.gifs, c.fps);
    detail = { plan: summary.plan, seconds_per_frame: summary.seconds_per_frame };
    before = Number(summary.resumed_seconds); // a continued point counts the interrupted run's windows too
  }
  const gifs = fs.readdirSync(out).filter((f) => f.endsWith('.gif')).sort();
  writeJsonAtomic(path.join(out, SAMPLE_FILE), { point: p, n: c.n, videos: VIDEOS_FILE, gifs, seconds: before + (Date.now() - t0) / 1000, ...detail });
}

async function runEvaluate(plan: Plan, task: TaskSpec, out: string, t0: number, log: (m: string) => void): Promise<void> {
  const c = task.config as unknown as MetricSettings & { point: SweepValues; dataset: string };
  const sampleTask = taskInputs(plan, task).sample;
  const sampleDir = taskDir(plan, sampleTask);
  const sample = JSON.parse(fs.readFileSync(path.join(sampleDir, SAMPLE_FILE), 'utf8')) as { n: number; gifs: string[]; seconds: number };
  const extractor = openExtractor(c.features);
  try {
    const r = await computeMetrics({
      real: path.join(inputDir(plan, task, 'real'), REAL_CLIPS),
      fake: path.join(sampleDir, VIDEOS_FILE),
      covariance: c.covariance,
      protocol: protocolFor(c, sample.n),
      runs: 1,
      extractor,
      window: c.window,
      cacheDir: path.join(plan.runDir, 'cache', 'features'),
      progress: false,
      log,
    });
    const names = r.metric_names as { fvd: string; kvd: string };
    const fvdW = r[`${names.fvd}_by_window`] as number[];
    const kvdW = r[`${names.kvd}_by_window`] as number[];
    const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    const p = c.point;
    const result: PointResult = {
      experiment: plan.name,
      dataset: c.dataset,
      ...p,
      metric: names.fvd === 'fvd' ? 'fvd' : 'fvd_proxy',
      fvd: mean(fvdW),
      kvd: mean(kvdW),
      window: c.window,
      fvd_by_window: fvdW.length >= 2 ? fvdW : [],
      kvd_by_window: kvdW.length >= 2 ? kvdW : [],
      n_fake: Number(r.n_fake),
      n_real: Number(r.n_real),
      wall_s: sample.seconds + (Date.now() - t0) / 1000,
      protocol: { ...portableProtocol(r.protocol, plan.runDir), aggregate: `fvd/kvd: mean over the ${fvdW.length} frame window(s) of ${c.window} frames` },
      samples: sample.gifs.map((g) => path.relative(plan.runDir, path.join(sampleDir, g))),
    };
    if (hasObjectConsistency(c.dataset)) {
      const oc = await consistencyReadings(path.join(sampleDir, VIDEOS_FILE), { window: c.window });
      result.object_consistency = oc.object;
      result.motion_consistency = oc.motion;
      result.polygons = oc.polygons;
      result.regular = oc.regular;
      // Clips are listed video by video, each with its windows in order.
      const perWindow = fvdW.map((_, k) => oc.objectPerClip.filter((_c, i) => i % fvdW.length === k));
      if (fvdW.length >= 2) result.object_consistency_by_window = perWindow.map((w) => w.filter(Boolean).length / Math.max(1, w.length));
    }
    writeJsonAtomic(path.join(out, RESULT_FILE), result);
  } finally {
    extractor.dispose();
  }
}

/** The finished sweep points of a run folder, in plan order. */
export function collectResults(plan: Plan): PointResult[] {
  const out: PointResult[] = [];
  for (const t of plan.tasks) {
    if (t.kind !== 'evaluate' || taskState(plan, t) !== 'done') continue;
    const r = JSON.parse(fs.readFileSync(path.join(taskDir(plan, t), RESULT_FILE), 'utf8')) as PointResult;
    out.push({ ...r, experiment: plan.name });
  }
  return out;
}

/** Loss curves of the finished training stages (their metrics.jsonl). */
function lossCurves(plan: Plan): LossCurve[] {
  const curves: LossCurve[] = [];
  for (const t of plan.tasks) {
    if (!TRAINING.includes(t.kind) || taskState(plan, t) !== 'done') continue;
    const rows = readJsonl(path.join(taskDir(plan, t), METRICS_LOG)) as { step?: number; loss?: number }[];
    const ok = rows.filter((r) => typeof r.step === 'number' && typeof r.loss === 'number');
    // A panel per kind of loss: the autoencoder's NLL (large, often negative), a decoder stage's mean
    // L1 + GDL (about 0.05; on the NLL's axis a flat line at 0) and the diffusion losses.
    const group = t.kind === 'autoencoder' || t.kind === 'decoder' ? t.kind : 'diffusion';
    curves.push({ stage: t.id, steps: ok.map((r) => r.step!), loss: ok.map((r) => r.loss!), group });
  }
  return curves;
}

/** Everything the report needs, read from the run folder. */
export function reportInputFor(plan: Plan): ReportInput {
  const real = plan.tasks.find((t) => t.kind === 'real');
  let floors: MetricFloors | undefined;
  if (real && taskState(plan, real) === 'done') {
    const f = JSON.parse(fs.readFileSync(path.join(taskDir(plan, real), FLOORS_FILE), 'utf8')) as MetricFloors;
    floors = { real_vs_real: f.real_vs_real, reconstruction: f.reconstruction, ...(f.object_consistency ? { object_consistency: f.object_consistency } : {}) };
  }
  const r = plan.resolved as { description?: string; baseline?: ReportInput['baseline'] };
  return {
    name: plan.name,
    description: r.description,
    file: plan.file,
    overrides: plan.set,
    resolved: plan.resolved,
    points: collectResults(plan),
    floors,
    curves: lossCurves(plan),
    baseline: r.baseline,
    runDir: plan.runDir,
    stages: plan.tasks.map((t) => ({ id: t.id, kind: t.kind, outDir: t.outDir, wall_s: readDone(taskDir(plan, t))?.wall_s })),
  };
}
