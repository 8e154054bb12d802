/**
 * `lvdm ship RUN_DIR`: copies a run's finished training tasks into the shipped-models folder
 * (models/store/<kind>/<key16>/, only the files later tasks read) and records them in
 * models/manifest.json with sizes, sha256, training time, evaluation numbers and the command that
 * trains each again. Refuses when the shipped models would exceed a size limit.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonl, writeJsonAtomic } from '../io/atomic';
import { INT4_CONVENTION, INT4_METADATA, INT4_SCALE_SUFFIX, quantizableInt4, quantizeInt4 } from '../io/int4';
import { INT8_CONVENTION, INT8_METADATA, INT8_SCALE_SUFFIX, quantizableInt8, quantizeInt8 } from '../io/int8';
import { decodeSafetensors, encodeSafetensors, type TensorToWrite, toHalfArray } from '../io/safetensors';
import { METRICS_LOG } from '../train/loop';
import { planExperiment, readDone, readPlan, taskDir, taskInputs, taskState } from './plan';
import { DEFAULT_MODELS_DIR, MANIFEST_FILE, Manifest, SHIPPABLE, ShippedEntry, type ShippedFile, type ShipPrecision, describeFiles, readManifest, shippedFileNames, withInputs } from './shipped';
import { Plan, TaskSpec } from './types';

/** The repository root (experiment files are recorded relative to it). */
const REPO_ROOT = path.dirname(DEFAULT_MODELS_DIR);

export const DEFAULT_MAX_MB = 20;
const MB = 1e6;

export interface ShipOptions {
  /** Training stages to ship (default: every finished one). */
  stages?: string[];
  /** The models folder (default the repository's models/). */
  to?: string;
  /** Refuse when the shipped models would exceed this many MB (10^6 bytes) in all. */
  maxMb?: number;
  /** Weights precision (default 'fp16': float32 weights rounded to float16, half the bytes; 'int8': kernels in int8, about a quarter; 'int4': about an eighth). */
  precision?: ShipPrecision;
  /**
   * Experiment files whose shipped stages are removed in the same write (a family retired for
   * another); 'FILE:STAGE[,STAGE]' removes only those stages of FILE (a model replaced by another
   * experiment's).
   */
  drop?: string[];
  /** Print the sizes, write nothing. */
  dryRun?: boolean;
  log?: (m: string) => void;
}

export interface ShipResult {
  models: string;
  shipped: ShippedEntry[];
  /** Entries of the same experiment and stage under another key, or of a dropped experiment, removed. */
  replaced: ShippedEntry[];
  totalBytes: number;
  manifest: Manifest;
}

