/**
 * A queue worker: takes task jobs from BullMQ and runs them against the shared run folder.
 *
 * - A task whose output exists (DONE marker) is never redone: the job completes as `skipped`.
 * - A task whose dependencies are not done yet is parked as a delayed job (its progress names what
 *   it waits for); the worker that finishes a dependency promotes the jobs waiting on it. A
 *   dependency whose job failed fails its dependents without retries.
 * - A task that throws is retried by BullMQ (attempts + exponential backoff set at submission),
 *   then marked failed with its error. A worker killed mid-job stops renewing the job's lock; after
 *   `lockMs` the stalled check of any live worker moves the job back to waiting. The killed run's
 *   partial output stays in its temp folder and is never taken as a result (runTask writes into a
 *   temp folder, renames it, then writes DONE).
 * The task runner is injectable; the default runs `runTask` in a worker thread so that long
 * synchronous tensor work never blocks lock renewal.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type { Plan, TaskSpec } from '../experiments/types';
import { claimTask } from './claim';
import { QueueConnection, logErrors } from './connection';
import { QUEUE_NAME, RootMap, TaskJobData, TaskJobProgress, TaskJobResult, jobAndState, openTaskQueue, readPlanFile } from './jobs';

export interface TaskContext {
  log(message: string): void;
  onProgress(progress: TaskJobProgress): void;
}

/** Runs one task to completion (its output written atomically with its DONE marker). */
export type TaskRunner = (plan: Plan, task: TaskSpec, ctx: TaskContext) => Promise<void>;
/** Whether a task's output is complete in the run folder. */
export type DoneCheck = (plan: Plan, task: TaskSpec) => boolean;

export interface QueueWorkerOptions {
  conn: QueueConnection;
  runner: TaskRunner;
  isDone: DoneCheck;
  concurrency?: number;
  root?: RootMap;
  /** Job lock, renewed every lockMs / 2 while a task runs; a killed worker's job is recovered after it expires. */
  lockMs?: number;
  /** How often this worker checks for stalled jobs (of any worker). */
  stalledMs?: number;
  /** How many times a job may stall before it is failed. */
  maxStalled?: number;
  /** Fallback re-check period of a job waiting for its dependencies. */
  depPollMs?: number;
  /** Worker name shown in job records and claims (default host:pid). */
  name?: string;
  log(message: string): void;
}

export const WORKER_DEFAULTS = { concurrency: 1, lockMs: 60_000, stalledMs: 30_000, maxStalled: 3, depPollMs: 10_000 };

export interface QueueWorker {
  worker: Worker<TaskJobData, TaskJobResult>;
  /** Stops taking jobs; waits for running ones unless `force`. */
  close(force?: boolean): Promise<void>;
}

function progressOf(job: Job): TaskJobProgress {
  const p: unknown = job.progress;
  return p && typeof p === 'object' ? (p as TaskJobProgress) : {};
}

