/**
 * The default task runner of a queue worker: `runTask` in a worker thread. Tensor work is long and
 * synchronous; on the main thread it would starve the timers that renew the job's lock, and BullMQ
 * would take a busy worker for a dead one. Threads are reused from task to task (one per running
 * task) and die with their process, so a SIGKILLed worker leaves no orphan behind.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Plan } from '../experiments/types';
import { TaskRunner } from './worker';

export interface ThreadRequest {
  plan: Plan;
  taskId: string;
}

export type ThreadMessage =
  | { type: 'log'; text: string }
  | { type: 'progress'; fraction: number; label: string }
  | { type: 'done' }
  | { type: 'error'; message: string; stack?: string };

// The thread compiles TypeScript through tsx like bin/lvdm.js does.
const BOOT = `const { workerData } = require('node:worker_threads');
require(workerData.tsx).register();
require(workerData.entry);`;

export interface ThreadPool {
  runner: TaskRunner;
  /** Ends the idle threads. */
  close(): Promise<void>;
}

export function threadPool(): ThreadPool {
  const entry = path.join(__dirname, 'task-thread.ts');
  const tsx = require.resolve('tsx/cjs/api');
  const idle: Worker[] = [];
  const runner: TaskRunner = (plan, task, ctx) =>
    new Promise<void>((resolve, reject) => {
      const thread = idle.pop() ?? new Worker(BOOT, { eval: true, workerData: { tsx, entry } });
      thread.ref();
      let settled = false;
      const finish = (err: Error | undefined, reuse: boolean): void => {
        if (settled) return;
        settled = true;
        thread.off('message', onMessage);
        thread.off('error', onError);
        thread.off('exit', onExit);
        if (reuse) {
          thread.unref();
          idle.push(thread);
        } else void thread.terminate();
        if (err) reject(err);
        else resolve();
      };
      const onMessage = (m: ThreadMessage): void => {
        if (m.type === 'log') ctx.log(m.text);
        else if (m.type === 'progress') ctx.onProgress({ fraction: m.fraction, label: m.label });
        else if (m.type === 'done') finish(undefined, true);
        else {
          const err = new Error(m.message);
          if (m.stack) err.stack = m.stack;
          finish(err, false); // a fresh thread for the next task: no state left from a failure
        }
      };
      const onError = (e: Error): void => finish(e, false);
      const onExit = (code: number): void => finish(new Error(`${task.id}: task thread exited with code ${code} before finishing`), false);
      thread.on('message', onMessage);
      thread.on('error', onError);
      thread.on('exit', onExit);
      const req: ThreadRequest = { plan, taskId: task.id };
      thread.postMessage(req);
    });
  return {
    runner,
    close: async () => {
      await Promise.all(idle.splice(0).map((t) => t.terminate()));
    },
  };
}
