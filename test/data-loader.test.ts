import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipLoader, fromUnitRange, toUnitRange, type ClipBatch, type LoaderState } from '../data/loader';
import { SyntheticDataset } from '../data/synthetic';
import { WorkerClipDataset } from '../data/worker';
import { Rng } from '../lib/nn/rng';
import type { ClipDataset, ClipSample } from '../data/types';

const small = (): SyntheticDataset =>
  new SyntheticDataset({ family: 'ucf', size: 10, frames: 3, height: 8, width: 8, frameStride: 2, seed: 5, videoLength: 30 });

async function take(loader: ClipLoader, n: number): Promise<ClipBatch[]> {
  const out: ClipBatch[] = [];
  for (let i = 0; i < n; i++) out.push(await loader.next());
  return out;
}

test('toUnitRange / fromUnitRange: x / 127.5 - 1 and back', () => {
  const u = Uint8Array.from([0, 1, 127, 128, 254, 255]);
  const f = toUnitRange(u);
  assert.deepEqual(Array.from(f), Array.from(u, (v) => Math.fround(v / 127.5 - 1)));
  assert.deepEqual(fromUnitRange(f), u);
  assert.deepEqual(Array.from(fromUnitRange([-3, 3, 0])), [0, 255, 128]);
});

test('batches: [B,T,H,W,3] in [-1,1] equal to the dataset clips, with labels, captions and keys', async () => {
  const ds = small();
  const loader = new ClipLoader(ds, { batchSize: 4, seed: 1 });
  const b = await loader.next();
  assert.equal(b.video.length, 4 * 3 * 8 * 8 * 3);
  assert.deepEqual([b.batchSize, b.frames, b.height, b.width], [4, 3, 8, 8]);
  for (let i = 0; i < 4; i++) {
    const m = /^synthetic-ucf\/(\d+)@(\d+)$/.exec(b.keys[i]);
    assert.ok(m, b.keys[i]);
    const clip = ds.clipAt(Number(m[1]), Number(m[2]));
    const n = 3 * 8 * 8 * 3;
    assert.deepEqual(b.video.subarray(i * n, (i + 1) * n), toUnitRange(clip.video));
    assert.equal(b.labels?.[i], clip.label);
    assert.equal(b.captions?.[i], clip.caption);
  }
  for (const v of b.video) assert.ok(v >= -1 && v <= 1);
});

