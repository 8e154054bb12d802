/**
 * The smoke experiment through the job queue: a real redis-server (password-protected, on a free
 * loopback port), `lvdm worker` processes and `lvdm run --queue`, against the local runner's
 * results. One worker is SIGKILLed mid-point; Redis is killed and restarted mid-sweep and the run
 * resumed. The password must not appear in any output or file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { planExperiment, readPlan } from '../lib/experiments/plan';
import { collectResults } from '../lib/experiments/execute';
import type { PointResult } from '../lib/experiments/types';
import { ROOT, runLvdm, tempDir } from './helpers';
import { LvdmProcess, RedisServer, filesContaining, spawnLvdm, startRedis } from './queue-helpers';

const SMOKE = path.join(ROOT, 'experiments', 'smoke.yaml');
// Two sweep points per seed (hierarchical s=100, autoregressive s=0): the smallest smoke sweep.
const POINTS = ['--set', 'sweep.grids.ablation.s=[100]', '--set', 'sweep.grids.short=null'];
const SEED1 = [...POINTS];
const SEEDS12 = [...POINTS, '--set', 'sweep.grids.ablation.seed=[1,2]', '--set', 'sweep.grids.baseline.seed=[1,2]'];
const WORKER_ARGS = ['--lock-ms', '5000', '--stalled-ms', '1000', '--dep-poll-ms', '1000'];

function sets(args: string[]): string[] {
  return args.filter((_, i) => i % 2 === 1);
}

function taskCount(args: string[]): number {
  return planExperiment(SMOKE, { set: sets(args), out: '/nonexistent' }).tasks.length;
}

/** The results table of a run folder (the plan it last ran), without wall times (the only column that differs between runs). */
function table(runDir: string): Omit<PointResult, 'wall_s'>[] {
  return collectResults(readPlan(runDir)).map(({ wall_s: _w, ...rest }) => rest);
}

