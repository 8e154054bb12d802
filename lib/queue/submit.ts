/**
 * `lvdm run EXP.yaml --queue URL`: enqueues an experiment's tasks as BullMQ jobs and follows them.
 *
 * Submission is idempotent: job ids come from content keys, tasks whose output is done in the run
 * folder are not enqueued, and a job already queued is left alone. With `resume` (after Redis lost
 * its state, or after failures) the queue is rebuilt from the plan: missing jobs are added again
 * and failed ones retried. Results live in the run folder, never only in Redis.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QueueEvents } from 'bullmq';
import { RESULT_FILE } from '../experiments/execute';
import { writePlan } from '../experiments/plan';
import type { Plan, PointResult, TaskSpec } from '../experiments/types';
import { QueueConnection, checkConnection, logErrors, parseQueueUrl } from './connection';
import { QUEUE_NAME, TaskJobData, TaskQueue, jobAndState, openTaskQueue, planJobs, taskDepths, writePlanFile } from './jobs';
import { outputDone } from './done';
import { DoneCheck } from './worker';

export interface SubmitOptions {
  /** Retry a throwing task this many times in all (then it is failed with its error). */
  attempts?: number;
  /** First retry delay; doubles per attempt. */
  backoffMs?: number;
  /** Also retry failed jobs and re-add completed jobs whose output is missing. */
  resume: boolean;
  isDone: DoneCheck;
  log(message: string): void;
}

export const SUBMIT_DEFAULTS = { attempts: 3, backoffMs: 5000, pollMs: 2000 };

export interface SubmitSummary {
  done: number;
  added: number;
  queued: number;
  retried: number;
  failed: number;
}

/** Enqueues every task of the plan that is not done yet. */
export async function submitPlan(queue: TaskQueue, plan: Plan, o: SubmitOptions): Promise<SubmitSummary> {
  const planFile = writePlanFile(plan);
  const depth = taskDepths(plan);
  const sum: SubmitSummary = { done: 0, added: 0, queued: 0, retried: 0, failed: 0 };
  const toAdd: { name: string; data: TaskJobData; opts: { jobId: string; priority: number } }[] = [];
  for (const [jobId, { task, data }] of planJobs(plan, planFile)) {
    if (o.isDone(plan, task)) {
      sum.done++;
      continue;
    }
    const { job: existing, state } = await jobAndState(queue, jobId);
    if (existing && state === 'failed') {
      if (o.resume) {
        await existing.retry('failed');
        sum.retried++;
      } else sum.failed++;
      continue;
    }
    if (existing && state === 'completed') {
      // Completed in Redis but no output on disk (deleted since): run it again.
      await existing.remove();
    } else if (existing && state !== 'unknown') {
      sum.queued++;
      continue;
    }
    toAdd.push({ name: task.id, data, opts: { jobId, priority: 1 + (depth.get(task.id) ?? 0) } });
  }
  const attempts = o.attempts ?? SUBMIT_DEFAULTS.attempts;
  const delay = o.backoffMs ?? SUBMIT_DEFAULTS.backoffMs;
  await queue.addBulk(toAdd.map((j) => ({ ...j, opts: { ...j.opts, attempts, backoff: { type: 'exponential', delay } } })));
  sum.added = toAdd.length;
  o.log(
    `${plan.name}: ${plan.tasks.length} tasks: ${sum.done} done, ${sum.added} enqueued, ${sum.queued} already queued` +
      (sum.retried ? `, ${sum.retried} failed retried` : '') +
      (sum.failed ? `, ${sum.failed} failed earlier (lvdm queue retry, or --resume)` : ''),
  );
  return sum;
}

export interface FollowOptions {
  isDone: DoneCheck;
  pollMs?: number;
  log(message: string): void;
  /** One line for a finished task (default: its id and output folder). */
  describe?(plan: Plan, task: TaskSpec): string;
}

/**
 * Follows the plan's jobs until every task is done (resolves) or nothing more can finish
 * (rejects with the failed tasks and their errors). Prints one line per finished task. Rejects
 * with a `--resume` hint when jobs vanished from Redis (restarted without persistence).
 */
