/** `lvdm queue status|retry|clean --queue URL`: inspect and manage the experiment task queue. */
import { Command } from '../types';
import { flag, requireStr, str } from '../args';
import { checkConnection, logErrors, parseQueueUrl } from '../../queue/connection';
import { cleanJobs, formatStatus, queueStatus, retryFailed } from '../../queue/admin';
import { openTaskQueue } from '../../queue/jobs';

const ACTIONS = ['status', 'retry', 'clean'] as const;

export const command: Command = {
  name: 'queue',
  summary: 'status | retry | clean: the Redis job queue of `lvdm run --queue` and `lvdm worker`',
  description: `Actions:
  status   jobs waiting (ready), blocked (waiting for their inputs), retrying (after a failed
           attempt), active, done and failed, per experiment, and every failed job with its error
  retry    moves failed jobs back to the queue
  clean    removes a finished experiment's jobs (its results stay in the run folder); --force also
           removes its unfinished jobs (never the active ones)

The password may be given in the URL or in LVDM_REDIS_PASSWORD; it is never printed.

Examples:
  lvdm queue status --queue redis://redis.lab:6379/0
  lvdm queue retry --queue redis://redis.lab:6379/0 --experiment long-sky
  lvdm queue clean --queue redis://redis.lab:6379/0 --experiment long-sky`,
  positionals: true,
  options: {
    queue: { type: 'string', help: 'Redis URL: redis://[:password@]host:port[/db] or rediss://... (TLS)' },
    experiment: { type: 'string', help: 'only the jobs of this experiment (its name)' },
    json: { type: 'boolean', help: 'status as JSON' },
    force: { type: 'boolean', help: 'clean: also remove unfinished (not active) jobs' },
  },
  async run(values, positionals) {
    const action = positionals[0];
    if (positionals.length !== 1 || !(ACTIONS as readonly string[]).includes(action)) {
      throw new Error(`expected one action: ${ACTIONS.join(' | ')}, got '${positionals.join(' ')}'`);
    }
    const conn = parseQueueUrl(requireStr(values, 'queue'));
    const experiment = str(values, 'experiment');
    await checkConnection(conn);
    const queue = openTaskQueue(conn);
    logErrors(queue, conn, (m) => console.error(m));
    try {
      if (action === 'status') {
        const st = await queueStatus(queue, experiment);
        console.log(flag(values, 'json') ? JSON.stringify({ queue: conn.display, ...st }, null, 2) : formatStatus(st, conn.display));
      } else if (action === 'retry') {
        console.log(`${await retryFailed(queue, experiment)} failed job(s) moved back to the queue`);
      } else {
        console.log(`${await cleanJobs(queue, experiment, flag(values, 'force'))} job(s) removed`);
      }
      return 0;
    } catch (e) {
      throw new Error(conn.redact((e as Error).message));
    } finally {
      await queue.close();
    }
  },
};