describe('smoke experiment on the job queue', () => {
  let redis: RedisServer;
  const dirs: string[] = [];
  const procs: LvdmProcess[] = [];
  const outputs: string[] = [];
  let local: Promise<string>;
  const runDir = (): string => {
    const d = tempDir('lvdm-qsmoke-');
    dirs.push(d);
    return d;
  };
  const worker = (name: string): LvdmProcess => {
    const p = spawnLvdm(['worker', '--queue', redis.url, '--name', name, ...WORKER_ARGS]);
    procs.push(p);
    return p;
  };

  before(async () => {
    redis = await startRedis();
    const out = runDir();
    // The reference: the local runner, both seeds (started now, awaited where compared).
    local = runLvdm(['run', SMOKE, ...SEEDS12, '--out', out, '--workers', '1', '--quiet', '--no-report']).then((r) => {
      assert.equal(r.code, 0, `local run failed:\n${r.stdout}\n${r.stderr}`);
      return out;
    });
  });

  after(async () => {
    for (const p of procs) {
      outputs.push(p.output());
      await p.kill();
    }
    await redis?.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  const shared = runDir();

  test('3 workers, one SIGKILLed mid-point: the sweep completes with the local runner\'s results', async () => {
    const ws = ['w1', 'w2', 'w3'].map(worker);
    await Promise.all(ws.map((w) => w.waitFor(/waiting for tasks/)));
    const run = spawnLvdm(['run', SMOKE, ...SEED1, '--out', shared, '--queue', redis.url, '--no-report']);
    procs.push(run);
    // Kill the first worker that starts a sweep point, once it is well into it.
    const victim = await Promise.any(ws.map((w) => w.waitFor(/sample\/[^:]+: started/, 240_000).then(() => w)));
    const point = /(sample\/[^:]+): started/.exec(victim.output())![1];
    await new Promise((r) => setTimeout(r, 1500));
    await victim.kill('SIGKILL');
    const code = await run.exited;
    assert.equal(code, 0, run.output());
    const n = taskCount(SEED1);
    assert.ok(run.output().includes(`[${n}/${n}]`), run.output());
    // The killed point was taken over by a live worker after the lock expired, and finished.
    const others = ws.filter((w) => w !== victim).map((w) => w.output());
    assert.ok(others.some((o) => o.includes(`${point}: done`)), `${point} not finished by another worker:\n${others.join('\n')}`);
    const leftovers = fs.readdirSync(path.join(shared, 'store'), { recursive: true }).map(String).filter((f) => /\.(partial|lock)$/.test(f));
    assert.deepEqual(leftovers, [], 'no partial output or claim is left behind');
    const ref = table(await local);
    const got = table(shared);
    assert.equal(got.length, 2);
    assert.deepEqual(got, ref.filter((r) => r.seed === 1));
  });

  test('Redis killed and restarted mid-sweep: --resume rebuilds the queue and completes with the same results', async () => {
    // One worker stays (one task at a time), so that tasks are still queued when Redis dies.
    const live = procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null && p.output().includes('waiting for tasks'));
    assert.equal(live.length, 2);
    await live[1].kill('SIGTERM');
    // Two new points (seed 2) in the same run folder; the trained models are reused.
    const run = spawnLvdm(['run', SMOKE, ...SEEDS12, '--out', shared, '--queue', redis.url, '--no-report']);
    procs.push(run);
    const n = taskCount(SEEDS12);
    await run.waitFor(new RegExp(`\\[\\d+/${n}\\] (sample|evaluate)/\\S+seed2`), 240_000);
    await redis.kill();
    await redis.restart(); // empty: no persistence
    assert.equal(await run.exited, 1, run.output());
    assert.match(run.output(), /no longer in the queue.*Finished results are safe in .*run again with --resume/s);
    const resumed = spawnLvdm(['run', SMOKE, ...SEEDS12, '--out', shared, '--queue', redis.url, '--resume', '--no-report']);
    procs.push(resumed);
    assert.equal(await resumed.exited, 0, resumed.output());
    assert.match(resumed.output(), new RegExp(`${n} tasks: \\d+ done, [1-9]\\d* enqueued`));
    assert.ok(resumed.output().includes(`[${n}/${n}]`), resumed.output());
    assert.deepEqual(table(shared), table(await local));

    const status = await runLvdm(['queue', 'status', '--queue', redis.url, '--experiment', 'smoke']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /smoke\s+0\s+0\s+0\s+0\s+[1-9]\d*\s+0\n/);
    outputs.push(run.output(), resumed.output(), status.stdout, status.stderr);
  });

  test('a task that keeps failing is failed after its attempts, with its error in `lvdm queue status`', async () => {
    // A new metric protocol (n_real 4) needs a new 'real' task; its autoencoder input is broken.
    const ae = readPlan(shared).tasks.find((t) => t.kind === 'autoencoder')!;
    const aeDir = path.join(shared, ae.outDir);
    for (const f of fs.readdirSync(aeDir)) if (f.endsWith('.safetensors')) fs.rmSync(path.join(aeDir, f));
    const args = [...SEEDS12, '--set', 'evaluate.n_real=4'];
    const run = spawnLvdm(['run', SMOKE, ...args, '--out', shared, '--queue', `${redis.url}?attempts=2&backoff_ms=200`, '--no-report']);
    procs.push(run);
    assert.equal(await run.exited, 1, run.output());
    assert.match(run.output(), /FAILED real after 2 attempt\(s\): .*safetensors/);
    assert.match(run.output(), /evaluate\/\S+: dependency 'real' failed/);
    const status = await runLvdm(['queue', 'status', '--queue', redis.url, '--experiment', 'smoke']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\n {2}smoke real \(2 attempt\(s\)\): .*autoencoder\.safetensors: checkpoint not found/);
    assert.match(status.stdout, /smoke evaluate\/autoregressive-s0-w0-f32-st2-seed1 \(\d attempt\(s\)\): dependency 'real' failed/);
    outputs.push(status.stdout, status.stderr);
  });

  test('the password appears in no output and no file of the run folder', () => {
    const all = [...outputs, ...procs.map((p) => p.output())].join('\n');
    assert.ok(all.includes('redis://:***@127.0.0.1'), 'the redacted URL is printed');
    assert.ok(!all.includes(redis.password), 'password printed');
    assert.deepEqual(filesContaining(shared, redis.password), []);
  });
});
