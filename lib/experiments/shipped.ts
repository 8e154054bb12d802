/**
 * Shipped models: finished training tasks kept in the repository (`models/store/<kind>/<key16>/`,
 * listed in `models/manifest.json`, written by `lvdm ship`). A training task's key is a content
 * hash of its resolved config, its inputs' keys and its kind's code version (plan.ts), so a
 * shipped folder whose DONE marker holds a task's key is exactly what training that task here
 * would produce (same backend): the runner copies it into the run folder instead of training.
 * A changed config or code version changes the key, and the task trains.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileSha256 } from '../../metrics/i3d/weights';
import { AE_WEIGHTS } from '../autoencoder/pipeline';
import { LVDM_WEIGHTS } from '../lvdm/weights';
import { METRICS_LOG } from '../train/loop';
import { DONE_FILE, findTask, readDone, taskDir, taskState } from './plan';
import { Plan, TaskKind, TaskSpec } from './types';

/** The repository's shipped models (the runner's default; `--models DIR` points elsewhere). */
export const DEFAULT_MODELS_DIR = path.resolve(__dirname, '..', '..', 'models');
export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'lvdm-shipped-models/1';

/** Task kinds that can be shipped: the training stages. */
export const SHIPPABLE: readonly TaskKind[] = ['autoencoder', 'decoder', 'short', 'prediction', 'interpolation'];

/**
 * The files of a finished training task that later tasks read: the final weights (sampling, the
 * floors, later stages' latents), config.json, eval.json (the autoencoder's held-out PSNR/SSIM and
 * latent statistics), metrics.jsonl (the report's loss curves) and the DONE marker. Not the
 * training checkpoint (optimiser moments) nor latent caches.
 */
export function shippedFileNames(kind: TaskKind): string[] {
  return [kind === 'autoencoder' || kind === 'decoder' ? AE_WEIGHTS : LVDM_WEIGHTS, 'config.json', 'eval.json', METRICS_LOG, DONE_FILE];
}

export interface ShippedFile {
  name: string;
  bytes: number;
  sha256: string;
}

/** One shipped training task in the manifest. */
export type ShipPrecision = 'fp32' | 'fp16' | 'int8' | 'int4';
export const SHIP_PRECISIONS: readonly ShipPrecision[] = ['fp16', 'int8', 'int4', 'fp32'];

export interface ShippedEntry {
  /** Experiment file, relative to the repository root when inside it. */
  experiment: string;
  /** Experiment name (its `name:`). */
  name: string;
  /** `--set` overrides of the run it came from. */
  set: string[];
  stage: string;
  kind: TaskKind;
  /** Full content key (sha256 hex). */
  key: string;
  /** Folder relative to the models folder: store/<kind>/<key16>. */
  dir: string;
  /** Inputs by role -> stage name (e.g. autoencoder -> ae). */
  inputs: Record<string, string>;
  files: ShippedFile[];
  bytes: number;
  /** Precision of the shipped weights: 'fp16' is the trained float32 weights rounded to float16
   * (nearest, ties to even) to fit the size budget, widened back to float32 on load; 'int8' stores
   * the kernels as int8 with per-output-channel scales (lib/io/int8.ts); 'int4' as int4 with
   * per-group scales (lib/io/int4.ts); absent = fp32. */
  precision?: ShipPrecision;
  /** Training wall time (its DONE marker) and when it finished. */
  wall_s: number;
  finished: string;
  /** The backend it was trained on (from its DONE marker; null if not recorded): the command reproduces its numbers there. */
  backend: string | null;
  /** The command that trains it again from scratch. */
  command: string;
  /** eval.json of its folder (autoencoder: held-out PSNR/SSIM, latent statistics), if any. */
  eval: Record<string, unknown> | null;
  /** The last line of its metrics.jsonl (final logged loss), if any. */
  last_log: Record<string, unknown> | null;
}

export interface Manifest {
  format: string;
  about: string;
  total_bytes: number;
  tasks: ShippedEntry[];
}

