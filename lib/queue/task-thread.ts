/**
 * Entry of a worker thread that runs tasks (`runTask`) for a queue worker, off the main thread so
 * that BullMQ keeps renewing the job's lock while tensors are computed. The thread is kept for the
 * next task (the backend initialises once). Messages: `run` in; log lines, progress, then `done`
 * or `error` out.
 */
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../backend';
import { runTask } from '../experiments/execute';
import type { ThreadMessage, ThreadRequest } from './thread-runner';

const port = parentPort;
if (!port) throw new Error('task-thread.ts runs only as a worker thread');
const post = (m: ThreadMessage): void => port.postMessage(m);

async function run(req: ThreadRequest): Promise<void> {
  const task = req.plan.tasks.find((t) => t.id === req.taskId);
  if (!task) throw new Error(`task '${req.taskId}' is not in the plan`);
  await initBackend({ quiet: true });
  await runTask(req.plan, task, {
    log: (text: string) => post({ type: 'log', text }),
    onProgress: (fraction: number, label: string) => post({ type: 'progress', fraction, label }),
  });
}

port.on('message', (req: ThreadRequest) => {
  run(req).then(
    () => post({ type: 'done' }),
    (e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined }),
  );
});
