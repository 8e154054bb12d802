/**
 * What a queued task looks like: the BullMQ queue name, job ids derived from content keys (so
 * submitting the same plan twice adds nothing), the job payload, and the plan file every worker
 * reads from the shared run folder. A job carries paths and ids only, never the Redis URL.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Job, JobState, Queue } from 'bullmq';
import { writeJsonAtomic } from '../io/atomic';
import type { Plan, TaskKind, TaskSpec } from '../experiments/types';
import { QueueConnection } from './connection';

/** One BullMQ queue holds the tasks of every experiment (jobs are tagged by experiment). */
export const QUEUE_NAME = 'lvdm-tasks';

export type TaskQueue = Queue<TaskJobData, TaskJobResult>;

/** The task queue on a parsed connection (close it when done). */
export function openTaskQueue(conn: QueueConnection): TaskQueue {
  return new Queue<TaskJobData, TaskJobResult>(QUEUE_NAME, { connection: conn.options });
}

/**
 * A job and its state, read state first: a job seen as 'failed' was fetched after it failed, so it
 * carries its failedReason (reading the job first could return a snapshot from before it failed).
 * A job removed in between reads as 'unknown'.
 */
export async function jobAndState(
  queue: TaskQueue,
  jobId: string,
): Promise<{ job: Job<TaskJobData, TaskJobResult> | undefined; state: JobState | 'unknown' }> {
  const state = await queue.getJobState(jobId);
  if (state === 'unknown') return { job: undefined, state };
  const job = await queue.getJob(jobId);
  return job ? { job, state } : { job: undefined, state: 'unknown' };
}

/** The payload of one task job (JSON). */
export interface TaskJobData {
  v: 1;
  experiment: string;
  /** The run folder as the submitting machine sees it (workers may map it with --root). */
  runDir: string;
  /** The plan file, relative to runDir. */
  planFile: string;
  taskId: string;
  kind: TaskKind;
  key: string;
  /** Dependencies: task id and the job id that produces it. */
  deps: { id: string; jobId: string }[];
}

/** What a task job returns on completion (the job's return value). */
export interface TaskJobResult {
  outDir: string;
  /** True when the output already existed (nobody redid the work). */
  skipped: boolean;
  wall_s: number;
}

/** A job's progress: what it waits for, or how far it got. */
export interface TaskJobProgress {
  /** Dependencies (task ids) not done yet. */
  waitingFor?: string[];
  /** Another live worker holds this task's claim in the run folder. */
  heldBy?: string;
  /** The worker running it. */
  worker?: string;
  fraction?: number;
  label?: string;
}

function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 48) || 'x';
}

/** Short tag of a run folder: the same experiment in two run folders is two sets of jobs. */
export function runTag(runDir: string): string {
  return createHash('sha256').update(path.resolve(runDir)).digest('hex').slice(0, 8);
}

/**
 * The job id of a task: experiment, run folder and content key. BullMQ ignores `add` with an id it
 * already holds, which makes submission idempotent. (BullMQ ids may not contain ':'.)
 */
export function taskJobId(plan: Pick<Plan, 'name' | 'runDir'>, task: Pick<TaskSpec, 'kind' | 'key'>): string {
  return `${slug(plan.name)}.${runTag(plan.runDir)}.${task.kind}.${task.key.slice(0, 16)}`;
}

/**
 * Writes the plan into the run folder under a name derived from its content
 * (`queue/plan-<hash>.json`) and returns that path relative to the run folder.
 */
export function writePlanFile(plan: Plan): string {
  const text = JSON.stringify(plan);
  const rel = path.join('queue', `plan-${createHash('sha256').update(text).digest('hex').slice(0, 16)}.json`);
  const file = path.join(plan.runDir, rel);
  if (!fs.existsSync(file)) writeJsonAtomic(file, plan);
  return rel;
}

/** A path prefix rewrite for workers that mount the shared folder elsewhere (`--root FROM=TO`). */
export interface RootMap {
  from: string;
  to: string;
}

export function parseRootMap(text: string): RootMap {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) throw new Error(`--root: expected FROM=TO (absolute folders), got '${text}'`);
  const from = path.resolve(text.slice(0, i));
  const to = path.resolve(text.slice(i + 1));
  return { from, to };
}

/** Rewrites `p` when it lies under `map.from`. */
export function mapPath(p: string, map?: RootMap): string {
  if (!map) return p;
  if (p === map.from) return map.to;
  return p.startsWith(map.from + path.sep) ? map.to + p.slice(map.from.length) : p;
}

/** Rewrites every string in a JSON value that is a path under `map.from`. */
function mapDeep<T>(value: T, map: RootMap): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return mapPath(v, map);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** Reads the plan of a job from the shared folder (paths rewritten by `map`). */
export function readPlanFile(data: TaskJobData, map?: RootMap): Plan {
  const runDir = mapPath(data.runDir, map);
  const file = path.join(runDir, data.planFile);
  if (!fs.existsSync(file)) {
    throw new Error(
      `plan file ${file} not found: workers must see the run folder at the same path as the submitting machine ` +
        `(a shared file system), or map it with --root ${data.runDir}=LOCAL_PATH`,
    );
  }
  const plan = JSON.parse(fs.readFileSync(file, 'utf8')) as Plan;
  return map ? { ...mapDeep(plan, map), runDir } : { ...plan, runDir };
}

/** Builds the job payloads of a plan, keyed by job id (topological order kept). */
export function planJobs(plan: Plan, planFile: string): Map<string, { task: TaskSpec; data: TaskJobData }> {
  const byId = new Map(plan.tasks.map((t) => [t.id, t]));
  const jobs = new Map<string, { task: TaskSpec; data: TaskJobData }>();
  for (const task of plan.tasks) {
    const jobId = taskJobId(plan, task);
    if (jobs.has(jobId)) continue; // two ids with one content key: one output, one job
    const deps = task.deps.map((id) => {
      const dep = byId.get(id);
      if (!dep) throw new Error(`plan ${plan.name}: task '${task.id}' depends on unknown task '${id}'`);
      return { id, jobId: taskJobId(plan, dep) };
    });
    jobs.set(jobId, {
      task,
      data: { v: 1, experiment: plan.name, runDir: plan.runDir, planFile, taskId: task.id, kind: task.kind, key: task.key, deps },
    });
  }
  return jobs;
}

/** Depth of every task in the DAG (0 for tasks without deps): used as the job priority. */
export function taskDepths(plan: Plan): Map<string, number> {
  const depth = new Map<string, number>();
  for (const t of plan.tasks) depth.set(t.id, t.deps.reduce((m, d) => Math.max(m, (depth.get(d) ?? 0) + 1), 0));
  return depth;
}