export function emptyManifest(): Manifest {
  return {
    format: MANIFEST_FORMAT,
    about: "Finished training tasks of 'lvdm run' (written by 'lvdm ship'). 'lvdm run' copies a task from store/<kind>/<key16>/ instead of training it when the task's content key equals the DONE marker's; --from-scratch trains instead.",
    total_bytes: 0,
    tasks: [],
  };
}

export function readManifest(models: string): Manifest {
  const file = path.join(models, MANIFEST_FILE);
  if (!fs.existsSync(file)) return emptyManifest();
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  if (m.format !== MANIFEST_FORMAT || !Array.isArray(m.tasks)) throw new Error(`${file}: not a shipped-models manifest (format '${String(m.format)}', expected '${MANIFEST_FORMAT}')`);
  return m;
}

/** Name, size and sha256 of each file. */
export function describeFiles(dir: string, names: string[]): ShippedFile[] {
  return names.map((name) => ({ name, bytes: fs.statSync(path.join(dir, name)).size, sha256: fileSha256(path.join(dir, name)) }));
}

/** A path as a person reads it: relative to the working folder when inside it. */
export function shownPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/** Where `task` would be in a models folder. */
export function shippedDir(models: string, task: TaskSpec): string {
  return path.join(models, task.outDir);
}

/** Whether `models` holds `task` finished under its current key. */
export function isShipped(models: string | null, task: TaskSpec): boolean {
  return models !== null && SHIPPABLE.includes(task.kind) && readDone(shippedDir(models, task))?.key === task.key;
}

/** `tasks` and every task they read from, transitively, in plan order. */
export function withInputs(plan: Plan, tasks: TaskSpec[]): TaskSpec[] {
  const need = new Set<string>();
  const visit = (t: TaskSpec): void => {
    if (need.has(t.id)) return;
    need.add(t.id);
    for (const d of t.deps) visit(findTask(plan, d));
  };
  tasks.forEach(visit);
  return plan.tasks.filter((t) => need.has(t.id));
}

/** Copies a shipped folder into the run folder (temp folder, then rename); false when it does not match its manifest entry. */
function copyShipped(plan: Plan, task: TaskSpec, from: string, entry: ShippedEntry | undefined, log: (m: string) => void): boolean {
  const final = taskDir(plan, task);
  const tmp = `${final}.shipped-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const names = fs.readdirSync(from).filter((f) => fs.statSync(path.join(from, f)).isFile());
  for (const f of names) fs.copyFileSync(path.join(from, f), path.join(tmp, f));
  // A clone without the weights' contents (e.g. Git LFS pointers) or a damaged file is not used.
  const bad = (entry?.files ?? []).find((f) => !names.includes(f.name) || fileSha256(path.join(tmp, f.name)) !== f.sha256);
  if (bad) {
    fs.rmSync(tmp, { recursive: true, force: true });
    log(`shipped ${task.id} (${shownPath(from)}) does not match its manifest (${bad.name}: size or sha256 differs); training it instead`);
    return false;
  }
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  // An interrupted training of the same task is superseded.
  fs.rmSync(`${final}.partial`, { recursive: true, force: true });
  return true;
}

/**
 * Copies every unfinished training task among `tasks` that `models` holds under the same key into
 * the run folder, so the tasks after it find it where they expect. Returns the ids it copied.
 */
export function reuseShipped(plan: Plan, tasks: TaskSpec[], models: string | null, log: (m: string) => void): string[] {
  if (models === null) return [];
  const candidates = tasks.filter((t) => isShipped(models, t) && taskState(plan, t) !== 'done');
  if (!candidates.length) return [];
  const manifest = readManifest(models);
  const reused: string[] = [];
  for (const t of candidates) {
    const from = shippedDir(models, t);
    if (!copyShipped(plan, t, from, manifest.tasks.find((e) => e.key === t.key), log)) continue;
    log(`reused shipped ${t.id} (${shownPath(from)})`);
    reused.push(t.id);
  }
  return reused;
}
