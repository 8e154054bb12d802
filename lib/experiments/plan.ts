/**
 * Experiment file -> Plan: a DAG of tasks (training stages, the real-clip floors, one 'sample' and
 * one 'evaluate' task per sweep point), each with a content key in the manner of Nextflow/DVC:
 * sha256 over the task kind, a code version of that kind, the task's resolved config and the keys
 * of its inputs. A task's output lives in `store/<kind>/<key16>`, so a finished task is reused
 * whenever nothing it depends on changed, and a changed config reruns exactly its dependents.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config/load';
import { writeJsonAtomic } from '../io/atomic';
import { DataConfig, ExperimentConfig, ExperimentFile, StageConfig, SweepConfig } from '../config/schema';
import { syntheticFamilyFromSource } from '../../data/synthetic';
import { fileSha256 } from '../../metrics/i3d/weights';
import { Plan, SweepMode, SweepValues, TaskKind, TaskSpec, TaskState } from './types';
import { loadExperiment } from './resolve';

/**
 * Bumped when a kind's code changes what it writes, so old outputs are not reused. Part of every key.
 */
export const CODE_VERSION: Record<TaskKind, number> = { prepare: 1, autoencoder: 1, decoder: 1, short: 1, prediction: 1, interpolation: 1, real: 2, sample: 2, evaluate: 2 };

/** The marker a finished task leaves in its folder (written last, inside the temp folder, before the rename). */
export const DONE_FILE = 'DONE';
export const PLAN_FILE = 'plan.json';
export const EXPERIMENT_FILE = 'experiment.json';

/** Inputs of a task by role (autoencoder, pred, interp, model, shards, sample, real) -> task id. */
export type TaskInputs = Record<string, string>;

export interface PlanOptions {
  /** `key.path=value` overrides (applied after includes). */
  set?: string[];
  /** Run folder (default runs/<name>). */
  out?: string;
}

/** JSON with keys sorted at every level, so equal configs hash equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Content key: sha256 over kind, code version, the config and the input keys by role (not by task name). */
export function taskKey(kind: TaskKind, config: Record<string, unknown>, inputKeys: Record<string, string>): string {
  const body = canonicalJson({ kind, version: CODE_VERSION[kind], config: { ...config, inputs: inputKeys } });
  return crypto.createHash('sha256').update(body).digest('hex');
}

/** Readable id of a sweep point, e.g. 'hierarchical-s100-w0.1-f512-st20-seed1'. */
export function pointId(p: SweepValues): string {
  return `${p.mode}${p.s === null ? '' : `-s${p.s}`}-w${p.w}-f${p.frames}-st${p.steps}${p.eta === undefined ? '' : `-eta${p.eta}`}-seed${p.seed}`;
}

/** Every point of the sweep: the union of its grids (first occurrence order, duplicates once). */
export function expandSweep(sweep: SweepConfig): SweepValues[] {
  const out = new Map<string, SweepValues>();
  for (const grid of Object.values(sweep.grids)) {
    if (!grid) continue;
    for (const mode of grid.mode)
      for (const s of mode === 'short' ? [null] : grid.s)
        for (const w of grid.w)
          for (const frames of grid.frames)
            for (const steps of grid.steps)
              for (const eta of grid.eta ?? [undefined])
                for (const seed of grid.seed) {
                  const p: SweepValues = { mode: mode as SweepMode, s, w, frames, steps, ...(eta === undefined ? {} : { eta }), seed };
                  if (!out.has(pointId(p))) out.set(pointId(p), p);
                }
  }
  return [...out.values()];
}

function isSynthetic(d: DataConfig): boolean {
  return syntheticFamilyFromSource(d.source) !== null;
}

/** The ExperimentConfig a training stage runs with (the existing stage pipelines take this). */
function stageExperiment(e: ExperimentFile, name: string, st: Exclude<StageConfig, { kind: 'prepare' | 'decoder' }>): ExperimentConfig {
  const base = { name, seed: st.seed ?? e.seed, data: st.data };
  if (st.kind === 'autoencoder') return { ...base, autoencoder: st.autoencoder };
  return { ...base, unet: st.unet, diffusion: st.diffusion, long: st.kind === 'short' ? undefined : st.long, text: st.kind === 'short' ? st.text : undefined };
}

/** What a training stage's key covers: its config without diffusion.sampling (the sweep decides sampling; training never reads it). */
function trainingKeyConfig(c: Record<string, unknown>): Record<string, unknown> {
  const exp = c.experiment as ExperimentConfig;
  return exp.diffusion ? { ...c, experiment: { ...exp, diffusion: { ...exp.diffusion, sampling: undefined } } } : c;
}

/** Stages in the same order, except that a short stage comes after the stage its `init` names (checked acyclic by the loader). */
function initsFirst(stages: [string, StageConfig][]): [string, StageConfig][] {
  const out: [string, StageConfig][] = [];
  const placed = new Set<string>();
  const byName = new Map(stages);
  const place = (name: string): void => {
    if (placed.has(name)) return;
    const st = byName.get(name)!;
    placed.add(name);
    if (st.kind === 'short' && st.init) place(st.init.stage);
    out.push([name, st]);
  };
  for (const [name] of stages) place(name);
  return out;
}

