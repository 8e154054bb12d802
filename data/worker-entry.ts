/** Worker-thread side of WorkerClipDataset: opens the source and answers get requests. */
import { parentPort, workerData } from 'node:worker_threads';
import { Rng } from '../lib/nn/rng';
import { openClipDataset } from './index';
import type { ClipDataset } from './types';
import type { WorkerReply, WorkerRequest, WorkerSourceOptions } from './worker';

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('worker-entry must run in a worker thread');
  const send = (m: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  let ds: ClipDataset;
  try {
    const options = (workerData as { options: WorkerSourceOptions }).options;
    ds = openClipDataset({ ...options, warn: (message) => send({ type: 'warn', message }) });
  } catch (e) {
    port.postMessage({ type: 'fatal', message: (e as Error).message });
    return;
  }
  send({
    type: 'ready',
    meta: {
      name: ds.name, size: ds.size, frames: ds.frames, height: ds.height, width: ds.width,
      numClasses: ds.numClasses, classNames: ds.classNames ? [...ds.classNames] : undefined,
    },
  });
  port.on('message', (m: WorkerRequest) => {
    if (m.type !== 'get') return;
    const rng = Rng.fromState(m.rng);
    ds.get(m.index, rng).then(
      (sample) => {
        const buf = sample.video.byteOffset === 0 && sample.video.byteLength === sample.video.buffer.byteLength
          ? sample.video
          : sample.video.slice();
        send({ type: 'sample', id: m.id, sample: { ...sample, video: buf }, rng: rng.state() }, [buf.buffer as ArrayBuffer]);
      },
      (e: Error) => send({ type: 'error', id: m.id, message: e.message }),
    );
  });
}

main();
