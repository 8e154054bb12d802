// lib/train/loop.ts + checkpoint.ts with a tiny deterministic trainer (test/train-loop/fake-trainer.ts):
// checkpoints (atomic, at ckpt_every and the end), metrics.jsonl, run folders that are never
// overwritten silently, resume (after a crash and after a real SIGKILL) identical to an
// uninterrupted run, and the non-finite-loss stop that keeps the last good checkpoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { LAST_CHECKPOINT, METRICS_LOG, NonFiniteLossError, prepareRunDir, runTraining, TrainLoopOptions } from '../lib/train/loop';
import { loadCheckpoint, prefixed, subTensors } from '../lib/train/checkpoint';
import { readJsonl } from '../lib/io/atomic';
import { FakeTrainer } from './train-loop/fake-trainer';

let root = '';
let counter = 0;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-loop-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const fresh = (): string => path.join(root, `run-${counter++}`);

function opts(outDir: string, extra: Partial<TrainLoopOptions> = {}): TrainLoopOptions {
  return { outDir, totalSteps: 10, ckptEvery: 4, logEvery: 2, config: { lr: 0.1, note: 'test' }, progress: false, ...extra };
}

/** metrics.jsonl without the wall-clock field. */
function metrics(dir: string): Record<string, number>[] {
  return readJsonl(path.join(dir, METRICS_LOG)).map((r) => {
    const { wall_s: _w, ...rest } = r as Record<string, number>;
    return rest;
  });
}

function tempFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));
}

/** Final state of an uninterrupted run with the given options. */
async function reference(extra: Partial<TrainLoopOptions> = {}): Promise<{ dir: string; trainer: FakeTrainer }> {
  const dir = fresh();
  const trainer = new FakeTrainer();
  await runTraining(trainer, opts(dir, extra));
  return { dir, trainer };
}

test('an uninterrupted run writes checkpoints atomically at ckpt_every and at the end, metrics.jsonl and config.json', async () => {
  const dir = fresh();
  const trainer = new FakeTrainer();
  const seen: { step: number; ino: number; w: number[] }[] = [];
  const res = await runTraining(trainer, {
    ...opts(dir),
    onCheckpoint: (step, file) => {
      assert.equal(file, path.join(dir, LAST_CHECKPOINT));
      // The checkpoint is complete and current when the callback runs, with no temp file left.
      const ck = loadCheckpoint(file, 'fake');
      assert.equal(ck.meta.step, step);
      assert.equal(ck.meta.kind, 'fake');
      assert.equal(ck.meta.version, 1);
      assert.deepEqual(ck.meta.config, { lr: 0.1, note: 'test' });
      assert.deepEqual(Array.from(ck.tensors.get('model.w')!.data), Array.from(trainer.w));
      assert.deepEqual(ck.meta.state.rng, trainer.rng.state());
      assert.deepEqual(tempFiles(dir), []);
      seen.push({ step, ino: fs.statSync(file).ino, w: Array.from(trainer.w) });
    },
  });
  assert.deepEqual(
    seen.map((s) => s.step),
    [4, 8, 10],
  );
  // Each write replaced the file by rename (a new inode while the old file still existed), never
  // rewrote it in place (which keeps the inode).
  for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i].ino, seen[i - 1].ino, `checkpoint ${seen[i].step} rewritten in place`);
  assert.deepEqual(res, { step: 10, startStep: 0, checkpoint: path.join(dir, LAST_CHECKPOINT), lastLogs: trainer.calls[9].logs });
  assert.deepEqual(
    trainer.calls.map((c) => c.step),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  // metrics.jsonl: one line per log_every steps, the mean of the logs since the previous line.
  const lines = readJsonl(path.join(dir, METRICS_LOG)) as Record<string, number>[];
  assert.deepEqual(
    lines.map((l) => l.step),
    [2, 4, 6, 8, 10],
  );
  for (const l of lines) {
    const window = trainer.calls.filter((c) => c.step >= l.step - 2 && c.step < l.step);
    assert.equal(l.loss, (window[0].logs.loss + window[1].logs.loss) / 2);
    assert.equal(l.grad_norm, (window[0].logs.grad_norm + window[1].logs.grad_norm) / 2);
    assert.ok(typeof l.wall_s === 'number' && l.wall_s >= 0);
  }
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), { lr: 0.1, note: 'test' });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['checkpoint-last.safetensors', 'config.json', 'metrics.jsonl']);
  // A final step that is not a multiple of log_every still gets a line.
  const odd = fresh();
  await runTraining(new FakeTrainer(), opts(odd, { totalSteps: 7, logEvery: 3, ckptEvery: 5 }));
  assert.deepEqual(
    metrics(odd).map((l) => l.step),
    [3, 6, 7],
  );
  assert.equal(loadCheckpoint(path.join(odd, LAST_CHECKPOINT)).meta.step, 7);
});