export function planExperiment(file: string, opts: PlanOptions = {}): Plan {
  const { experiment: e } = loadExperiment(file, opts.set ?? []);
  const runDir = path.resolve(opts.out ?? path.join('runs', e.name));
  const tasks: TaskSpec[] = [];
  const byId = new Map<string, TaskSpec>();
  const add = (id: string, kind: TaskKind, config: Record<string, unknown>, inputs: TaskInputs, point?: SweepValues, keyed = (c: Record<string, unknown>) => c): TaskSpec => {
    const inputKeys: Record<string, string> = {};
    for (const [role, dep] of Object.entries(inputs)) inputKeys[role] = byId.get(dep)!.key;
    const key = taskKey(kind, keyed(config), inputKeys);
    const t: TaskSpec = { id, kind, key, deps: [...new Set(Object.values(inputs))], config: { ...config, inputs }, point, outDir: path.join('store', kind, key.slice(0, 16)) };
    tasks.push(t);
    byId.set(id, t);
    return t;
  };

  // Training stages in dependency order: prepare, autoencoder, decoder fine-tuning, then the latent models.
  const order: StageConfig['kind'][] = ['prepare', 'autoencoder', 'decoder', 'short', 'prediction', 'interpolation'];
  const stages = initsFirst(Object.entries(e.stages).sort((a, b) => order.indexOf(a[1].kind) - order.indexOf(b[1].kind)));
  for (const [name, st] of stages) {
    if (st.kind === 'prepare') {
      if (isSynthetic(st.data)) continue; // synthetic data renders on demand: nothing to prepare
      add(name, 'prepare', { data: st.data, shard_mb: st.shard_mb, jobs: st.jobs }, {});
      continue;
    }
    const inputs: TaskInputs = {};
    if (st.shards !== undefined && byId.has(st.shards) && !isSynthetic(st.data)) inputs.shards = st.shards;
    if (st.kind !== 'autoencoder') inputs.autoencoder = st.autoencoder;
    if (st.kind === 'short' && st.init) inputs.init = st.init.stage;
    if (st.kind === 'decoder') add(name, 'decoder', { experiment: { name, seed: st.seed ?? e.seed, data: st.data }, finetune: st.finetune }, inputs);
    else add(name, st.kind, { experiment: stageExperiment(e, name, st), init: st.kind === 'short' && st.init ? { temporal: st.init.temporal, train: st.init.train } : undefined }, inputs, undefined, trainingKeyConfig);
  }

  const sw = e.sweep;
  const points = sw ? expandSweep(sw) : [];
  if (sw && points.length) {
    const modelStage = (m: SweepMode): string => (m === 'short' ? sw.models.short!.model : m === 'hierarchical' ? sw.models.hierarchical!.pred : sw.models.autoregressive!.pred);
    const first = e.stages[modelStage(points[0].mode)] as Exclude<StageConfig, { kind: 'prepare' | 'autoencoder' }>;
    const aeStage = first.autoencoder;
    const window = e.evaluate.window ?? Math.min(...points.map((p) => p.frames));
    const nFloor = e.evaluate.n_floor ?? sw.n;
    const realData: DataConfig = {
      ...first.data,
      frames: window,
      held_out: Math.max(e.evaluate.n_real, nFloor),
      video_length: isSynthetic(first.data) ? Math.max(first.data.video_length ?? 0, 256, window) : first.data.video_length,
    };
    const features = { name: e.evaluate.features, i3d: e.evaluate.i3d ? { file: path.resolve(e.evaluate.i3d), sha256: fileSha256(e.evaluate.i3d) } : null };
    const metric = { window, n_real: e.evaluate.n_real, features, covariance: e.evaluate.covariance, seed: e.evaluate.seed };
    // The frames of samples and of the reconstruction floor come from the sweep's decoder.
    const decoder = sw.decoder ?? aeStage;
    const realInputs: TaskInputs = { autoencoder: decoder };
    const shards = (e.stages[aeStage] as { shards?: string }).shards;
    if (shards !== undefined && byId.has(shards)) realInputs.shards = shards;
    add('real', 'real', { data: realData, n_floor: nFloor, ...metric }, realInputs);
    for (const p of points) {
      const pid = pointId(p);
      const inputs: TaskInputs =
        p.mode === 'short'
          ? { model: sw.models.short!.model }
          : p.mode === 'hierarchical'
            ? { pred: sw.models.hierarchical!.pred, interp: sw.models.hierarchical!.interp }
            : { pred: sw.models.autoregressive!.pred };
      const st = e.stages[modelStage(p.mode)] as Exclude<StageConfig, { kind: 'prepare' | 'autoencoder' }>;
      // A short model's w is classifier-free guidance (s_cfg = 1 + w) of a text- or class-conditional model, or autoguidance by sweep.models.short.guide.
      const guide = p.mode === 'short' ? sw.models.short!.guide : undefined;
      const conditional = st.kind === 'short' && (st.text !== undefined || st.unet?.num_classes !== undefined);
      if (p.mode === 'short' && p.w !== 0 && !conditional && guide === undefined)
        throw new ConfigError(
          `${file}: key 'sweep.grids': short-video point ${pid} has w = ${p.w}, but stage '${modelStage(p.mode)}' has neither a 'text' section nor unet.num_classes (guidance needs a text- or class-conditional model, or a weaker model in sweep.models.short.guide for autoguidance); use w: 0`,
        );
      if (p.mode === 'short' && p.w !== 0 && guide !== undefined) inputs.guide = guide;
      inputs.autoencoder = sw.decoder ?? st.autoencoder;
      const sampling = { sampler: sw.sampler, eta: p.eta ?? sw.eta, n: sw.n, max_batch: sw.max_batch, decode_window: sw.decode_window, decode_overlap: sw.decode_overlap, fps: sw.fps, gifs: sw.gifs, precision: sw.precision };
      add(`sample/${pid}`, 'sample', { point: p, ...sampling }, inputs, p);
      add(`evaluate/${pid}`, 'evaluate', { point: p, dataset: realData.source, ...metric }, { sample: `sample/${pid}`, real: 'real' }, p);
    }
  }
  if (!tasks.length) throw new ConfigError(`${file}: nothing to run (no stages and no sweep points)`);
  return { name: e.name, file: path.resolve(file), set: opts.set ?? [], runDir, resolved: e as unknown as Record<string, unknown>, tasks };
}