test('epochs: each epoch visits every index once in a seeded order; batches cross epoch boundaries', async () => {
  const ds = small();
  const loader = new ClipLoader(ds, { batchSize: 4, seed: 2 });
  const batches = await take(loader, 5); // 20 samples = 2 epochs
  const idx = batches.flatMap((b) => b.keys.map((k) => Number(/\/(\d+)@/.exec(k)?.[1])));
  assert.deepEqual([...idx.slice(0, 10)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...idx.slice(10, 20)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual(idx.slice(0, 10), idx.slice(10, 20));
  assert.notDeepEqual(idx.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(batches.map((b) => b.epoch), [0, 0, 0, 1, 1]);
  assert.equal(loader.state().epoch, 2);
  assert.equal(loader.state().position, 0);
  // Without shuffle: identity order.
  const plain = new ClipLoader(ds, { batchSize: 3, seed: 2, shuffle: false });
  const keys = (await take(plain, 2)).flatMap((b) => b.keys.map((k) => Number(/\/(\d+)@/.exec(k)?.[1])));
  assert.deepEqual(keys, [0, 1, 2, 3, 4, 5]);
});

test('determinism: same seed gives the same stream, another seed another one; prefetch depth does not matter', async () => {
  const a = await take(new ClipLoader(small(), { batchSize: 3, seed: 7, prefetch: 2 }), 4);
  const b = await take(new ClipLoader(small(), { batchSize: 3, seed: 7, prefetch: 0, concurrency: 1 }), 4);
  const c = await take(new ClipLoader(small(), { batchSize: 3, seed: 8 }), 4);
  assert.deepEqual(a.map((x) => x.keys), b.map((x) => x.keys));
  assert.deepEqual(a.map((x) => x.video), b.map((x) => x.video));
  assert.notDeepEqual(a.map((x) => x.keys), c.map((x) => x.keys));
});

test('resume: a loader restored from a JSON state continues with exactly the batches of an uninterrupted run', async () => {
  const full = await take(new ClipLoader(small(), { batchSize: 4, seed: 11 }), 8);
  const first = new ClipLoader(small(), { batchSize: 4, seed: 11, prefetch: 3 });
  await take(first, 3);
  const saved = JSON.parse(JSON.stringify(first.state())) as LoaderState;
  assert.deepEqual([saved.epoch, saved.position, saved.batches], [1, 2, 3]);
  const resumed = new ClipLoader(small(), { batchSize: 4, seed: 11 });
  resumed.setState(saved);
  const rest = await take(resumed, 5);
  assert.deepEqual(rest.map((b) => b.keys), full.slice(3).map((b) => b.keys));
  assert.deepEqual(rest.map((b) => b.video), full.slice(3).map((b) => b.video));
  // The original loader (with batches prefetched) restored to its own earlier state replays too.
  first.setState(saved);
  assert.deepEqual((await first.next()).keys, full[3].keys);
  // Mismatches are refused.
  const other = new ClipLoader(new SyntheticDataset({ family: 'ucf', size: 11, frames: 3, height: 8, width: 8 }), { batchSize: 4, seed: 11 });
  assert.throws(() => other.setState(saved), /saved for a data set of 10 items/);
  const otherSeed = new ClipLoader(small(), { batchSize: 4, seed: 12 });
  assert.throws(() => otherSeed.setState(saved), /seed 11/);
});

class CountingDataset implements ClipDataset {
  readonly name = 'counting';
  readonly size = 6;
  readonly frames = 1;
  readonly height = 1;
  readonly width = 1;
  started: number[] = [];
  failOn = -1;
  async get(index: number, rng: Rng): Promise<ClipSample> {
    this.started.push(index);
    await new Promise((r) => setTimeout(r, 2));
    if (index === this.failOn) throw new Error(`counting: cannot read item ${index}`);
    return { video: Uint8Array.from([index, rng.int(0, 255), 0]), frames: 1, height: 1, width: 1, key: `c/${index}` };
  }
}

test('prefetch: the next batch is being read while the caller works; read errors surface on next()', async () => {
  // (No assertion right after next(): whether the read-ahead has started by then is a race.)
  const ds = new CountingDataset();
  const loader = new ClipLoader(ds, { batchSize: 2, seed: 0, prefetch: 1, shuffle: false });
  await loader.next();
  await new Promise((r) => setTimeout(r, 20)); // the caller "trains"
  assert.deepEqual(ds.started, [0, 1, 2, 3], 'batch 2 read ahead');
  const lazy = new CountingDataset();
  const noPrefetch = new ClipLoader(lazy, { batchSize: 2, seed: 0, prefetch: 0, shuffle: false });
  await noPrefetch.next();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(lazy.started, [0, 1], 'without prefetch nothing is read ahead');
  const ds2 = new CountingDataset();
  ds2.failOn = 3;
  const l2 = new ClipLoader(ds2, { batchSize: 2, seed: 0, shuffle: false });
  await l2.next();
  await assert.rejects(l2.next(), /counting: cannot read item 3/);
  const empty: ClipDataset = { name: 'empty', size: 0, frames: 1, height: 1, width: 1, get: (i, r) => ds.get(i, r) };
  assert.throws(() => new ClipLoader(empty, { batchSize: 1, seed: 0 }), /'empty' is empty/);
});

test('a clip of the wrong shape is refused with its key', async () => {
  const bad: ClipDataset = {
    name: 'bad', size: 1, frames: 2, height: 2, width: 2,
    async get(): Promise<ClipSample> {
      return { video: new Uint8Array(12), frames: 1, height: 2, width: 2, key: 'bad/0' };
    },
  };
  await assert.rejects(new ClipLoader(bad, { batchSize: 1, seed: 0 }).next(), /'bad\/0' is 1x2x2 .* expected 2x2x2x3/);
});

test('WorkerClipDataset: the same clips and rng advance as in-process, from worker threads; open errors surface', async () => {
  const opts = { source: 'synthetic-taichi', size: 7, frames: 3, height: 8, width: 8, frameStride: 2, seed: 4, videoLength: 40 };
  const wds = await WorkerClipDataset.open(opts, 2);
  try {
    const local = new SyntheticDataset({ family: 'taichi', size: 7, frames: 3, height: 8, width: 8, frameStride: 2, seed: 4, videoLength: 40 });
    assert.deepEqual([wds.name, wds.size, wds.frames, wds.height, wds.width], ['synthetic-taichi', 7, 3, 8, 8]);
    const r1 = new Rng(5);
    const r2 = new Rng(5);
    for (let i = 0; i < 7; i++) {
      const [a, b] = await Promise.all([wds.get(i, r1), local.get(i, r2)]);
      assert.deepEqual(a, b);
      assert.deepEqual(r1.state(), r2.state());
    }
    const viaWorker = await take(new ClipLoader(wds, { batchSize: 3, seed: 2 }), 3);
    const inProcess = await take(new ClipLoader(local, { batchSize: 3, seed: 2 }), 3);
    assert.deepEqual(viaWorker.map((b) => b.keys), inProcess.map((b) => b.keys));
    assert.deepEqual(viaWorker.map((b) => b.video), inProcess.map((b) => b.video));
    await assert.rejects(wds.get(99, new Rng(0)), /index 99 out of range/);
  } finally {
    await wds.close();
  }
  await assert.rejects(WorkerClipDataset.open({ source: 'synthetic-nope', frames: 2, height: 4, width: 4 }), /unknown synthetic source 'synthetic-nope'/);
});
