/**
 * The job queue (lib/queue) on a real redis-server: URL parsing and redaction, dependencies,
 * idempotent submission, bounded retries, failed jobs in `lvdm queue status`, retry and clean.
 * Tasks here are stubs (injected runner) so the queue mechanics are tested in seconds; the real
 * smoke experiment through worker processes is in queue-smoke.test.ts.
 */
import { after, before, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../lib/io/atomic';
import type { Plan, TaskSpec } from '../lib/experiments/types';
import { parseQueueUrl } from '../lib/queue/connection';
import { outputDone } from '../lib/queue/done';
import { TaskQueue, jobAndState, mapPath, openTaskQueue, parseRootMap, planJobs, readPlanFile, taskJobId, writePlanFile } from '../lib/queue/jobs';
import { followPlan, submitPlan, openQueue } from '../lib/queue/submit';
import { QueueWorker, TaskRunner, startQueueWorker } from '../lib/queue/worker';
import { queueStatus } from '../lib/queue/admin';
import { claimTask } from '../lib/queue/claim';
import { main } from '../lib/cli/main';
import { runLvdm, tempDir } from './helpers';
import { RedisServer, startRedis } from './queue-helpers';

describe('queue URL', () => {
  test('parses host, port, db, user, password and TLS', () => {
    const c = parseQueueUrl('redis://alice:p%40ss@redis.lab:6380/3', {});
    assert.deepEqual(
      { host: c.options.host, port: c.options.port, db: c.options.db, username: c.options.username, password: c.options.password, tls: c.options.tls },
      { host: 'redis.lab', port: 6380, db: 3, username: 'alice', password: 'p@ss', tls: undefined },
    );
    assert.equal(c.display, 'redis://alice:***@redis.lab:6380/3');
    const t = parseQueueUrl('rediss://:pw@10.0.0.2', {});
    assert.deepEqual([t.options.port, t.options.db, t.options.tls, t.display], [6379, 0, { servername: '10.0.0.2' }, 'rediss://:***@10.0.0.2:6379/0']);
    const e = parseQueueUrl('redis://127.0.0.1:7000', { LVDM_REDIS_PASSWORD: 'from-env' });
    assert.equal(e.options.password, 'from-env');
    assert.equal(e.display, 'redis://:***@127.0.0.1:7000/0');
    assert.equal(parseQueueUrl('redis://h:1/2', {}).options.password, undefined);
    assert.deepEqual(parseQueueUrl('redis://h:1/2?attempts=5&backoff_ms=100', {}).jobs, { attempts: 5, backoffMs: 100 });
    assert.throws(() => parseQueueUrl('redis://h:1?retries=2', {}), /unknown URL parameter 'retries' \(known: attempts, backoff_ms\)/);
    assert.throws(() => parseQueueUrl('redis://h:1?attempts=0', {}), /'attempts': expected a positive integer, got '0'/);
  });

  test('redacts the password everywhere and names what was expected', () => {
    const c = parseQueueUrl('redis://:top%2Fsecret@h:1/0', {});
    assert.equal(c.redact('auth top/secret failed (top%2Fsecret)'), 'auth *** failed (***)');
    assert.throws(() => parseQueueUrl('http://:hunter2@h:1', {}), (e: Error) => /redis:\/\/ or rediss:\/\//.test(e.message) && !e.message.includes('hunter2'));
    assert.throws(() => parseQueueUrl('redis://:hunter2@h:1/x', {}), (e: Error) => /database must be a non-negative integer/.test(e.message) && !e.message.includes('hunter2'));
    assert.throws(() => parseQueueUrl('not a url :hunter2@', {}), (e: Error) => /expected redis:\/\//.test(e.message));
  });

  test('--root maps the submitter\'s run folder onto a local mount', () => {
    const m = parseRootMap('/mnt/lab=/data/lab');
    assert.equal(mapPath('/mnt/lab/runs/x', m), '/data/lab/runs/x');
    assert.equal(mapPath('/mnt/labx/runs', m), '/mnt/labx/runs');
    assert.throws(() => parseRootMap('/only'), /expected FROM=TO/);
  });

  test('a worker reads the job\'s plan from the shared folder, mapped with --root', () => {
    const share = tempDir('lvdm-share-');
    const submitDir = path.join(share, 'submit', 'run');
    const plan = stubPlan('mapped', submitDir, [['a', []]]);
    plan.resolved = { data: { root: path.join(share, 'submit', 'data') } };
    const rel = writePlanFile(plan);
    assert.equal(writePlanFile(plan), rel, 'content-addressed: written once');
    const data = [...planJobs(plan, rel).values()][0].data;
    assert.deepEqual([data.runDir, data.taskId, data.deps], [submitDir, 'a', []]);
    assert.ok(!JSON.stringify(data).includes('redis'), 'no URL in the job');
    fs.renameSync(path.join(share, 'submit'), path.join(share, 'local')); // this machine mounts it elsewhere
    assert.throws(() => readPlanFile(data), /workers must see the run folder at the same path.*--root/);
    const got = readPlanFile(data, parseRootMap(`${path.join(share, 'submit')}=${path.join(share, 'local')}`));
    assert.equal(got.runDir, path.join(share, 'local', 'run'));
    assert.deepEqual(got.resolved, { data: { root: path.join(share, 'local', 'data') } });
    fs.rmSync(share, { recursive: true, force: true });
  });

  test('a job that fails between reading its state and its data still reports its failure reason', async () => {
    // A fake queue whose job fails the moment its state is first read, as a worker may fail it
    // between two Redis round trips. Reading the job before its state returns the snapshot from
    // before the failure (no failedReason), which is how a submitter once printed "undefined".
    let failed = false;
    const readState = async (): Promise<string> => {
      failed = true;
      return 'failed';
    };
    const snapshot = () => ({ id: 'j', failedReason: failed ? 'disk full' : undefined, getState: readState });
    const queue = {
      getJobState: async (id: string) => (id === 'j' ? readState() : 'unknown'),
      getJob: async (id: string) => (id === 'j' ? snapshot() : undefined),
    } as unknown as TaskQueue;
    const { job, state } = await jobAndState(queue, 'j');
    assert.equal(state, 'failed');
    assert.equal(job?.failedReason, 'disk full');
    assert.deepEqual(await jobAndState(queue, 'gone'), { job: undefined, state: 'unknown' });
  });

  test('a live claim keeps other workers off a task; a stale one is taken over', async () => {
    const dir = tempDir('lvdm-claim-');
    const file = path.join(dir, 'task.lock');
    const a = claimTask(file, 'A', 60_000);
    assert.ok(!('heldBy' in a));
    const b = claimTask(file, 'B', 60_000);
    assert.ok('heldBy' in b && b.heldBy.worker === 'A');
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(file, old, old); // A died two minutes ago
    const c = claimTask(file, 'C', 60_000);
    assert.ok(!('heldBy' in c));
    a.release(); // not A's any more: leaves C's claim alone
    assert.ok(fs.existsSync(file));
    c.release();
    assert.ok(!fs.existsSync(file));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

/** `lvdm ARGS` in this process (the CLI's start-up costs seconds per child on a busy machine). */
async function lvdm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  const error = mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' ')));
  try {
    const code = await main(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}

/** A plan of stub tasks: a -> (b, c) -> d, and `bad` -> `after-bad`. */
function stubPlan(name: string, runDir: string, ids: [string, string[]][]): Plan {
  const tasks: TaskSpec[] = ids.map(([id, deps]) => {
    const key = `${name}-${id}`.padEnd(16, '0').replace(/[^a-z0-9]/gi, '0') + 'ffff';
    return { id, kind: 'sample', key, deps, config: {}, outDir: path.join('store', 'sample', key.slice(0, 16)) };
  });
  return { name, file: 'stub.yaml', runDir, resolved: {}, tasks };
}

/** Writes the output like runTask: a `.partial` folder, a DONE marker, then the rename. */
function stubRunner(record: string[], failing = new Set<string>()): TaskRunner {
  return async (plan, task) => {
    record.push(`start ${task.id}`);
    await new Promise((r) => setTimeout(r, 30));
    if (failing.has(task.id)) throw new Error(`stub failure in ${task.id}: disk full`);
    for (const d of task.deps) assert.ok(outputDone(plan, plan.tasks.find((t) => t.id === d)!), `${task.id} ran before its input ${d}`);
    const final = path.join(plan.runDir, task.outDir);
    const tmp = `${final}.partial`;
    fs.mkdirSync(tmp, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'out.txt'), task.id);
    writeJsonAtomic(path.join(tmp, 'DONE'), { id: task.id, key: task.key, kind: task.kind, wall_s: 0, finished: '' });
    fs.renameSync(tmp, final);
    record.push(`end ${task.id}`);
  };
}

describe('queue on redis-server', () => {
  let redis: RedisServer;
  const workers: QueueWorker[] = [];
  const dirs: string[] = [];
  const quiet = (): void => undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const w of workers) await w.close(true);
    await redis?.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const startWorkers = async (n: number, runner: TaskRunner): Promise<QueueWorker[]> => {
    const conn = parseQueueUrl(redis.url);
    const ws: QueueWorker[] = [];
    for (let i = 0; i < n; i++) {
      ws.push(await startQueueWorker({ conn, runner, isDone: outputDone, concurrency: 2, lockMs: 2000, stalledMs: 1000, depPollMs: 300, name: `w${i}`, log: quiet }));
    }
    workers.push(...ws);
    return ws;
  };

  test('runs a DAG in dependency order, each task once; resubmitting adds nothing', async () => {
    const runDir = tempDir('lvdm-q-dag-');
    dirs.push(runDir);
    const plan = stubPlan('dag', runDir, [
      ['a', []],
      ['b', ['a']],
      ['c', ['a']],
      ['d', ['b', 'c']],
    ]);
    const record: string[] = [];
    const ws = await startWorkers(2, stubRunner(record));
    const { queue, events } = openQueue(parseQueueUrl(redis.url));
    try {
      const lines: string[] = [];
      const first = await submitPlan(queue, plan, { resume: false, isDone: outputDone, log: quiet });
      assert.deepEqual(first, { done: 0, added: 4, queued: 0, retried: 0, failed: 0 });
      const again = await submitPlan(queue, plan, { resume: false, isDone: outputDone, log: quiet });
      assert.equal(again.added, 0, 'same content keys -> same job ids -> nothing new');
      await followPlan(queue, events, plan, { isDone: outputDone, log: (m) => lines.push(m), pollMs: 200 });
      assert.deepEqual(record.filter((r) => r.startsWith('start')).sort(), ['start a', 'start b', 'start c', 'start d']);
      assert.ok(record.indexOf('end a') < record.indexOf('start b') && record.indexOf('end c') < record.indexOf('start d'));
      assert.equal(lines.filter((l) => /^\[\d\/4\]/.test(l)).length, 4, lines.join('\n'));
      const done = await submitPlan(queue, plan, { resume: true, isDone: outputDone, log: quiet });
      assert.deepEqual([done.done, done.added], [4, 0]);
      const job = await queue.getJob(taskJobId(plan, plan.tasks[3]));
      assert.equal(await job?.getState(), 'completed');
    } finally {
      await events.close();
      await queue.close();
      for (const w of ws) await w.close();
    }
  });

  test('a throwing task is retried a bounded number of times, then failed with its error; status, retry, clean', async () => {
    const runDir = tempDir('lvdm-q-fail-');
    dirs.push(runDir);
    const plan = stubPlan('failing', runDir, [
      ['ok', []],
      ['bad', []],
      ['after-bad', ['bad']],
    ]);
    const record: string[] = [];
    const ws = await startWorkers(1, stubRunner(record, new Set(['bad'])));
    const conn = parseQueueUrl(redis.url);
    const { queue, events } = openQueue(conn);
    try {
      await submitPlan(queue, plan, { resume: false, isDone: outputDone, log: quiet, attempts: 2, backoffMs: 50 });
      await assert.rejects(followPlan(queue, events, plan, { isDone: outputDone, log: quiet, pollMs: 200 }), (e: Error) => {
        assert.match(e.message, /2 task\(s\) of failing failed/);
        assert.match(e.message, /bad: stub failure in bad: disk full/);
        assert.match(e.message, /after-bad: dependency 'bad' failed/);
        return true;
      });
      assert.equal(record.filter((r) => r === 'start bad').length, 2, 'attempts: 2');
      assert.ok(!record.includes('start after-bad'));

      const st = await queueStatus(queue, 'failing');
      assert.deepEqual([st.done, st.failed, st.waiting, st.active], [1, 2, 0, 0]);
      const cli = await runLvdm(['queue', 'status', '--queue', redis.url, '--experiment', 'failing']); // a real process, once
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /failing\s+0\s+0\s+0\s+0\s+1\s+2/);
      assert.match(cli.stdout, /failing bad \(2 attempt\(s\)\): stub failure in bad: disk full/);
      assert.ok(cli.stdout.includes(`redis://:***@127.0.0.1:${redis.port}/0`));
      assert.ok(!(cli.stdout + cli.stderr).includes(redis.password), 'password printed');

      const dirty = await lvdm(['queue', 'clean', '--queue', redis.url, '--experiment', 'failing']);
      assert.equal(dirty.code, 0, dirty.stderr); // finished (done or failed): clean is allowed
      assert.match(dirty.stdout, /3 job\(s\) removed/);
      assert.equal((await queueStatus(queue, 'failing')).failed, 0);

      // Resubmit; the fix arrives (the runner no longer fails); `queue retry` recovers.
      await submitPlan(queue, plan, { resume: false, isDone: outputDone, log: quiet, attempts: 1, backoffMs: 50 });
      await assert.rejects(followPlan(queue, events, plan, { isDone: outputDone, log: quiet, pollMs: 200 }), /bad: stub failure/);
      for (const w of ws) await w.close();
      await startWorkers(1, stubRunner(record));
      const retry = await lvdm(['queue', 'retry', '--queue', redis.url, '--experiment', 'failing']);
      assert.match(retry.stdout, /2 failed job\(s\) moved back/);
      await followPlan(queue, events, plan, { isDone: outputDone, log: quiet, pollMs: 200 });
      assert.ok(plan.tasks.every((t) => outputDone(plan, t)));

      const bad = await lvdm(['queue', 'frobnicate', '--queue', redis.url]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /expected one action: status \| retry \| clean, got 'frobnicate'/);
      const wrong = await lvdm(['queue', 'status', '--queue', `redis://:wrong-pw@127.0.0.1:${redis.port}/0`]);
      assert.notEqual(wrong.code, 0);
      assert.ok(!(wrong.stdout + wrong.stderr).includes('wrong-pw'), 'a wrong password is not printed either');
    } finally {
      await events.close();
      await queue.close();
    }
  });

  test('clean refuses an experiment with unfinished jobs unless --force', async () => {
    const runDir = tempDir('lvdm-q-clean-');
    dirs.push(runDir);
    const plan = stubPlan('unfinished', runDir, [['x', []]]);
    const queue = openTaskQueue(parseQueueUrl(redis.url));
    try {
      await queue.pause(); // no worker may take it
      await submitPlan(queue, plan, { resume: false, isDone: outputDone, log: quiet });
      const refused = await lvdm(['queue', 'clean', '--queue', redis.url, '--experiment', 'unfinished']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /unfinished still has 1 unfinished job\(s\).*--force/);
      const forced = await lvdm(['queue', 'clean', '--queue', redis.url, '--experiment', 'unfinished', '--force']);
      assert.match(forced.stdout, /1 job\(s\) removed/);
    } finally {
      await queue.resume();
      await queue.close();
    }
  });
});
