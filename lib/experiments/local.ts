/**
 * Local scheduling of a plan: tasks run as soon as their inputs are finished, on N worker
 * processes (one task each at a time; sweep points and independent training stages run in
 * parallel), or in this process when N = 1. A bar per worker, one line per finished task (with
 * the metric for sweep points), and a summary of where every output is.
 */
import { ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Plan, PointResult, TaskSpec } from './types';
import { RESULT_FILE, latentCacheOf, partialDir, runTask } from './execute';
import { selectTasks, taskDir, taskState, writePlan } from './plan';
import { WorkerBars } from './progress';
import { DEFAULT_MODELS_DIR, reuseShipped, withInputs } from './shipped';

export type ParentMessage = { type: 'run'; runDir: string; taskId: string; resume: boolean };
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'progress'; taskId: string; fraction: number; label: string }
  | { type: 'log'; taskId: string; message: string }
  | { type: 'done'; taskId: string }
  | { type: 'error'; taskId: string; message: string };

/**
 * Workers that fit the machine: cores / threads per worker. The wasm backend uses
 * LVDM_WASM_THREADS threads (default 1); tfjs-node / tfjs-node-gpu use every core (or the GPU)
 * themselves, so one worker.
 */
export function defaultWorkers(backend: string): number {
  if (backend === 'tensorflow') return 1;
  const threads = backend === 'wasm' ? Math.max(1, Number(process.env.LVDM_WASM_THREADS) || 1) : 1;
  return Math.max(1, Math.floor(os.availableParallelism() / threads));
}

export interface LocalRunOptions {
  workers: number;
  /** Stage names (or 'real', 'sample', 'evaluate', 'sweep') to run; their inputs must be finished. */
  only?: string[];
  /** Continue interrupted tasks from their `.partial` folders (training: checkpoints; long-video sampling: latent journals); false restarts them. */
  resume?: boolean;
  /** Progress bars (default true). */
  progress?: boolean;
  /** Where lines go (default stderr through the bars). */
  stream?: NodeJS.WriteStream;
  /**
   * Shipped models (shipped.ts): unfinished training tasks this folder holds under the same key
   * are copied into the run folder instead of trained. Default the repository's models/; null:
   * train from scratch.
   */
  models?: string | null;
}

export interface TaskOutcome {
  id: string;
  kind: TaskSpec['kind'];
  /** reused: finished in the run folder; shipped: copied from the shipped models. */
  status: 'reused' | 'shipped' | 'ran' | 'failed' | 'blocked';
  outDir: string;
  seconds?: number;
  error?: string;
}

export interface LocalRunResult {
  outcomes: TaskOutcome[];
  seconds: number;
  ok: boolean;
}

function pointLine(plan: Plan, task: TaskSpec): string {
  const r = JSON.parse(fs.readFileSync(path.join(taskDir(plan, task), RESULT_FILE), 'utf8')) as PointResult;
  const byW = r.fvd_by_window.length ? ` (by window: ${r.fvd_by_window.map((v) => v.toFixed(1)).join(' ')})` : '';
  return `point ${task.id.slice('evaluate/'.length)}: ${r.metric} ${r.fvd.toFixed(1)}${byW}, ${r.wall_s.toFixed(1)} s -> ${task.outDir}`;
}

