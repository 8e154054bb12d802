/**
 * A local worker process of `lvdm run --workers N` (forked by local.ts): initialises the backend
 * once, then runs the tasks the parent sends, one at a time, reporting progress and log lines over
 * IPC. It exits when the parent goes away, so a killed run leaves no workers behind: when its IPC
 * channel closes, or, during a task, at the next progress or log message after it has been
 * re-parented (the channel's close is an event, and a long task's loop of resolved promises
 * never lets the event loop run to see it: a killed parent's workers ran on to the end of their
 * tasks).
 */
import { initBackend } from '../backend';
import { runTask } from './execute';
import { findTask, readPlan } from './plan';
import type { ParentMessage, WorkerMessage } from './local';

const parent = process.ppid;

const send = (m: WorkerMessage): void => {
  if (process.ppid !== parent) process.exit(0); // process.ppid is read live (getppid)
  if (process.send) process.send(m);
};

process.on('disconnect', () => process.exit(0));

let queue: Promise<void> = initBackend({ quiet: true }).then(() => send({ type: 'ready' }));

process.on('message', (m: ParentMessage) => {
  if (m.type !== 'run') return;
  queue = queue.then(async () => {
    try {
      const plan = readPlan(m.runDir);
      await runTask(plan, findTask(plan, m.taskId), {
        resume: m.resume,
        log: (message) => send({ type: 'log', taskId: m.taskId, message }),
        onProgress: (fraction, label) => send({ type: 'progress', taskId: m.taskId, fraction, label }),
      });
      send({ type: 'done', taskId: m.taskId });
    } catch (e) {
      const err = e as Error;
      send({ type: 'error', taskId: m.taskId, message: process.env.LVDM_DEBUG ? String(err.stack) : err.message });
    }
  });
});