export function findTask(plan: Plan, id: string): TaskSpec {
  const t = plan.tasks.find((x) => x.id === id);
  if (!t) throw new Error(`${plan.name}: no task '${id}' in the plan`);
  return t;
}

export function taskDir(plan: Plan, task: TaskSpec): string {
  return path.join(plan.runDir, task.outDir);
}

/** The task's inputs by role -> task (from its config's `inputs`). */
export function taskInputs(plan: Plan, task: TaskSpec): Record<string, TaskSpec> {
  const inputs = (task.config.inputs ?? {}) as TaskInputs;
  const out: Record<string, TaskSpec> = {};
  for (const [role, id] of Object.entries(inputs)) out[role] = findTask(plan, id);
  return out;
}

export interface DoneMarker {
  id: string;
  key: string;
  kind: TaskKind;
  wall_s: number;
  finished: string;
  /** The tfjs backend the task ran on ('libtorch', 'wasm', ...); absent in markers of older runs. */
  backend?: string;
}

export function readDone(dir: string): DoneMarker | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, DONE_FILE), 'utf8')) as DoneMarker;
  } catch {
    return null;
  }
}

/**
 * 'done': the task's folder holds a DONE marker with its key. 'stale': not done, but a finished
 * output of the same task id exists under another key (its inputs or config changed). 'todo':
 * neither.
 */
export function taskState(plan: Plan, task: TaskSpec): TaskState {
  const done = readDone(taskDir(plan, task));
  if (done && done.key === task.key) return 'done';
  const kindDir = path.join(plan.runDir, 'store', task.kind);
  if (fs.existsSync(kindDir)) {
    for (const d of fs.readdirSync(kindDir)) {
      if (d.includes('.')) continue; // temp folders
      const m = readDone(path.join(kindDir, d));
      if (m && m.id === task.id && m.key !== task.key) return 'stale';
    }
  }
  return 'todo';
}

/** Stage / pseudo-stage name of a task for `--only`: the stage name, or 'real', 'sample', 'evaluate'. */
export function taskStage(task: TaskSpec): string {
  return task.kind === 'sample' || task.kind === 'evaluate' ? task.kind : task.id;
}

/** Tasks selected by `--only a,b` ('sweep' = real + sample + evaluate); all when empty. */
export function selectTasks(plan: Plan, only: string[]): TaskSpec[] {
  if (!only.length) return plan.tasks;
  const names = new Set(only.flatMap((o) => (o === 'sweep' ? ['real', 'sample', 'evaluate'] : [o])));
  const known = new Set(plan.tasks.map(taskStage));
  for (const n of names) if (!known.has(n)) throw new Error(`--only: no stage '${n}' in ${plan.name} (stages: ${[...known].join(', ')}, or 'sweep')`);
  return plan.tasks.filter((t) => names.has(taskStage(t)));
}

/** Writes the plan (for worker processes and `lvdm report`) and the resolved experiment into the run folder. */
export function writePlan(plan: Plan): void {
  writeJsonAtomic(path.join(plan.runDir, PLAN_FILE), plan);
  writeJsonAtomic(path.join(plan.runDir, EXPERIMENT_FILE), { name: plan.name, file: plan.file, experiment: plan.resolved });
}

/** The plan a run folder was last run with (runDir: where the folder is now). */
export function readPlan(runDir: string): Plan {
  const file = path.join(runDir, PLAN_FILE);
  if (!fs.existsSync(file)) throw new Error(`${runDir}: not a run folder (no ${PLAN_FILE}; it is written by 'lvdm run')`);
  // The folder may have moved since: outputs are found relative to where it is now.
  return { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as Plan), runDir: path.resolve(runDir) };
}