test('prepareRunDir refuses an existing non-empty folder without --resume/--force; --force wipes it', () => {
  const dir = fresh();
  // Missing or empty folders are fine.
  assert.equal(prepareRunDir(dir, {}), null);
  assert.ok(fs.existsSync(dir));
  assert.equal(prepareRunDir(dir, {}), null);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), 'precious');
  assert.throws(
    () => prepareRunDir(dir, {}),
    (e: Error) => e.message.includes(dir) && e.message.includes('--resume') && e.message.includes('--force') && e.message.includes('model.safetensors'),
  );
  assert.equal(fs.readFileSync(path.join(dir, 'model.safetensors'), 'utf8'), 'precious');
  // --resume without a checkpoint to resume from.
  assert.throws(() => prepareRunDir(dir, { resume: true }), (e: Error) => e.message.includes(dir) && e.message.includes(LAST_CHECKPOINT));
  assert.throws(() => prepareRunDir(dir, { resume: true, force: true }), /mutually exclusive/);
  // --force deletes everything and leaves an empty folder.
  assert.equal(prepareRunDir(dir, { force: true }), null);
  assert.deepEqual(fs.readdirSync(dir), []);
  // --resume on a folder that does not exist yet starts fresh.
  assert.equal(prepareRunDir(fresh(), { resume: true }), null);
});

test('runTraining refuses to overwrite a finished run; --force starts over; --resume of a finished run does nothing', async () => {
  const { dir, trainer: ref } = await reference();
  const t = new FakeTrainer();
  await assert.rejects(runTraining(t, opts(dir)), (e: Error) => e.message.includes(dir) && /--resume/.test(e.message) && /--force/.test(e.message));
  assert.equal(t.calls.length, 0);
  assert.equal(loadCheckpoint(path.join(dir, LAST_CHECKPOINT)).meta.step, 10);
  const again = new FakeTrainer();
  const r = await runTraining(again, opts(dir, { resume: true }));
  assert.equal(again.calls.length, 0);
  assert.deepEqual(r.step, 10);
  assert.deepEqual(r.startStep, 10);
  assert.deepEqual(Array.from(again.w), Array.from(ref.w));
  const forced = new FakeTrainer();
  fs.writeFileSync(path.join(dir, 'stray.txt'), 'x');
  await runTraining(forced, opts(dir, { force: true }));
  assert.equal(forced.calls.length, 10);
  assert.ok(!fs.existsSync(path.join(dir, 'stray.txt')));
  assert.deepEqual(Array.from(forced.w), Array.from(ref.w));
  // A checkpoint of another kind is refused on resume.
  await assert.rejects(
    runTraining(Object.assign(new FakeTrainer(), { kind: 'other' }), opts(dir, { resume: true })),
    (e: Error) => e.message.includes(LAST_CHECKPOINT) && /expected a 'other' checkpoint, got 'fake'/.test(e.message),
  );
});

test('--resume after a crash: metrics.jsonl truncated to the checkpoint, final state and log identical to an uninterrupted run', async () => {
  // log_every does not divide ckpt_every, so the log window straddles the checkpoint.
  const extra = { totalSteps: 10, ckptEvery: 4, logEvery: 3 };
  const ref = await reference(extra);
  const dir = fresh();
  const crashed = new FakeTrainer({ throwAt: 7 });
  await assert.rejects(runTraining(crashed, opts(dir, extra)), /simulated crash at step 7/);
  assert.deepEqual(
    metrics(dir).map((l) => l.step),
    [3, 6],
  );
  assert.equal(loadCheckpoint(path.join(dir, LAST_CHECKPOINT)).meta.step, 4);
  // Without a flag the folder is protected.
  await assert.rejects(runTraining(new FakeTrainer(), opts(dir, extra)), /--resume/);
  // Resume: line 6 (after the checkpoint) is dropped before training continues.
  const resumed = new FakeTrainer();
  let linesAtFirstStep: number[] = [];
  const origStep = resumed.trainStep.bind(resumed);
  resumed.trainStep = async (step: number) => {
    if (resumed.calls.length === 0) linesAtFirstStep = metrics(dir).map((l) => l.step);
    return origStep(step);
  };
  const res = await runTraining(resumed, opts(dir, { ...extra, resume: true }));
  assert.deepEqual(linesAtFirstStep, [3]);
  assert.equal(res.startStep, 4);
  assert.equal(res.step, 10);
  assert.deepEqual(
    resumed.calls.map((c) => c.step),
    [4, 5, 6, 7, 8, 9],
  );
  assert.deepEqual(Array.from(resumed.w), Array.from(ref.trainer.w));
  assert.deepEqual(Array.from(resumed.mom), Array.from(ref.trainer.mom));
  assert.deepEqual(resumed.rng.state(), ref.trainer.rng.state());
  assert.deepEqual(metrics(dir), metrics(ref.dir));
  const a = loadCheckpoint(path.join(dir, LAST_CHECKPOINT));
  const b = loadCheckpoint(path.join(ref.dir, LAST_CHECKPOINT));
  assert.equal(a.meta.step, 10);
  assert.deepEqual(a.tensors, b.tensors);
  assert.deepEqual(a.meta.state, b.meta.state);
});