/** Where the Node entry of a worker is, and how to run it (through tsx when running from sources). */
function forkWorker(): ChildProcess {
  const ts = path.extname(__filename) === '.ts';
  const entry = path.join(__dirname, `worker-entry${path.extname(__filename)}`);
  return fork(entry, [], { execArgv: ts ? ['--require', require.resolve('tsx/cjs')] : [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
}

const LOCK_FILE = 'run.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One local run per run folder at a time (two would write the same `.partial` folders). A lock
 * left by a killed run (its process is gone) is taken over.
 */
function lockRunDir(runDir: string): () => void {
  const file = path.join(runDir, LOCK_FILE);
  fs.mkdirSync(runDir, { recursive: true });
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(fs.readFileSync(file, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new Error(`${runDir}: another run (pid ${pid}) is using this run folder (${file})`);
      fs.rmSync(file, { force: true });
    }
  }
}

/** Runs the plan's (selected) tasks that are not done. Returns what happened to each selected task. */
export async function runLocal(plan: Plan, opts: LocalRunOptions): Promise<LocalRunResult> {
  const unlock = lockRunDir(plan.runDir);
  try {
    return await runLocked(plan, opts);
  } finally {
    unlock();
  }
}

async function runLocked(plan: Plan, opts: LocalRunOptions): Promise<LocalRunResult> {
  const t0 = Date.now();
  const selected = selectTasks(plan, opts.only ?? []);
  const chosen = new Set(selected.map((t) => t.id));
  const byId = new Map(plan.tasks.map((t) => [t.id, t]));
  writePlan(plan);
  const shippedLines: string[] = [];
  const shipped = new Set(reuseShipped(plan, withInputs(plan, selected), opts.models === undefined ? DEFAULT_MODELS_DIR : opts.models, (m) => shippedLines.push(m)));
  const outcomes = new Map<string, TaskOutcome>();
  const finished = new Set<string>();
  const pending: TaskSpec[] = [];
  for (const t of plan.tasks) {
    if (taskState(plan, t) === 'done') {
      finished.add(t.id);
      if (chosen.has(t.id)) outcomes.set(t.id, { id: t.id, kind: t.kind, status: shipped.has(t.id) ? 'shipped' : 'reused', outDir: t.outDir });
    } else if (chosen.has(t.id)) pending.push(t);
  }
  for (const t of pending)
    for (const d of t.deps)
      if (!finished.has(d) && !chosen.has(d))
        throw new Error(`--only: '${t.id}' needs '${d}', which is not finished; run its stage too (--only ${byId.get(d)!.kind === 'sample' ? 'sample' : d},...) or run without --only`);
  const interrupted = pending.filter((t) => fs.existsSync(partialDir(plan, t)));
  const nWorkers = Math.max(1, Math.min(opts.workers, pending.length));
  const bars = new WorkerBars(nWorkers, opts.progress !== false, opts.stream);
  for (const l of shippedLines) bars.line(l);
  if (interrupted.length)
    bars.line(
      opts.resume
        ? `resuming ${interrupted.length} interrupted task(s): ${interrupted.map((t) => t.id).join(', ')}`
        : `note: ${interrupted.length} interrupted task(s) start over (pass --resume to continue them from their checkpoints or latent journals): ${interrupted.map((t) => t.id).join(', ')}`,
    );
  bars.line(`${plan.name}: ${pending.length} task(s) to run, ${outcomes.size} reused, on ${nWorkers} worker(s); run folder ${plan.runDir}`);

  const onDone = (t: TaskSpec, seconds: number): void => {
    finished.add(t.id);
    outcomes.set(t.id, { id: t.id, kind: t.kind, status: 'ran', outDir: t.outDir, seconds });
    bars.line(t.kind === 'evaluate' ? pointLine(plan, t) : `done ${t.id} (${t.kind}) in ${seconds.toFixed(1)} s -> ${t.outDir}`);
  };
  const onFail = (t: TaskSpec, error: string): void => {
    outcomes.set(t.id, { id: t.id, kind: t.kind, status: 'failed', outDir: t.outDir, error });
    bars.line(`FAILED ${t.id}: ${error}`);
  };
  const blocked = (t: TaskSpec): boolean => t.deps.some((d) => outcomes.get(d)?.status === 'failed' || outcomes.get(d)?.status === 'blocked');
  const ready = (t: TaskSpec): boolean => t.deps.every((d) => finished.has(d));

  try {
    if (nWorkers === 1) {
      for (const t of pending) {
        if (blocked(t)) {
          outcomes.set(t.id, { id: t.id, kind: t.kind, status: 'blocked', outDir: t.outDir });
          continue;
        }
        const s = Date.now();
        bars.start(0, t.id);
        try {
          await runTask(plan, t, { resume: opts.resume, log: (m) => bars.line(`  ${t.id}: ${m}`), onProgress: (f, l) => bars.update(0, f, l) });
          bars.finish(0);
          onDone(t, (Date.now() - s) / 1000);
        } catch (e) {
          bars.finish(0);
          onFail(t, (e as Error).message);
        }
      }
    } else {
      await runOnWorkers(plan, pending, nWorkers, opts.resume === true, bars, { onDone, onFail, blocked, ready, outcomes });
    }
  } finally {
    bars.close();
  }
  const list = selected.map((t) => outcomes.get(t.id) ?? { id: t.id, kind: t.kind, status: 'blocked' as const, outDir: t.outDir });
  return { outcomes: list, seconds: (Date.now() - t0) / 1000, ok: list.every((o) => o.status === 'ran' || o.status === 'reused' || o.status === 'shipped') };
}

interface Hooks {
  onDone(t: TaskSpec, seconds: number): void;
  onFail(t: TaskSpec, error: string): void;
  blocked(t: TaskSpec): boolean;
  ready(t: TaskSpec): boolean;
  outcomes: Map<string, TaskOutcome>;
}

async function runOnWorkers(plan: Plan, pending: TaskSpec[], n: number, resume: boolean, bars: WorkerBars, h: Hooks): Promise<void> {
  const waiting = [...pending];
  const workers: { proc: ChildProcess; task: TaskSpec | null; started: number; ready: boolean }[] = [];
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    const dispatch = (): void => {
      for (let i = waiting.length - 1; i >= 0; i--) {
        if (h.blocked(waiting[i])) {
          const t = waiting.splice(i, 1)[0];
          h.outcomes.set(t.id, { id: t.id, kind: t.kind, status: 'blocked', outDir: t.outDir });
        }
      }
      // Models that share a latent cache: the first builds it, the others start once it exists.
      const building = new Set(workers.map((w) => (w.task ? latentCacheOf(plan, w.task) : null)).filter((f): f is string => f !== null && !fs.existsSync(f)));
      const startable = (t: TaskSpec): boolean => {
        if (!h.ready(t)) return false;
        const cache = latentCacheOf(plan, t);
        return cache === null || !building.has(cache);
      };
      for (const [slot, w] of workers.entries()) {
        if (!w.ready || w.task) continue;
        const idx = waiting.findIndex(startable);
        if (idx < 0) break;
        const t = waiting.splice(idx, 1)[0];
        const cache = latentCacheOf(plan, t);
        if (cache !== null && !fs.existsSync(cache)) building.add(cache);
        w.task = t;
        w.started = Date.now();
        bars.start(slot, t.id);
        const msg: ParentMessage = { type: 'run', runDir: plan.runDir, taskId: t.id, resume };
        w.proc.send(msg);
      }
      if (!waiting.length && workers.every((w) => !w.task)) resolve();
      else if (workers.every((w) => w.ready && !w.task) && !waiting.some(h.ready)) resolve(); // the rest is blocked
    };
    // Tasks held back for a latent cache start when it appears.
    timer = setInterval(dispatch, 1000);
    for (let slot = 0; slot < n; slot++) {
      const proc = forkWorker();
      const w = { proc, task: null as TaskSpec | null, started: 0, ready: false };
      workers.push(w);
      const forward = (chunk: Buffer): void => {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) bars.line(`  [w${slot + 1}] ${l}`);
      };
      proc.stdout?.on('data', forward);
      proc.stderr?.on('data', forward);
      proc.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          w.ready = true;
          dispatch();
        } else if (m.type === 'progress') bars.update(slot, m.fraction, m.label);
        else if (m.type === 'log') bars.line(`  ${m.taskId}: ${m.message}`);
        else if (m.type === 'done' || m.type === 'error') {
          const t = w.task!;
          w.task = null;
          bars.finish(slot);
          if (m.type === 'done') h.onDone(t, (Date.now() - w.started) / 1000);
          else h.onFail(t, m.message);
          dispatch();
        }
      });
      proc.on('exit', (code, signal) => {
        if (w.task) {
          const t = w.task;
          w.task = null;
          h.onFail(t, `worker ${slot + 1} exited (${signal ?? `code ${code}`}) while running it`);
          reject(new Error(`worker ${slot + 1} died while running ${t.id}`));
        }
      });
    }
  }).finally(() => {
    clearInterval(timer);
    for (const w of workers) if (w.proc.connected) w.proc.disconnect();
  });
}

/** The end-of-run summary: every selected task, its status and where its output is. */
export function formatSummary(plan: Plan, r: LocalRunResult): string {
  const width = Math.max(...r.outcomes.map((o) => o.id.length));
  const count = (s: TaskOutcome['status']): number => r.outcomes.filter((o) => o.status === s).length;
  const lines = [`${plan.name}: ${count('ran')} ran, ${count('reused')} reused, ${count('shipped') ? `${count('shipped')} from shipped models, ` : ''}${count('failed')} failed in ${r.seconds.toFixed(0)} s`];
  for (const o of r.outcomes) lines.push(`  ${o.id.padEnd(width)}  ${o.status.padEnd(7)} ${path.join(plan.runDir, o.outDir)}${o.error ? `  (${o.error})` : ''}`);
  return lines.join('\n');
}