function repoPath(file: string): string {
  const rel = path.relative(REPO_ROOT, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** '--drop FILE' (every shipped stage of FILE) or 'FILE:STAGE[,STAGE]' (only those). */
function parseDrop(arg: string): { experiment: string; stages: string[] | null } {
  const m = /^(.+\.ya?ml):([\w,-]+)$/.exec(arg);
  const file = m ? m[1] : arg;
  const stages = m ? m[2].split(',').filter(Boolean) : null;
  if (stages && !stages.length) throw new Error(`--drop: '${arg}' names no stage (expected FILE or FILE:STAGE[,STAGE])`);
  return { experiment: repoPath(path.resolve(file)), stages };
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `lvdm run` trains `task` (and the training stages it reads) from scratch. */
function reproduceCommand(plan: Plan, task: TaskSpec): string {
  const stages = withInputs(plan, [task]).map((t) => t.id);
  const sets = (plan.set ?? []).flatMap((s) => ['--set', shellWord(s)]);
  return ['lvdm', 'run', shellWord(repoPath(plan.file)), ...sets, '--only', stages.join(','), '--from-scratch'].join(' ');
}

function fmtMb(bytes: number): string {
  return `${(bytes / MB).toFixed(2)} MB`;
}

/** The training tasks to ship: the named stages (each finished), or every finished one. */
function chooseTasks(plan: Plan, stages: string[]): TaskSpec[] {
  const training = plan.tasks.filter((t) => SHIPPABLE.includes(t.kind));
  if (!stages.length) {
    const done = training.filter((t) => taskState(plan, t) === 'done');
    if (!done.length) throw new Error(`${plan.runDir}: no finished training stage to ship (training stages: ${training.map((t) => t.id).join(', ') || 'none'})`);
    return done;
  }
  return stages.map((s) => {
    const t = training.find((x) => x.id === s);
    if (!t) throw new Error(`--stages: '${s}' is not a training stage of ${plan.name} (training stages: ${training.map((x) => x.id).join(', ')})`);
    const state = taskState(plan, t);
    if (state !== 'done') throw new Error(`--stages: stage '${s}' is not finished in ${plan.runDir} (${state}); train it first: ${reproduceCommand(plan, t).replace(/ --from-scratch$/, '')}`);
    return t;
  });
}

/** The experiment file must still plan the same keys, or the recorded command would not reproduce the task. */
function checkReproducible(plan: Plan, tasks: TaskSpec[]): void {
  if (!fs.existsSync(plan.file)) throw new Error(`${plan.runDir}: its experiment file ${plan.file} no longer exists; ship from a run of a file in the repository`);
  const now = planExperiment(plan.file, { set: plan.set ?? [], out: plan.runDir });
  for (const t of tasks) {
    const k = now.tasks.find((x) => x.id === t.id)?.key;
    if (k !== t.key)
      throw new Error(`stage '${t.id}': ${repoPath(plan.file)} now plans it under key ${k?.slice(0, 16) ?? '(no such stage)'}, but the run trained key ${t.key.slice(0, 16)} (the file, an included file or the code version changed since); rerun the experiment, then ship`);
  }
}

/**
 * A weights file as shipped at `precision` (other dtypes and the metadata are kept, the precision
 * recorded in the metadata); null = ship the file as is (fp32).
 *   fp16: every float32 tensor rounded to float16.
 *   int8: kernels (rank >= 2, >= 1024 values, more than 8 input and output channels) as int8 with
 *         one float32 scale per output channel (lib/io/int8.ts), the other float32 tensors
 *         (biases, norms, the first and last layers) as float16.
 *   int4: the same kernels as int4 with one float16 scale per group of 32 input rows and output
 *         channel (lib/io/int4.ts; an odd number of output channels: int8), the rest as for int8.
 */
export function shippedWeights(file: string, precision: ShipPrecision): Buffer | null {
  if (precision === 'fp32') return null;
  const { tensors, metadata } = decodeSafetensors(fs.readFileSync(file), file);
  const out = new Map<string, TensorToWrite>();
  const marks: Record<string, string> = {};
  for (const [name, t] of tensors) {
    const what = `${file}: tensor '${name}'`;
    if (!(t.data instanceof Float32Array)) out.set(name, { shape: t.shape, data: t.data });
    else if (precision === 'int4' && quantizableInt4(t.shape)) {
      const { packed, packedShape, scale, scaleShape } = quantizeInt4(t.data, t.shape, what);
      out.set(name, { shape: packedShape, data: packed });
      out.set(name + INT4_SCALE_SUFFIX, { shape: scaleShape, data: scale, dtype: 'F16' });
      marks[INT4_METADATA] = INT4_CONVENTION;
    } else if ((precision === 'int8' || precision === 'int4') && quantizableInt8(t.shape)) {
      const { q, scale } = quantizeInt8(t.data, t.shape, what);
      out.set(name, { shape: t.shape, data: q, dtype: 'I8' });
      out.set(name + INT8_SCALE_SUFFIX, { shape: [scale.length], data: scale });
      marks[INT8_METADATA] = INT8_CONVENTION;
    } else out.set(name, { shape: t.shape, data: toHalfArray(t.data, what), dtype: 'F16' });
  }
  const about = {
    fp16: 'fp16 (float32 weights rounded to nearest float16 by lvdm ship)',
    int8: 'int8 (kernels as int8 with per-output-channel scales, other float32 weights as float16, by lvdm ship)',
    int4: 'int4 (kernels as int4 with per-group scales, odd-width kernels as int8, other float32 weights as float16, by lvdm ship)',
  }[precision];
  return Buffer.from(encodeSafetensors(out, { ...metadata, ...marks, 'lvdm.shipped_precision': about }));
}

/** The files shipped for `task`, with their bytes when they differ from the run folder's (weights at fp16 or int8). */
function shippedFiles(dir: string, kind: TaskSpec['kind'], precision: ShipPrecision): { files: ShippedFile[]; converted: Map<string, Buffer> } {
  const names = shippedFileNames(kind).filter((f) => fs.existsSync(path.join(dir, f)));
  const converted = new Map<string, Buffer>();
  const weights = shippedWeights(path.join(dir, names[0]), precision);
  if (weights) converted.set(names[0], weights);
  // Converted files are described by the bytes that ship, the rest as they are on disk.
  const onDisk = describeFiles(dir, names.filter((n) => !converted.has(n)));
  const files = names.map((name) => {
    const b = converted.get(name);
    return b ? { name, bytes: b.length, sha256: crypto.createHash('sha256').update(b).digest('hex') } : onDisk.find((f) => f.name === name)!;
  });
  return { files, converted };
}

function entryFor(plan: Plan, task: TaskSpec, precision: ShipPrecision): ShippedEntry & { converted: Map<string, Buffer> } {
  const dir = taskDir(plan, task);
  const { files, converted } = shippedFiles(dir, task.kind, precision);
  const done = readDone(dir)!;
  const evalFile = path.join(dir, 'eval.json');
  const logs = readJsonl(path.join(dir, METRICS_LOG)) as Record<string, unknown>[];
  const inputs: Record<string, string> = {};
  for (const [role, t] of Object.entries(taskInputs(plan, task))) inputs[role] = t.id;
  return {
    experiment: repoPath(plan.file),
    name: plan.name,
    set: plan.set ?? [],
    stage: task.id,
    kind: task.kind,
    key: task.key,
    dir: task.outDir.split(path.sep).join('/'),
    inputs,
    files,
    bytes: files.reduce((a, f) => a + f.bytes, 0),
    precision,
    wall_s: done.wall_s,
    finished: done.finished,
    backend: done.backend ?? null,
    command: reproduceCommand(plan, task),
    eval: fs.existsSync(evalFile) ? (JSON.parse(fs.readFileSync(evalFile, 'utf8')) as Record<string, unknown>) : null,
    last_log: logs.length ? logs[logs.length - 1] : null,
    converted,
  };
}

/** Copies one task's shipped files: into a temp folder, then renamed over its folder. */
function copyInto(models: string, plan: Plan, e: ShippedEntry, converted: Map<string, Buffer>): void {
  const final = path.join(models, e.dir);
  const tmp = `${final}.partial-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const src = path.join(plan.runDir, e.dir);
  for (const f of e.files) {
    const b = converted.get(f.name);
    if (b) fs.writeFileSync(path.join(tmp, f.name), b);
    else fs.copyFileSync(path.join(src, f.name), path.join(tmp, f.name));
  }
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
}

export function shipRun(runDir: string, opts: ShipOptions = {}): ShipResult {
  const log = opts.log ?? ((m: string) => console.log(m));
  const models = path.resolve(opts.to ?? DEFAULT_MODELS_DIR);
  const maxMb = opts.maxMb ?? DEFAULT_MAX_MB;
  const plan = readPlan(runDir);
  const tasks = chooseTasks(plan, opts.stages ?? []);
  checkReproducible(plan, tasks);
  const precision = opts.precision ?? 'fp16';
  const withBytes = tasks.map((t) => entryFor(plan, t, precision));
  const shipped: ShippedEntry[] = withBytes.map(({ converted: _, ...e }) => e);
  const old = readManifest(models);
  const experiment = repoPath(plan.file);
  const dropped = (opts.drop ?? []).map(parseDrop);
  for (const d of dropped) {
    const of = old.tasks.filter((e) => e.experiment === d.experiment);
    if (!of.length) throw new Error(`--drop: ${d.experiment} has no shipped stages in ${models} (shipped: ${[...new Set(old.tasks.map((e) => e.experiment))].join(', ') || 'none'})`);
    for (const st of d.stages ?? [])
      if (!of.some((e) => e.stage === st)) throw new Error(`--drop: ${d.experiment} has no shipped stage '${st}' (its shipped stages: ${of.map((e) => e.stage).join(', ')})`);
  }
  const isDropped = (e: ShippedEntry): boolean => dropped.some((d) => d.experiment === e.experiment && (!d.stages || d.stages.includes(e.stage)));
  const isReplaced = (e: ShippedEntry): boolean => isDropped(e) || shipped.some((n) => n.dir === e.dir || (e.experiment === experiment && e.stage === n.stage));
  const replaced = old.tasks.filter((e) => isReplaced(e) && !shipped.some((n) => n.dir === e.dir));
  const kept = old.tasks.filter((e) => !isReplaced(e));
  const all = [...kept, ...shipped];
  const totalBytes = all.reduce((a, e) => a + e.bytes, 0);

  const w = Math.max(5, ...shipped.map((e) => e.stage.length));
  const dw = Math.max(...shipped.map((e) => e.dir.length));
  log(`${plan.name} (${experiment}) -> ${models}`);
  for (const e of shipped) log(`  ${e.stage.padEnd(w)}  ${e.kind.padEnd(13)}  ${e.dir.padEnd(dw)}  ${fmtMb(e.bytes).padStart(9)}  ${precision}  trained in ${e.wall_s.toFixed(0)} s${e.backend ? ` on ${e.backend}` : ''}  (${e.files.map((f) => f.name).join(', ')})`);
  for (const e of replaced) log(isDropped(e) ? `  drops ${e.experiment} ${e.stage} (${e.dir}, ${fmtMb(e.bytes)})` : `  replaces ${e.stage} (${e.dir}, ${fmtMb(e.bytes)})`);
  log(`shipped models in all: ${fmtMb(totalBytes)} (${fmtMb(shipped.reduce((a, e) => a + e.bytes, 0))} from this run, ${fmtMb(kept.reduce((a, e) => a + e.bytes, 0))} already shipped), limit ${maxMb} MB`);
  if (totalBytes > maxMb * MB)
    throw new Error(`refusing to ship: the shipped models would take ${fmtMb(totalBytes)} in all, above the limit of ${maxMb} MB (--max-mb ${maxMb}); ship fewer stages (--stages) or raise --max-mb`);

  const manifest: Manifest = { ...old, total_bytes: totalBytes, tasks: all.sort((a, b) => a.experiment.localeCompare(b.experiment) || SHIPPABLE.indexOf(a.kind) - SHIPPABLE.indexOf(b.kind) || a.stage.localeCompare(b.stage)) };
  if (opts.dryRun) {
    log('dry run: nothing written');
    return { models, shipped, replaced, totalBytes, manifest };
  }
  withBytes.forEach((e, i) => copyInto(models, plan, shipped[i], e.converted));
  writeJsonAtomic(path.join(models, MANIFEST_FILE), manifest);
  for (const e of replaced) if (!all.some((a) => a.dir === e.dir)) fs.rmSync(path.join(models, e.dir), { recursive: true, force: true });
  log(`shipped ${shipped.length} task(s); manifest ${path.join(models, MANIFEST_FILE)}`);
  return { models, shipped, replaced, totalBytes, manifest };
}