test('a run killed with SIGKILL and resumed ends exactly like an uninterrupted run', async () => {
  const extra = { totalSteps: 10, ckptEvery: 3, logEvery: 2 };
  const ref = await reference(extra);
  const dir = fresh();
  const child = path.join(__dirname, 'train-loop', 'child.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, dir, '10', '3', '2', '7'], { cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 60000 });
  assert.equal(r.signal, 'SIGKILL', `child should die by SIGKILL (status ${r.status}, stderr: ${r.stderr})`);
  // Killed during step 7: the checkpoint after 6 steps is on disk, intact; logs up to step 6.
  assert.equal(loadCheckpoint(path.join(dir, LAST_CHECKPOINT), 'fake').meta.step, 6);
  assert.deepEqual(
    metrics(dir).map((l) => l.step),
    [2, 4, 6],
  );
  assert.deepEqual(tempFiles(dir), []);
  const resumed = new FakeTrainer();
  await runTraining(resumed, opts(dir, { ...extra, resume: true }));
  assert.deepEqual(
    resumed.calls.map((c) => c.step),
    [6, 7, 8, 9],
  );
  assert.deepEqual(Array.from(resumed.w), Array.from(ref.trainer.w));
  assert.deepEqual(resumed.rng.state(), ref.trainer.rng.state());
  assert.deepEqual(metrics(dir), metrics(ref.dir));
  assert.deepEqual(loadCheckpoint(path.join(dir, LAST_CHECKPOINT)).tensors, loadCheckpoint(path.join(ref.dir, LAST_CHECKPOINT)).tensors);
});

test('a non-finite loss stops with NonFiniteLossError naming the step; the last good checkpoint stays on disk', async () => {
  const { trainer: ref } = await reference({ totalSteps: 4, ckptEvery: 100 });
  const dir = fresh();
  const t = new FakeTrainer({ nanAt: 6 });
  let err: unknown;
  try {
    await runTraining(t, opts(dir));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof NonFiniteLossError, `expected NonFiniteLossError, got ${String(err)}`);
  assert.equal(err.step, 6);
  assert.equal(err.lastGoodStep, 4);
  assert.match(err.message, /non-finite loss at step 6 \(loss=NaN/);
  assert.match(err.message, /last good checkpoint \(step 4\) is kept/);
  // The checkpoint on disk is the one from step 4: intact, loadable, finite, equal to a clean run's.
  const file = path.join(dir, LAST_CHECKPOINT);
  const ck = loadCheckpoint(file, 'fake');
  assert.equal(ck.meta.step, 4);
  assert.ok(ck.meta.step < err.step);
  assert.deepEqual(Array.from(ck.tensors.get('model.w')!.data), Array.from(ref.w));
  assert.ok(Array.from(t.w).every(Number.isNaN), 'the trainer itself diverged');
  assert.deepEqual(tempFiles(dir), []);
  // No metrics line for the bad step.
  assert.deepEqual(
    metrics(dir).map((l) => l.step),
    [2, 4, 6],
  );
  // The run can be resumed from that checkpoint.
  const again = new FakeTrainer();
  await runTraining(again, opts(dir, { resume: true }));
  assert.deepEqual(again.calls[0].step, 4);

  // At a checkpoint boundary: NaN in step 4 keeps checkpoint 4 (taken after steps 0..3).
  const dir2 = fresh();
  await assert.rejects(runTraining(new FakeTrainer({ nanAt: 4 }), opts(dir2)), (e: Error) => e instanceof NonFiniteLossError && e.step === 4 && e.lastGoodStep === 4);
  assert.deepEqual(Array.from(loadCheckpoint(path.join(dir2, LAST_CHECKPOINT)).tensors.get('model.w')!.data), Array.from(ref.w));

  // Before any checkpoint: says so, and leaves none.
  const dir3 = fresh();
  await assert.rejects(runTraining(new FakeTrainer({ nanAt: 1 }), opts(dir3)), (e: Error) => e instanceof NonFiniteLossError && e.lastGoodStep === null && /no checkpoint was written yet/.test(e.message));
  assert.ok(!fs.existsSync(path.join(dir3, LAST_CHECKPOINT)));
});

test('loadCheckpoint: errors name the file; subTensors/prefixed', () => {
  const missing = path.join(root, 'none.safetensors');
  assert.throws(() => loadCheckpoint(missing), (e: Error) => e.message.includes(missing) && /not found/.test(e.message));
  const t = new Map([['a.b', { shape: [1], data: Float32Array.from([1]) }]]);
  assert.deepEqual([...prefixed(t, 'model.').keys()], ['model.a.b']);
  assert.deepEqual([...subTensors(prefixed(t, 'model.'), 'model.').keys()], ['a.b']);
});