export async function startQueueWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  const queue = openTaskQueue(o.conn);
  const plans = new Map<string, Plan>();
  const depPollMs = o.depPollMs ?? WORKER_DEFAULTS.depPollMs;
  const log = (m: string): void => o.log(o.conn.redact(m));

  const loadPlan = (data: TaskJobData): Plan => {
    const cacheKey = `${data.runDir}\n${data.planFile}`; // plan files are content-addressed
    let plan = plans.get(cacheKey);
    if (!plan) {
      plan = readPlanFile(data, o.root);
      plans.set(cacheKey, plan);
    }
    return plan;
  };

  /** Promotes the delayed jobs that were waiting for `taskId` so they start now. */
  const wakeDependents = async (taskId: string, experiment: string): Promise<void> => {
    for (const j of await queue.getDelayed()) {
      const waiting = progressOf(j).waitingFor;
      if (j.data.experiment === experiment && waiting?.includes(taskId)) await j.promote().catch(() => undefined);
    }
  };

  const lockMs = o.lockMs ?? WORKER_DEFAULTS.lockMs;
  const me = o.name ?? `${os.hostname()}:${process.pid}`;
  const park = async (job: Job<TaskJobData, TaskJobResult>, token: string | undefined, progress: TaskJobProgress, ms: number): Promise<never> => {
    await job.updateProgress(progress);
    await job.moveToDelayed(Date.now() + ms, token);
    throw new DelayedError();
  };

  const processor = async (job: Job<TaskJobData, TaskJobResult>, token?: string): Promise<TaskJobResult> => {
    const data = job.data;
    let plan: Plan;
    try {
      plan = loadPlan(data);
    } catch (e) {
      throw new UnrecoverableError((e as Error).message);
    }
    const task = plan.tasks.find((t) => t.id === data.taskId && t.key === data.key);
    if (!task) throw new UnrecoverableError(`task '${data.taskId}' (key ${data.key}) is not in ${data.planFile}`);
    const skipped = (): TaskJobResult => {
      log(`${task.id}: output exists (${task.outDir}), not redone`);
      return { outDir: task.outDir, skipped: true, wall_s: 0 };
    };
    if (o.isDone(plan, task)) return skipped();
    const byId = new Map(plan.tasks.map((t) => [t.id, t]));
    const depDone = (id: string): boolean => {
      const dep = byId.get(id);
      return !!dep && o.isDone(plan, dep);
    };
    const pending = data.deps.filter((d) => !depDone(d.id));
    for (const d of pending) {
      const { job: depJob, state } = await jobAndState(queue, d.jobId);
      if (depDone(d.id)) continue;
      if (state === 'failed') throw new UnrecoverableError(`dependency '${d.id}' failed: ${depJob?.failedReason ?? ''}`);
      if (state === 'unknown') throw new UnrecoverableError(`dependency '${d.id}' is neither done nor queued: submit the experiment again with --resume`);
    }
    if (pending.length) await park(job, token, { waitingFor: pending.map((d) => d.id) }, depPollMs);

    const claim = claimTask(`${path.join(plan.runDir, task.outDir)}.lock`, me, lockMs);
    if ('heldBy' in claim) return park(job, token, { heldBy: claim.heldBy.worker }, Math.min(depPollMs, lockMs / 2));
    try {
      if (o.isDone(plan, task)) return skipped();
      const t0 = Date.now();
      log(`${task.id}: started (attempt ${job.attemptsMade + 1})`);
      await job.updateProgress({ worker: me, fraction: 0 });
      let lastProgress = 0;
      try {
        await o.runner(plan, task, {
          log,
          onProgress: (p) => {
            const now = Date.now();
            if (now - lastProgress < 1000) return;
            lastProgress = now;
            job.updateProgress({ worker: me, ...p }).catch(() => undefined);
          },
        });
      } catch (e) {
        throw new Error(o.conn.redact((e as Error).message));
      }
      if (!o.isDone(plan, task)) throw new Error(`${task.id}: the task ended without writing its DONE marker in ${task.outDir}`);
      const wall_s = (Date.now() - t0) / 1000;
      log(`${task.id}: done in ${wall_s.toFixed(1)} s -> ${task.outDir}`);
      await wakeDependents(task.id, data.experiment);
      return { outDir: task.outDir, skipped: false, wall_s };
    } finally {
      claim.release();
    }
  };

  const worker = new Worker<TaskJobData, TaskJobResult>(QUEUE_NAME, processor, {
    connection: o.conn.options,
    concurrency: o.concurrency ?? WORKER_DEFAULTS.concurrency,
    lockDuration: lockMs,
    stalledInterval: o.stalledMs ?? WORKER_DEFAULTS.stalledMs,
    maxStalledCount: o.maxStalled ?? WORKER_DEFAULTS.maxStalled,
    name: me,
  });
  worker.on('failed', (job, err) => {
    if (!job || err instanceof DelayedError || err.name === 'DelayedError') return;
    const left = (job.opts.attempts ?? 1) - job.attemptsMade;
    log(`${job.name}: attempt ${job.attemptsMade} failed: ${err.message}${left > 0 && err.name !== 'UnrecoverableError' ? ` (${left} left)` : ''}`);
  });
  logErrors(worker, o.conn, log);
  logErrors(queue, o.conn, log);
  await worker.waitUntilReady();
  return {
    worker,
    close: async (force = false) => {
      await worker.close(force);
      await queue.close();
    },
  };
}
