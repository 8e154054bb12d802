/** `lvdm queue status|retry|clean`: what the task queue holds, per experiment. */
import { Job, JobType } from 'bullmq';
import { TaskJobData, TaskJobProgress, TaskJobResult, TaskQueue } from './jobs';
type TaskJob = Job<TaskJobData, TaskJobResult>;

export interface FailedJob {
  id: string;
  task: string;
  experiment: string;
  attempts: number;
  error: string;
}

export interface QueueStatus {
  /** Ready to run (including prioritised jobs). */
  waiting: number;
  /** Parked until their dependencies are done. */
  blocked: number;
  /** Waiting for a retry after a failed attempt. */
  retrying: number;
  active: number;
  done: number;
  failed: number;
  failedJobs: FailedJob[];
  /** Per experiment: the same counts. */
  experiments: Record<string, { waiting: number; blocked: number; retrying: number; active: number; done: number; failed: number }>;
}

const STATES: JobType[] = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'];

async function jobsIn(queue: TaskQueue, types: JobType[], experiment?: string): Promise<{ job: TaskJob; type: JobType }[]> {
  const out: { job: TaskJob; type: JobType }[] = [];
  for (const type of types) {
    for (const job of await queue.getJobs([type])) {
      if (job && (!experiment || job.data.experiment === experiment)) out.push({ job, type });
    }
  }
  return out;
}

function bucket(job: TaskJob, type: JobType): 'waiting' | 'blocked' | 'retrying' | 'active' | 'done' | 'failed' {
  if (type === 'active') return 'active';
  if (type === 'completed') return 'done';
  if (type === 'failed') return 'failed';
  if (type === 'delayed') {
    const p: unknown = job.progress;
    const tp = p && typeof p === 'object' ? (p as TaskJobProgress) : {};
    return tp.waitingFor || tp.heldBy ? 'blocked' : 'retrying';
  }
  return 'waiting';
}

export async function queueStatus(queue: TaskQueue, experiment?: string): Promise<QueueStatus> {
  const st: QueueStatus = { waiting: 0, blocked: 0, retrying: 0, active: 0, done: 0, failed: 0, failedJobs: [], experiments: {} };
  for (const { job, type } of await jobsIn(queue, STATES, experiment)) {
    const b = bucket(job, type);
    st[b]++;
    const e = (st.experiments[job.data.experiment] ??= { waiting: 0, blocked: 0, retrying: 0, active: 0, done: 0, failed: 0 });
    e[b]++;
    if (b === 'failed') {
      st.failedJobs.push({ id: job.id ?? '', task: job.name, experiment: job.data.experiment, attempts: job.attemptsMade, error: job.failedReason });
    }
  }
  return st;
}

export function formatStatus(st: QueueStatus, display: string): string {
  const row = (name: string, c: Omit<QueueStatus, 'failedJobs' | 'experiments'> | QueueStatus['experiments'][string]): string =>
    `${name.padEnd(24)} ${[c.waiting, c.blocked, c.retrying, c.active, c.done, c.failed].map((n) => String(n).padStart(9)).join('')}`;
  const lines = [`queue ${display}`, `${'experiment'.padEnd(24)} ${['waiting', 'blocked', 'retrying', 'active', 'done', 'failed'].map((h) => h.padStart(9)).join('')}`];
  for (const [name, c] of Object.entries(st.experiments).sort(([a], [b]) => a.localeCompare(b))) lines.push(row(name, c));
  lines.push(row('total', st));
  if (st.failedJobs.length) {
    lines.push('', 'failed jobs:');
    for (const f of st.failedJobs) lines.push(`  ${f.experiment} ${f.task} (${f.attempts} attempt(s)): ${f.error}`);
  }
  return lines.join('\n');
}

/**
 * Moves failed jobs back to the queue; returns how many. A job's failed dependencies go first, so
 * that a dependent (failed only because its input failed) finds its input queued, not failed.
 */
export async function retryFailed(queue: TaskQueue, experiment?: string): Promise<number> {
  const left = new Map((await jobsIn(queue, ['failed'], experiment)).map(({ job }) => [job.id ?? '', job]));
  const n = left.size;
  while (left.size) {
    const ready = [...left.values()].filter((j) => !j.data.deps.some((d) => left.has(d.jobId)));
    for (const job of ready.length ? ready : [...left.values()]) {
      await job.retry('failed');
      left.delete(job.id ?? '');
    }
  }
  return n;
}

/**
 * Removes an experiment's jobs (all experiments when none is named). An experiment with
 * unfinished jobs (waiting, blocked, retrying, active) is refused unless `force`; active jobs are
 * never removed.
 */
export async function cleanJobs(queue: TaskQueue, experiment: string | undefined, force: boolean): Promise<number> {
  const unfinished = await jobsIn(queue, ['waiting', 'prioritized', 'delayed', 'active'], experiment);
  if (unfinished.length && !force) {
    throw new Error(`${experiment ?? 'the queue'} still has ${unfinished.length} unfinished job(s); wait for them, or use --force to remove all but the active ones`);
  }
  const types: JobType[] = force ? ['waiting', 'prioritized', 'delayed', 'completed', 'failed'] : ['completed', 'failed'];
  let n = 0;
  for (const { job } of await jobsIn(queue, types, experiment)) {
    await job.remove();
    n++;
  }
  return n;
}
