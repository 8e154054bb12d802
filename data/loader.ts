/**
 * ClipLoader: turns a ClipDataset into float32 training batches [B, T, H, W, 3] in [-1, 1].
 *
 * Order: a stream of dataset indices, epoch after epoch, each epoch a permutation drawn from
 * the loader seed and the epoch number; a batch takes the next B indices (crossing into the
 * next epoch when needed, so every batch is full). The Rng handed to `dataset.get` for the
 * sample at (epoch, position) is derived from (seed, epoch, position) alone, so the stream is
 * a pure function of the seed: `state()` is just (epoch, position) after the batches the
 * caller has consumed, and a run resumed with `setState` sees exactly the batches an
 * uninterrupted run would.
 *
 * Prefetch: up to `prefetch` batches are prepared ahead (their dataset reads started on the
 * next macrotask, so decoding in child processes or async I/O overlaps the caller's work).
 */
import { Rng, hashString } from '../lib/nn/rng';
import type { ClipDataset, ClipSample } from './types';
import { floatToUint8 } from '../lib/io/image';

export interface LoaderState {
  version: 1;
  seed: number;
  /** Epoch of the next sample to be served. */
  epoch: number;
  /** Position within that epoch's order of the next sample to be served. */
  position: number;
  /** Batches served so far. */
  batches: number;
  /** Dataset size the state refers to (checked on setState). */
  datasetSize: number;
  shuffle: boolean;
}

export interface ClipBatch {
  /** [B, T, H, W, 3] float32 in [-1, 1]. */
  video: Float32Array;
  batchSize: number;
  frames: number;
  height: number;
  width: number;
  /** Class index per clip, when the dataset has classes. */
  labels?: Int32Array;
  /** Caption per clip ('' where a clip has none), when any clip has one. */
  captions?: string[];
  keys: string[];
  /** Epoch of the batch's first sample. */
  epoch: number;
}

export interface ClipLoaderOptions {
  batchSize: number;
  seed: number;
  /** Shuffle each epoch (default true); false serves indices 0..N-1 in order. */
  shuffle?: boolean;
  /** Batches prepared ahead of the caller (default 2; 0 disables prefetch). */
  prefetch?: number;
  /** Concurrent `dataset.get` calls while preparing one batch (default 4). */
  concurrency?: number;
}

/** uint8 [0, 255] -> float32 [-1, 1]: x / 127.5 - 1. */
export function toUnitRange(u8: Uint8Array, out?: Float32Array, offset = 0): Float32Array {
  const o = out ?? new Float32Array(u8.length);
  for (let i = 0; i < u8.length; i++) o[offset + i] = u8[i] / 127.5 - 1;
  return o;
}

/** float [-1, 1] -> uint8 [0, 255] with rounding and clipping (inverse of toUnitRange). */
export function fromUnitRange(x: ArrayLike<number>): Uint8Array {
  return floatToUint8(x, -1, 1);
}

interface Cursor {
  epoch: number;
  position: number;
}

interface Pending {
  promise: Promise<ClipBatch>;
  end: Cursor;
}

export class ClipLoader {
  readonly dataset: ClipDataset;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly prefetch: number;
  readonly concurrency: number;
  /** Cursor after the last batch handed to the caller. */
  private served: Cursor = { epoch: 0, position: 0 };
  /** Cursor after the last batch scheduled (served + queued). */
  private planned: Cursor = { epoch: 0, position: 0 };
  private batches = 0;
  private queue: Pending[] = [];
  private orderCache: { epoch: number; order: number[] } | null = null;

