/**
 * WorkerClipDataset: any configured data source opened inside worker threads, so decoding
 * (ffmpeg pipes, JPEG/PNG decoding, resizing) runs beside a training loop whose tfjs work
 * blocks the main thread. Results are the same as in-process: each `get(index, rng)` sends the
 * rng state to a worker and copies the advanced state back.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Rng, RngState } from '../lib/nn/rng';
import type { ClipDataset, ClipSample } from './types';
import type { DataSourceOptions } from './index';

/** Options that can cross into a worker (no functions). */
export type WorkerSourceOptions = Omit<DataSourceOptions, 'warn'>;

export interface DatasetMeta {
  name: string;
  size: number;
  frames: number;
  height: number;
  width: number;
  numClasses?: number;
  classNames?: string[];
}

export type WorkerRequest = { type: 'get'; id: number; index: number; rng: RngState } | { type: 'close' };
export type WorkerReply =
  | { type: 'ready'; meta: DatasetMeta }
  | { type: 'warn'; message: string }
  | { type: 'sample'; id: number; sample: ClipSample; rng: RngState }
  | { type: 'error'; id: number; message: string };

interface Pending {
  resolve: (s: ClipSample) => void;
  reject: (e: Error) => void;
  rng: Rng;
}

function startWorker(options: WorkerSourceOptions): Worker {
  const entry = path.join(__dirname, `worker-entry${path.extname(__filename)}`);
  if (path.extname(__filename) === '.ts') {
    // Running from TypeScript sources: register tsx in the worker before loading the entry.
    const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(entry)});`;
    return new Worker(code, { eval: true, workerData: { options } });
  }
  return new Worker(entry, { workerData: { options } });
}

export class WorkerClipDataset implements ClipDataset {
  readonly name: string;
  readonly size: number;
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  readonly numClasses?: number;
  readonly classNames?: readonly string[];
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private turn = 0;

  private constructor(meta: DatasetMeta, workers: Worker[], warn: (m: string) => void) {
    this.name = meta.name;
    this.size = meta.size;
    this.frames = meta.frames;
    this.height = meta.height;
    this.width = meta.width;
    this.numClasses = meta.numClasses;
    this.classNames = meta.classNames;
    this.workers = workers;
    for (const w of workers) {
      w.on('message', (m: WorkerReply) => {
        if (m.type === 'warn') warn(m.message);
        else if (m.type === 'sample' || m.type === 'error') {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (m.type === 'sample') {
            p.rng.setState(m.rng);
            p.resolve(m.sample);
          } else {
            p.reject(new Error(m.message));
          }
        }
      });
      w.on('error', (e) => this.failAll(e));
    }
  }

  /** Open the source in `workers` threads (default 1); rejects with the source's own error. */
  static async open(options: DataSourceOptions, workers = 1): Promise<WorkerClipDataset> {
    const { warn, ...plain } = options;
    const say = warn ?? ((m: string) => console.warn(`lvdm data: ${m}`));
    const started = Array.from({ length: Math.max(1, workers) }, () => startWorker(plain));
    try {
      const metas = await Promise.all(
        started.map(
          (w) =>
            new Promise<DatasetMeta>((resolve, reject) => {
              const onMsg = (m: WorkerReply | { type: 'fatal'; message: string }): void => {
                if (m.type === 'ready') {
                  w.off('message', onMsg);
                  resolve(m.meta);
                } else if (m.type === 'fatal') {
                  reject(new Error(m.message));
                } else if (m.type === 'warn') {
                  say(m.message);
                }
              };
              w.on('message', onMsg);
              w.once('error', reject);
            }),
        ),
      );
      return new WorkerClipDataset(metas[0], started, say);
    } catch (e) {
      await Promise.all(started.map((w) => w.terminate()));
      throw e;
    }
  }

  get(index: number, rng: Rng): Promise<ClipSample> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject, rng });
      const w = this.workers[this.turn++ % this.workers.length];
      w.postMessage({ type: 'get', id, index, rng: rng.state() } satisfies WorkerRequest);
    });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.failAll(new Error(`${this.name}: closed`));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
