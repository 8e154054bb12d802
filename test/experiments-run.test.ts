/**
 * `lvdm run` end to end on the smoke experiment: an uninterrupted run (one in-process worker)
 * against a run killed with SIGKILL during training and again during the sweep, then continued
 * with --resume on two worker processes: the same results. A long-video sweep point killed in the
 * middle continues from its latent journal to the videos of an uninterrupted run. `--list` /
 * `--dry-run` report the states done / stale / todo. A run whose main process alone is killed
 * leaves no worker running.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planExperiment, taskDir, taskState } from '../lib/experiments/plan';
import { collectResults, partialDir } from '../lib/experiments/execute';
import { JOURNAL_DIR } from '../lib/hierarchical/pipeline';
import { LAST_CHECKPOINT } from '../lib/train/loop';
import { main } from '../lib/cli/main';

const ROOT = path.join(__dirname, '..');
const SMOKE = path.join(ROOT, 'experiments', 'smoke.yaml');
// Long enough autoencoder training to be killed in the middle of it (a checkpoint every 3 steps).
const SET = ['stages.ae.autoencoder.train.steps=12', 'stages.ae.autoencoder.train.ckpt_every=3'];
const setArgs = SET.flatMap((s) => ['--set', s]);

const children = new Set<ChildProcess>();

function start(args: string[], backend = 'wasm'): { child: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  // Its own process group, so a SIGKILL reaches the worker processes too (as a killed terminal would).
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'lvdm.js'), ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVDM_BACKEND: backend } });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, out });
    }),
  );
  return { child, done };
}

/** `lvdm run ARGS` in this process (for --list / --dry-run, which start no backend), its stdout captured. */
async function runInProcess(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.map(String).join(' '));
  try {
    return { code: await main(['run', ...args]), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function until(cond: () => boolean, what: string, child: ChildProcess): Promise<void> {
  while (!cond()) {
    if (child.exitCode !== null) throw new Error(`the run ended before ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function doneCount(dir: string, kind: string): number {
  const d = path.join(dir, 'store', kind);
  return fs.existsSync(d) ? fs.readdirSync(d).filter((x) => fs.existsSync(path.join(d, x, 'DONE'))).length : 0;
}

/** The results without wall-clock times. */
function comparable(runDir: string): unknown[] {
  return collectResults(planExperiment(SMOKE, { set: SET, out: runDir })).map((r) => ({ ...r, wall_s: 0 }));
}

test('SIGKILL during training and during the sweep, then --resume: the results of an uninterrupted run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-run-'));
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  try {
    const runA = await start(['run', SMOKE, ...setArgs, '--out', a, '--workers', '1', '--quiet', '--no-report']).done;
    assert.equal(runA.code, 0, runA.out);
    assert.match(runA.out, /smoke: 14 ran, 0 reused, 0 failed/);
    assert.match(runA.out, /point hierarchical-s100-w0-f32-st2-seed1: fvd_proxy \d+\.\d/);
    const expected = comparable(a);
    assert.equal(expected.length, 4);

    const plan = planExperiment(SMOKE, { set: SET, out: b });
    const ae = plan.tasks.find((t) => t.id === 'ae')!;
    // 1. Killed in the middle of the autoencoder's training (after its first checkpoint).
    const r1 = start(['run', SMOKE, ...setArgs, '--out', b, '--workers', '2', '--quiet', '--no-report']);
    await until(() => fs.existsSync(path.join(partialDir(plan, ae), LAST_CHECKPOINT)), 'the first autoencoder checkpoint', r1.child);
    killGroup(r1.child);
    await r1.done;
    assert.equal(doneCount(b, 'autoencoder'), 0, 'killed before the autoencoder finished');
    // 2. Resumed (the autoencoder continues from its checkpoint), killed again during the sweep.
    const r2 = start(['run', SMOKE, ...setArgs, '--out', b, '--workers', '2', '--resume', '--quiet', '--no-report']);
    await until(() => doneCount(b, 'evaluate') >= 1, 'the first sweep point', r2.child);
    killGroup(r2.child);
    const out2 = (await r2.done).out;
    assert.match(out2, /resuming 1 interrupted task\(s\): ae/);
    assert.match(out2, /resumed \S+store\/autoencoder\/[0-9a-f]{16}\.partial at step (3|6|9)/);
    assert.ok(doneCount(b, 'evaluate') < 4, 'killed before the sweep finished');
    // 3. Resumed to the end: finished tasks are reused, the rest runs.
    const r3 = await start(['run', SMOKE, ...setArgs, '--out', b, '--workers', '2', '--resume', '--quiet', '--no-png']).done;
    assert.equal(r3.code, 0, r3.out);
    // The run ends with its report (lib/report; its browser check is tested there) and its results table.
    assert.ok(r3.out.includes(`report: ${path.join(b, 'report.html')}`), r3.out);
    assert.equal(JSON.parse(fs.readFileSync(path.join(b, 'results.json'), 'utf8')).length, 4);
    assert.ok(fs.existsSync(path.join(b, 'experiment.json')));
    assert.match(r3.out, /smoke: \d+ ran, [1-9]\d* reused, 0 failed/);
    assert.deepEqual(comparable(b), expected);

    // --list / --dry-run: a changed prediction model makes it and its sweep points stale, nothing else.
    const list = await runInProcess([SMOKE, ...setArgs, '--set', 'stages.pred.long.p_cond=0.4', '--out', a, '--list']);
    assert.equal(list.code, 0, list.out);
    assert.match(list.out, /^ {2}ae +autoencoder +done /m);
    assert.match(list.out, /^ {2}pred +prediction +stale /m);
    assert.match(list.out, /^ {2}interp +interpolation +done /m);
    assert.match(list.out, /^ {2}hierarchical +100 +0 +32 +2 +1 +stale +stale/m);
    assert.match(list.out, /^ {2}autoregressive +0 +0 +32 +2 +1 +done +done/m);
    assert.match(list.out, /9 done, 5 stale .*, 0 to do/);
    const dry = await runInProcess([SMOKE, ...setArgs, '--set', 'sweep.grids.ablation.s=[0,50]', '--out', a, '--dry-run']);
    assert.match(dry.out, /^ {2}hierarchical +50 +0 +32 +2 +1 +todo +todo/m);
    assert.match(dry.out, /would run 2 task\(s\): sample\/hierarchical-s50-w0-f32-st2-seed1, evaluate\/hierarchical-s50-w0-f32-st2-seed1/);
  } finally {
    for (const c of children) killGroup(c);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a sweep point killed in the middle of long-video sampling continues from its last finished window (--resume): the videos of an uninterrupted run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-run-journal-'));
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  // One autoregressive point of 512 frames (about 250 windows of the smoke model).
  const set = ['sweep.grids.ablation=null', 'sweep.grids.short=null', 'sweep.grids.baseline.frames=512'];
  const args = (out: string): string[] => ['run', SMOKE, ...set.flatMap((x) => ['--set', x]), '--out', out, '--workers', '1', '--quiet', '--no-report'];
  try {
    const plan = planExperiment(SMOKE, { set, out: a });
    const sample = plan.tasks.find((t) => t.kind === 'sample')!;
    const state = path.join(partialDir(plan, sample), JOURNAL_DIR, 'state.json');
    const commits = (): number => (fs.existsSync(state) ? (JSON.parse(fs.readFileSync(state, 'utf8')) as { commits: number }).commits : 0);
    const r1 = start(args(a), 'native');
    await until(() => commits() >= 20, '20 windows of the sweep point were journaled', r1.child);
    killGroup(r1.child);
    await r1.done;
    assert.equal(taskState(plan, sample), 'todo', 'killed before the point finished');
    // b: the same run folder's finished training stages, and the point sampled without interruption.
    fs.cpSync(path.join(a, 'store'), path.join(b, 'store'), { recursive: true, filter: (src) => !/\.partial$/.test(src) && !/[/\\](sample|evaluate)$/.test(src) });
    const r2 = await start([...args(a), '--resume'], 'native').done;
    assert.equal(r2.code, 0, r2.out);
    const m = /autoregressive-s0-w0-f512-st2-seed1: continuing from the latent journal: (\d+) finished window\(s\) replayed/.exec(r2.out);
    assert.ok(m && Number(m[1]) >= 20, r2.out);
    const r3 = await start(args(b), 'native').done;
    assert.equal(r3.code, 0, r3.out);
    assert.doesNotMatch(r3.out, /continuing from the latent journal/);
    const videos = (runDir: string): Buffer => fs.readFileSync(path.join(taskDir(planExperiment(SMOKE, { set, out: runDir }), sample), 'videos.npz'));
    assert.ok(videos(a).equals(videos(b)), 'the resumed point wrote the videos of the uninterrupted one');
    const result = (runDir: string): unknown[] => collectResults(planExperiment(SMOKE, { set, out: runDir })).map((r) => ({ ...r, wall_s: 0 }));
    assert.deepEqual(result(a), result(b));
  } finally {
    for (const c of children) killGroup(c);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** State letter and parent pid of process `pid` from /proc/PID/stat, or null when it is gone. */
function procStat(pid: number | string): { state: string; ppid: number } | null {
  try {
    // stat: pid (comm) state ppid ...; comm may hold spaces, so split after its closing paren.
    const [state, ppid] = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { state, ppid: Number(ppid) };
  } catch {
    return null;
  }
}

/** Whether `pid` runs (exists and is not a zombie). */
function alive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z';
}

/** Pids of the running processes whose parent is `ppid`. */
function childPids(ppid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && procStat(d)?.ppid === ppid)
    .map(Number)
    .filter(alive);
}

// Reads /proc (Linux, like the rest of the project's set-up).
test('a run killed alone (not its process group) in the middle of sampling leaves no worker running', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-orphan-'));
  // Two autoregressive videos far longer than the test waits, one per worker, on the native backend
  // (where a sampling loop never lets a worker's event loop see its IPC channel close).
  let workers: number[] = [];
  const set = ['sweep.grids.ablation=null', 'sweep.grids.short=null', 'sweep.grids.baseline.frames=65536', 'sweep.grids.baseline.seed=[1,2]'];
  try {
    const r = start(['run', SMOKE, ...set.flatMap((x) => ['--set', x]), '--out', dir, '--workers', '2', '--no-report'], 'native');
    let out = '';
    for (const stream of [r.child.stdout!, r.child.stderr!]) stream.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => /seed1 ar window [2-9]/.test(out) && /seed2 ar window [2-9]/.test(out), 'both workers were sampling', r.child);
    workers = childPids(r.child.pid!);
    assert.equal(workers.length, 2, `two worker processes, found ${workers.join(', ')}`);
    r.child.kill('SIGKILL');
    await r.done;
    const t0 = Date.now();
    while (workers.some(alive) && Date.now() - t0 < 30_000) await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(workers.filter(alive), [], 'workers still running 30 s after their parent was killed');
  } finally {
    for (const c of children) killGroup(c);
    for (const w of workers.filter(alive)) process.kill(w, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