  constructor(dataset: ClipDataset, opts: ClipLoaderOptions) {
    if (dataset.size < 1) throw new Error(`ClipLoader: data set '${dataset.name}' is empty (size ${dataset.size})`);
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new Error(`ClipLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    if (!Number.isFinite(opts.seed)) throw new Error(`ClipLoader: seed must be finite, got ${opts.seed}`);
    this.dataset = dataset;
    this.batchSize = opts.batchSize;
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    this.prefetch = Math.max(0, Math.floor(opts.prefetch ?? 2));
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  }

  /** Epoch of the next sample to be served. */
  get epoch(): number {
    return this.served.epoch;
  }

  /** Index order of one epoch (a seeded permutation, or identity without shuffle). */
  order(epoch: number): number[] {
    if (this.orderCache && this.orderCache.epoch === epoch) return this.orderCache.order;
    const n = this.dataset.size;
    const order = this.shuffle
      ? new Rng(mixSeed(this.seed, hashString('epoch'), epoch)).permutation(n)
      : Array.from({ length: n }, (_, i) => i);
    this.orderCache = { epoch, order };
    return order;
  }

  /** The Rng given to dataset.get for the sample at (epoch, position). */
  sampleRng(epoch: number, position: number): Rng {
    return new Rng(mixSeed(this.seed, mixSeed(hashString('sample'), epoch, 0), position));
  }

  async next(): Promise<ClipBatch> {
    if (this.queue.length === 0) this.schedule(false);
    const head = this.queue.shift() as Pending;
    this.served = head.end;
    this.batches++;
    while (this.queue.length < this.prefetch) this.schedule(true);
    return head.promise;
  }

  state(): LoaderState {
    return {
      version: 1,
      seed: this.seed,
      epoch: this.served.epoch,
      position: this.served.position,
      batches: this.batches,
      datasetSize: this.dataset.size,
      shuffle: this.shuffle,
    };
  }

  /** Continue from a state saved by `state()`; batches already prefetched are dropped. */
  setState(s: LoaderState): void {
    if (s.version !== 1) throw new Error(`ClipLoader.setState: unsupported state version ${String(s.version)}`);
    if (s.datasetSize !== this.dataset.size) {
      throw new Error(
        `ClipLoader.setState: state was saved for a data set of ${s.datasetSize} items, ` +
          `'${this.dataset.name}' has ${this.dataset.size}`,
      );
    }
    if (s.seed !== this.seed || s.shuffle !== this.shuffle) {
      throw new Error(
        `ClipLoader.setState: state has seed ${s.seed} / shuffle ${s.shuffle}, loader has seed ${this.seed} / shuffle ${this.shuffle}`,
      );
    }
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.position) || s.position < 0 || s.position > s.datasetSize) {
      throw new Error(`ClipLoader.setState: bad cursor epoch ${s.epoch}, position ${s.position}`);
    }
    this.queue = [];
    this.served = s.position === s.datasetSize ? { epoch: s.epoch + 1, position: 0 } : { epoch: s.epoch, position: s.position };
    this.planned = { ...this.served };
    this.batches = s.batches;
  }

  /** Drop prefetched batches (their reads finish in the background and are discarded). */
  close(): void {
    this.queue = [];
    this.planned = { ...this.served };
  }

  private schedule(deferred: boolean): void {
    const items: { index: number; rng: Rng }[] = [];
    const firstEpoch = this.planned.epoch; // the planned cursor is kept normalised (position < size)
    let { epoch, position } = this.planned;
    for (let i = 0; i < this.batchSize; i++) {
      if (position >= this.dataset.size) {
        epoch++;
        position = 0;
      }
      items.push({ index: this.order(epoch)[position], rng: this.sampleRng(epoch, position) });
      position++;
    }
    if (position >= this.dataset.size) {
      epoch++;
      position = 0;
    }
    this.planned = { epoch, position };
    const build = (): Promise<ClipBatch> => this.build(items, firstEpoch);
    const promise = deferred ? new Promise<void>((res) => setImmediate(res)).then(build) : build();
    promise.catch(() => undefined); // surfaced when the caller awaits this batch
    this.queue.push({ promise, end: { epoch, position } });
  }

  private async build(items: { index: number; rng: Rng }[], epoch: number): Promise<ClipBatch> {
    const ds = this.dataset;
    const samples: ClipSample[] = new Array(items.length);
    let nextItem = 0;
    const worker = async (): Promise<void> => {
      while (nextItem < items.length) {
        const i = nextItem++;
        samples[i] = await ds.get(items[i].index, items[i].rng);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, items.length) }, worker));
    const clipLen = ds.frames * ds.height * ds.width * 3;
    const video = new Float32Array(items.length * clipLen); // [B, T, H, W, 3]
    const hasLabels = samples.every((s) => s.label !== undefined);
    const hasCaptions = samples.some((s) => s.caption !== undefined);
    samples.forEach((s, b) => {
      if (s.frames !== ds.frames || s.height !== ds.height || s.width !== ds.width || s.video.length !== clipLen) {
        throw new Error(
          `ClipLoader: '${s.key}' is ${s.frames}x${s.height}x${s.width} (${s.video.length} bytes), ` +
            `expected ${ds.frames}x${ds.height}x${ds.width}x3 from '${ds.name}'`,
        );
      }
      toUnitRange(s.video, video, b * clipLen);
    });
    return {
      video,
      batchSize: items.length,
      frames: ds.frames,
      height: ds.height,
      width: ds.width,
      labels: hasLabels ? Int32Array.from(samples, (s) => s.label as number) : undefined,
      captions: hasCaptions ? samples.map((s) => s.caption ?? '') : undefined,
      keys: samples.map((s) => s.key),
      epoch,
    };
  }
}

/** Mix three integers into one 32-bit seed. */
function mixSeed(a: number, b: number, c: number): number {
  let h = (Math.floor(a) ^ Math.floor(a / 2 ** 32)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ Math.imul(b >>> 0, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ Math.imul(c >>> 0, 0x27d4eb2d);
  return (h ^ (h >>> 16)) >>> 0;
}
