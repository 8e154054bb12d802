/** `lvdm worker --queue redis://...`: runs experiment tasks from the BullMQ queue (lib/queue). */
import * as os from 'node:os';
import { Command } from '../types';
import { int, requireStr, str } from '../args';
import { checkConnection, parseQueueUrl } from '../../queue/connection';
import { outputDone } from '../../queue/done';
import { parseRootMap } from '../../queue/jobs';
import { threadPool } from '../../queue/thread-runner';
import { WORKER_DEFAULTS, startQueueWorker } from '../../queue/worker';

export const command: Command = {
  name: 'worker',
  summary: 'run experiment tasks (stages, sweep points) from a Redis job queue, on any machine',
  description: `Takes the tasks that \`lvdm run EXP.yaml --queue URL\` enqueued and runs them. Every worker
must see the run folder at the path the submitting machine used (a shared file system mounted at
the same absolute path), or map it with --root SUBMIT_PATH=LOCAL_PATH. Outputs are written once,
atomically, under their content keys; a task whose output exists is never redone.

The password may be given in the URL or in the environment variable LVDM_REDIS_PASSWORD (keeps it
out of the process list); it is never printed. rediss:// connects with TLS.
Stop with Ctrl-C: the worker finishes its running tasks first (a second Ctrl-C exits at once; the
tasks are then taken over by other workers after the lock timeout).

Example:
  LVDM_REDIS_PASSWORD=... lvdm worker --queue redis://redis.lab:6379/0 --concurrency 2`,
  options: {
    queue: { type: 'string', help: 'Redis URL: redis://[:password@]host:port[/db] or rediss://... (TLS)' },
    concurrency: { type: 'string', help: 'tasks run at once by this worker', default: String(WORKER_DEFAULTS.concurrency) },
    root: { type: 'string', help: 'map the submitter\'s run-folder prefix to a local one: FROM=TO' },
    'lock-ms': { type: 'string', help: 'job lock; a killed worker\'s task is taken over after it expires', default: String(WORKER_DEFAULTS.lockMs) },
    'stalled-ms': { type: 'string', help: 'how often to look for stalled jobs', default: String(WORKER_DEFAULTS.stalledMs) },
    'max-stalled': { type: 'string', help: 'stalls allowed per job before it is failed', default: String(WORKER_DEFAULTS.maxStalled) },
    'dep-poll-ms': { type: 'string', help: 'fallback re-check period of a task waiting for its inputs', default: String(WORKER_DEFAULTS.depPollMs) },
    name: { type: 'string', help: 'worker name shown in job records (default host:pid)' },
  },
  async run(values) {
    const conn = parseQueueUrl(requireStr(values, 'queue'));
    const rootText = str(values, 'root');
    const positive = (k: string): number => {
      const n = int(values, k)!;
      if (n < 1) throw new Error(`--${k}: expected a positive integer, got ${n}`);
      return n;
    };
    const name = str(values, 'name') ?? `${os.hostname()}:${process.pid}`;
    const log = (m: string): void => console.log(`[worker ${name} ${new Date().toISOString().slice(11, 19)}] ${m}`);
    await checkConnection(conn);
    const pool = threadPool();
    const w = await startQueueWorker({
      conn,
      runner: pool.runner,
      isDone: outputDone,
      concurrency: positive('concurrency'),
      root: rootText ? parseRootMap(rootText) : undefined,
      lockMs: positive('lock-ms'),
      stalledMs: positive('stalled-ms'),
      maxStalled: positive('max-stalled'),
      depPollMs: positive('dep-poll-ms'),
      name,
      log,
    });
    log(`waiting for tasks on ${conn.display}`);
    return new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (): void => {
        if (stopping) process.exit(130);
        stopping = true;
        log('stopping after the running tasks (Ctrl-C again to exit now)');
        w.close()
          .then(() => pool.close())
          .then(
            () => resolve(0),
            (e: Error) => {
              console.error(conn.redact(e.message));
              resolve(1);
            },
          );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