export async function followPlan(queue: TaskQueue, events: QueueEvents, plan: Plan, o: FollowOptions): Promise<void> {
  const jobs = planJobs(plan, '');
  const finished = new Set<string>();
  const total = jobs.size;
  const describe = o.describe ?? ((_p: Plan, t: TaskSpec) => `${t.id} -> ${t.outDir}`);
  const reported = new Set<string>();
  const markDone = (jobId: string): void => {
    const entry = jobs.get(jobId);
    if (!entry || finished.has(jobId) || !o.isDone(plan, entry.task)) return;
    finished.add(jobId);
    o.log(`[${finished.size}/${total}] ${describe(plan, entry.task)}`);
  };
  let wake: (() => void) | undefined;
  const onEvent = (jobId: string): void => {
    if (jobs.has(jobId)) {
      markDone(jobId);
      wake?.();
    }
  };
  events.on('completed', ({ jobId }) => onEvent(jobId));
  events.on('failed', ({ jobId }) => onEvent(jobId));
  for (const jobId of jobs.keys()) if (o.isDone(plan, jobs.get(jobId)!.task)) finished.add(jobId);
  if (finished.size) o.log(`[${finished.size}/${total}] done before this run`);
  let lostPolls = 0;
  for (;;) {
    for (const jobId of jobs.keys()) markDone(jobId);
    if (finished.size === total) return;
    const failed: { id: string; reason: string }[] = [];
    let lost = 0;
    let live = 0;
    for (const [jobId, { task }] of jobs) {
      if (finished.has(jobId)) continue;
      const { job, state } = await jobAndState(queue, jobId);
      if (state === 'failed' && job) {
        failed.push({ id: task.id, reason: job.failedReason });
        if (!reported.has(jobId)) {
          reported.add(jobId);
          o.log(`FAILED ${task.id} after ${job.attemptsMade} attempt(s): ${job.failedReason}`);
        }
      } else if (state === 'unknown' || (state === 'completed' && !o.isDone(plan, task))) lost++;
      else live++;
    }
    lostPolls = lost ? lostPolls + 1 : 0;
    if (lost && lostPolls >= 2) {
      throw new Error(
        `${lost} unfinished task(s) of ${plan.name} are no longer in the queue (did Redis restart without persistence, ` +
          `or were its jobs cleaned?). Finished results are safe in ${plan.runDir}; run again with --resume to rebuild the queue.`,
      );
    }
    if (!live && !lost && failed.length) {
      throw new Error(`${failed.length} task(s) of ${plan.name} failed:\n${failed.map((f) => `  ${f.id}: ${f.reason}`).join('\n')}`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, o.pollMs ?? SUBMIT_DEFAULTS.pollMs);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    wake = undefined;
  }
}

/** Opens the task queue (and its event stream) on a parsed connection. */
export function openQueue(conn: QueueConnection): { queue: TaskQueue; events: QueueEvents } {
  const queue = openTaskQueue(conn);
  const events = new QueueEvents(QUEUE_NAME, { connection: conn.options });
  return { queue, events };
}

/** One line for a finished task: the metrics of a sweep point, else where the output went. */
function describeTask(plan: Plan, task: TaskSpec): string {
  if (task.kind === 'evaluate') {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(plan.runDir, task.outDir, RESULT_FILE), 'utf8')) as PointResult;
      const name = r.metric === 'fvd' ? 'FVD' : 'FVD(proxy)';
      return `${task.id}: ${name} ${r.fvd.toFixed(2)}, KVD ${r.kvd.toFixed(4)} (${r.wall_s.toFixed(1)} s)`;
    } catch {
      // fall through to the folder
    }
  }
  return `${task.id} -> ${task.outDir}`;
}

/**
 * `lvdm run EXP.yaml --queue URL [--resume]`: enqueues the plan and follows it to the end. Workers
 * (`lvdm worker`) do the work; results land in plan.runDir as with the local runner.
 */
export async function submitAndFollow(plan: Plan, opts: { url: string; resume: boolean; log: (m: string) => void; attempts?: number; backoffMs?: number; pollMs?: number }): Promise<void> {
  const conn = parseQueueUrl(opts.url);
  const log = (m: string): void => opts.log(conn.redact(m));
  await checkConnection(conn);
  const { queue, events } = openQueue(conn);
  logErrors(queue, conn, log);
  logErrors(events, conn, log);
  try {
    await queue.waitUntilReady();
    writePlan(plan); // for `lvdm report RUN_DIR`, as the local runner does
    log(`queue ${conn.display}: submitting ${plan.name} (run folder ${plan.runDir}; workers must see it at this path)`);
    await submitPlan(queue, plan, { resume: opts.resume, isDone: outputDone, log, attempts: opts.attempts ?? conn.jobs.attempts, backoffMs: opts.backoffMs ?? conn.jobs.backoffMs });
    await followPlan(queue, events, plan, { isDone: outputDone, log, pollMs: opts.pollMs, describe: describeTask });
  } catch (e) {
    throw new Error(conn.redact((e as Error).message));
  } finally {
    await events.close();
    await queue.close();
  }
}
