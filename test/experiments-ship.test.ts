/**
 * Shipped models (lvdm ship, lib/experiments/ship.ts + shipped.ts) on a tiny experiment (an
 * autoencoder, a short-video model and an autoregressive prediction model, 3 training steps
 * each): a run's training stages are shipped into a models folder; a fresh run with --models copies
 * them instead of training (byte-identical weights) and ends with the same results;
 * --from-scratch trains; a changed config trains; the size limit refuses; the manifest lists the
 * right files with their sha256.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { planExperiment, readDone } from '../lib/experiments/plan';
import { collectResults, reportInputFor } from '../lib/experiments/execute';
import { Manifest, reuseShipped } from '../lib/experiments/shipped';
import { loadSafetensors, type SafetensorsFile } from '../lib/io/safetensors';
import { main } from '../lib/cli/main';
import { captureConsole, runLvdm, tempDir } from './helpers';

const TINY = `name: tiny-ship
seed: 0
data: { source: synthetic-shapes, frames: 16, size: 32 }
stages:
  ae:
    kind: autoencoder
    data: { num_videos: 8, held_out: 2 }
    autoencoder:
      model: { channels: [8, 8, 8], temporal_factor: 4, spatial_factor: 8, latent_channels: 4, norm_groups: 4 }
      optim: { lr: 1.0e-3, warmup_steps: 0 }
      train: { steps: 3, batch_size: 1, ckpt_every: 3, log_every: 1 }
      latent_stats_clips: 2
  lvdm:
    kind: short
    autoencoder: ae
    data: { num_videos: 4, held_out: 2 }
    unet: { in_channels: 4, out_channels: 4, model_channels: 16, channel_mult: [1], attention_resolutions: [], head_channels: 16, norm_groups: 8, temporal_length: 4 }
    diffusion:
      optim: { lr: 1.0e-3, warmup_steps: 0 }
      train: { steps: 3, batch_size: 2, ckpt_every: 3, log_every: 1 }
      latents: { windows_per_video: 1, batch_size: 2 }
  ar:
    kind: prediction
    autoencoder: ae
    data: { frames: 32, num_videos: 4, held_out: 2 }
    unet: { in_channels: 4, out_channels: 4, model_channels: 16, channel_mult: [1], attention_resolutions: [], head_channels: 16, norm_groups: 8, temporal_length: 3, mask_channel: true, s_embed: table, s_levels: 252, s_mode: add }
    diffusion:
      optim: { lr: 1.0e-3, warmup_steps: 0 }
      train: { steps: 3, batch_size: 2, ckpt_every: 3, log_every: 1 }
      latents: { windows_per_video: 1, batch_size: 2 }
    long: { role: prediction, window: 3, latent_stride: 1, cond_frames: 1, p_cond: 0.5, s_max: 250 }
sweep:
  models:
    short: { model: lvdm }
    autoregressive: { pred: ar }
  grids:
    short: { mode: short, frames: 16, steps: 2, seed: 1 }
    ar: { mode: autoregressive, s: 0, w: 0, frames: 32, steps: 2, seed: 1 }
  n: 2
  max_batch: 4
  decode_window: 2
  gifs: 0
evaluate: { window: 16, n_real: 4 }
`;

const CHANGED = ['stages.lvdm.diffusion.train.steps=2'];

let tmp = '';
let exp = '';
let runA = '';
let models = '';
let models16 = '';
let shipOut = '';

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** `lvdm run` in a child process on the wasm backend (same seed + backend = same numbers), one in-process worker. */
async function lvdmRun(out: string, args: string[]): Promise<string> {
  const r = await runLvdm(['run', exp, '--out', out, '--workers', '1', '--quiet', '--no-report', ...args], { env: { LVDM_BACKEND: 'wasm' } });
  const text = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, `lvdm run ${args.join(' ')} failed:\n${text}`);
  return text;
}

/** `lvdm ARGS` in this process (ship, --list: no backend), stdout and stderr captured. */
function lvdm(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return captureConsole(() => main(args));
}

function manifest(dir: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** The stage column of `lvdm run --list`: stage -> state. */
function listedStates(listing: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of listing.matchAll(/^ {2}(ae|lvdm|ar)\s+\S+\s+(\S+)/gm)) out[m[1]] = m[2];
  return out;
}

before(async () => {
  tmp = tempDir('lvdm-ship-');
  exp = path.join(tmp, 'tiny.yaml');
  fs.writeFileSync(exp, TINY);
  runA = path.join(tmp, 'runA');
  models = path.join(tmp, 'models');
  await lvdmRun(runA, ['--from-scratch']);
  const r = await lvdm(['ship', runA, '--to', models, '--precision', 'fp32']);
  assert.equal(r.code, 0, r.err);
  shipOut = r.out;
  models16 = path.join(tmp, 'models16');
  const r16 = await lvdm(['ship', runA, '--to', models16]); // the default precision, fp16
  assert.equal(r16.code, 0, r16.err);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('lvdm ship: only the files later tasks read, with sizes, sha256, training time, eval numbers and the command that retrains each', () => {
  const plan = planExperiment(exp, { out: runA });
  const m = manifest(models);
  assert.deepEqual(m.tasks.map((e) => e.stage).sort(), ['ae', 'ar', 'lvdm']);
  const expected: Record<string, string[]> = {
    ae: ['autoencoder.safetensors', 'config.json', 'eval.json', 'metrics.jsonl', 'DONE'],
    lvdm: ['lvdm.safetensors', 'config.json', 'metrics.jsonl', 'DONE'],
    ar: ['lvdm.safetensors', 'config.json', 'metrics.jsonl', 'DONE'],
  };
  let total = 0;
  for (const e of m.tasks) {
    const task = plan.tasks.find((t) => t.id === e.stage)!;
    assert.equal(e.key, task.key);
    assert.equal(e.kind, task.kind);
    assert.equal(e.dir, `store/${task.kind}/${task.key.slice(0, 16)}`);
    assert.equal(e.experiment, exp);
    assert.deepEqual(e.files.map((f) => f.name), expected[e.stage]);
    // The shipped folder holds exactly these files (no training checkpoint, no latent cache), identical to the run's.
    assert.deepEqual(fs.readdirSync(path.join(models, e.dir)).sort(), [...expected[e.stage]].sort());
    for (const f of e.files) {
      const src = path.join(runA, task.outDir, f.name);
      assert.equal(f.sha256, sha256(src), `${e.stage}/${f.name}`);
      assert.equal(f.sha256, sha256(path.join(models, e.dir, f.name)));
      assert.equal(f.bytes, fs.statSync(src).size);
    }
    assert.equal(e.bytes, e.files.reduce((a, f) => a + f.bytes, 0));
    total += e.bytes;
    const done = readDone(path.join(runA, task.outDir))!;
    assert.equal(e.wall_s, done.wall_s);
    assert.equal(e.finished, done.finished);
    assert.equal(e.backend, 'wasm');
    assert.equal(e.command, `lvdm run ${exp} --only ${e.stage === 'ae' ? 'ae' : `ae,${e.stage}`} --from-scratch`);
    assert.equal((e.last_log as { step: number }).step, 3);
  }
  assert.equal(m.total_bytes, total);
  const ae = m.tasks.find((e) => e.stage === 'ae')!;
  const evalJson = JSON.parse(fs.readFileSync(path.join(runA, ae.dir, 'eval.json'), 'utf8')) as { held_out: { psnr: number } };
  assert.deepEqual(ae.eval, evalJson);
  assert.ok(Number.isFinite(evalJson.held_out.psnr));
  assert.deepEqual(m.tasks.find((e) => e.stage === 'lvdm')!.inputs, { autoencoder: 'ae' });
  // The sizes are printed with the limit.
  assert.match(shipOut, /^ {2}ae\s+autoencoder\s+store\/autoencoder\/[0-9a-f]{16}\s+0\.\d\d MB/m);
  assert.match(shipOut, new RegExp(`shipped models in all: ${(total / 1e6).toFixed(2)} MB .*limit 20 MB`));

  // The default, fp16: the weights rounded to nearest float16 (read back as float32), half the
  // bytes; every other file identical; the manifest describes the shipped bytes.
  const m16 = manifest(models16);
  for (const e of m16.tasks) {
    assert.equal(e.precision, 'fp16');
    const e32 = m.tasks.find((x) => x.stage === e.stage)!;
    assert.equal(e32.precision, 'fp32');
    for (const f of e.files) {
      const file = path.join(models16, e.dir, f.name);
      assert.equal(f.sha256, sha256(file), `${e.stage}/${f.name}`);
      assert.equal(f.bytes, fs.statSync(file).size);
      const src = path.join(runA, e.dir, f.name);
      if (!f.name.endsWith('.safetensors')) {
        assert.equal(f.sha256, sha256(src), `${e.stage}/${f.name} is copied unchanged`);
        continue;
      }
      assert.ok(f.bytes < 0.6 * fs.statSync(src).size, `${e.stage}/${f.name}: ${f.bytes} bytes from ${fs.statSync(src).size}`);
      const [a, b] = [loadSafetensors(src), loadSafetensors(file)];
      assert.equal(b.metadata['lvdm.shipped_precision']?.startsWith('fp16'), true);
      for (const [k, v] of Object.entries(a.metadata)) assert.equal(b.metadata[k], v, `metadata ${k}`);
      assert.deepEqual([...b.tensors.keys()], [...a.tensors.keys()]);
      for (const [name, t] of a.tensors) {
        const h = b.tensors.get(name)!;
        assert.deepEqual(h.shape, t.shape, name);
        for (let i = 0; i < t.data.length; i++) {
          const x = t.data[i];
          assert.ok(Math.abs(h.data[i] - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25, `${e.stage} ${name}[${i}]: ${x} -> ${h.data[i]}`);
        }
      }
    }
  }
  assert.equal(m16.total_bytes, m16.tasks.reduce((a, e) => a + e.bytes, 0));
  assert.ok(m16.total_bytes < 0.6 * m.total_bytes);
});

test('a fresh run with --models copies the shipped models instead of training: byte-identical weights, the same results', async () => {
  const runB = path.join(tmp, 'runB');
  const list = await lvdm(['run', exp, '--out', runB, '--models', models, '--list']);
  assert.equal(list.code, 0, list.err);
  assert.deepEqual(listedStates(list.out), { ae: 'shipped', lvdm: 'shipped', ar: 'shipped' });
  const out = await lvdmRun(runB, ['--models', models]);
  const plan = planExperiment(exp, { out: runB });
  for (const id of ['ae', 'lvdm', 'ar']) {
    const t = plan.tasks.find((x) => x.id === id)!;
    assert.ok(out.includes(`reused shipped ${id} (${path.join(models, t.outDir)})`), out);
    assert.ok(!out.includes(`done ${id} (`), `${id} was trained:\n${out}`);
    const weights = t.kind === 'autoencoder' ? 'autoencoder.safetensors' : 'lvdm.safetensors';
    assert.ok(fs.readFileSync(path.join(runB, t.outDir, weights)).equals(fs.readFileSync(path.join(models, t.outDir, weights))), `${id} weights differ`);
    assert.ok(!fs.existsSync(path.join(runB, t.outDir, 'checkpoint-last.safetensors')));
  }
  assert.match(out, /tiny-ship: 5 ran, 0 reused, 3 from shipped models, 0 failed/);
  const noWall = (dir: string): unknown[] => collectResults(planExperiment(exp, { out: dir })).map((r) => ({ ...r, wall_s: 0 }));
  const a = noWall(runA);
  assert.equal(a.length, 2);
  assert.deepEqual(noWall(runB), a);
  // Synthetic shapes: every point and the floors carry the object-consistency reading.
  const results = collectResults(plan);
  for (const r of results) {
    assert.ok(r.object_consistency !== undefined && r.object_consistency >= 0 && r.object_consistency <= 1, JSON.stringify(r));
    assert.ok(r.motion_consistency !== undefined && r.motion_consistency >= r.object_consistency, JSON.stringify(r));
    assert.ok(r.polygons !== undefined && r.polygons >= 0 && r.polygons <= r.object_consistency, JSON.stringify(r));
    assert.ok(r.regular !== undefined && r.regular >= 0 && r.regular <= r.object_consistency, JSON.stringify(r));
  }
  const floors = reportInputFor(plan).floors!;
  assert.ok(floors.object_consistency && floors.object_consistency.real >= 0.5 && floors.object_consistency.motion_real >= floors.object_consistency.real, JSON.stringify(floors));
  // About half the real clips' objects are squares or triangles (metrics/OBJECT-CONSISTENCY.md).
  const pr = floors.object_consistency.polygons_real!;
  assert.ok(pr > 0.2 && pr < floors.object_consistency.real, JSON.stringify(floors));
  // Nearly every consistent real clip has a regular outline (occluding pairs may not: OBJECT-CONSISTENCY.md).
  const rr = floors.object_consistency.regular_real!;
  assert.ok(rr >= 0.8 * floors.object_consistency.real && rr <= floors.object_consistency.real, JSON.stringify(floors));
  for (const t of plan.tasks.filter((x) => x.kind === 'sample')) assert.equal(sha256(path.join(runB, t.outDir, 'videos.npz')), sha256(path.join(runA, t.outDir, 'videos.npz')));
});

/**
 * Every weights file of a models folder shipped at `precision`, checked against its manifest (sha256,
 * the recorded precision, the same tensor names as the run's file once the scales are folded back):
 * the stored dtypes (`raw`), the run's tensors (`a`) and the shipped ones as loaded (`b`).
 */
function* shippedWeightFiles(models: string, precision: string): Generator<{ stage: string; raw: Record<string, { dtype?: string }>; a: SafetensorsFile; b: SafetensorsFile }> {
  for (const e of manifest(models).tasks) {
    assert.equal(e.precision, precision);
    for (const f of e.files.filter((x) => x.name.endsWith('.safetensors'))) {
      const file = path.join(models, e.dir, f.name);
      assert.equal(f.sha256, sha256(file));
      const bytes = fs.readFileSync(file);
      const raw = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<string, { dtype?: string }>;
      const [a, b] = [loadSafetensors(path.join(runA, e.dir, f.name)), loadSafetensors(file)];
      assert.equal(b.metadata['lvdm.shipped_precision']?.startsWith(precision), true);
      assert.deepEqual([...b.tensors.keys()], [...a.tensors.keys()], 'the scales are folded back in on load');
      yield { stage: e.stage, raw, a, b };
    }
  }
}

test('--precision int8: kernels as int8 with per-output-channel scales, the rest float16; a run reuses them', async () => {
  const models8 = path.join(tmp, 'models8');
  const r = await lvdm(['ship', runA, '--to', models8, '--precision', 'int8']);
  assert.equal(r.code, 0, r.err);
  const [m8, m16] = [manifest(models8), manifest(models16)];
  let int8Tensors = 0;
  for (const { stage, raw, a, b } of shippedWeightFiles(models8, 'int8')) {
    for (const [name, t] of a.tensors) {
      const got = b.tensors.get(name)!.data;
      if (raw[name].dtype === 'I8') {
        int8Tensors++;
        const c = t.shape[t.shape.length - 1];
        const max = new Float32Array(c);
        t.data.forEach((x, i) => (max[i % c] = Math.max(max[i % c], Math.abs(x))));
        t.data.forEach((x, i) => assert.ok(Math.abs(got[i] - x) <= max[i % c] / 254 + 1e-6 * Math.abs(x), `${stage} ${name}[${i}]: ${x} -> ${got[i]}`));
      } else {
        assert.ok(raw[name].dtype === 'F16' || !(t.data instanceof Float32Array), `${name} is ${raw[name].dtype}`);
        t.data.forEach((x, i) => assert.ok(Math.abs(got[i] - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25, `${stage} ${name}[${i}]`));
      }
    }
  }
  assert.ok(int8Tensors > 0);
  assert.ok(m8.total_bytes < m16.total_bytes, `int8 ${m8.total_bytes} bytes, fp16 ${m16.total_bytes}`);
  const out = await lvdmRun(path.join(tmp, 'runInt8'), ['--models', models8]);
  assert.match(out, /tiny-ship: 5 ran, 0 reused, 3 from shipped models, 0 failed/);
});

test('--precision int4: kernels as packed int4 with per-group float16 scales, smaller than int8; a run reuses them', async () => {
  const models4 = path.join(tmp, 'models4');
  const r = await lvdm(['ship', runA, '--to', models4, '--precision', 'int4']);
  assert.equal(r.code, 0, r.err);
  const [m4, m8] = [manifest(models4), manifest(path.join(tmp, 'models8'))];
  let int4Tensors = 0;
  for (const { stage, raw, a, b } of shippedWeightFiles(models4, 'int4')) {
    for (const [name, t] of a.tensors) {
      const got = b.tensors.get(name)!;
      assert.deepEqual(got.shape, t.shape, name);
      if (raw[name].dtype === 'U8' && raw[name + '.int4_scale']) {
        int4Tensors++;
        const c = t.shape[t.shape.length - 1];
        const max = new Float32Array(Math.ceil(t.data.length / c / 32) * c);
        const g = (i: number) => Math.floor(i / c / 32) * c + (i % c);
        t.data.forEach((x, i) => (max[g(i)] = Math.max(max[g(i)], Math.abs(x))));
        // Half a step of the group's scale (max / 7, rounded up to float16: at most 2^-10 above).
        t.data.forEach((x, i) => assert.ok(Math.abs(got.data[i] - x) <= (max[g(i)] / 14) * (1 + 2 ** -10) + 1e-6 * Math.abs(x), `${stage} ${name}[${i}]: ${x} -> ${got.data[i]}`));
      } else assert.ok(raw[name].dtype === 'F16' || raw[name].dtype === 'I8' || !(t.data instanceof Float32Array), `${name} is ${raw[name].dtype}`);
    }
  }
  assert.ok(int4Tensors > 0);
  assert.ok(m4.total_bytes < m8.total_bytes, `int4 ${m4.total_bytes} bytes, int8 ${m8.total_bytes}`);
  const out = await lvdmRun(path.join(tmp, 'runInt4'), ['--models', models4]);
  assert.match(out, /tiny-ship: 5 ran, 0 reused, 3 from shipped models, 0 failed/);
});

test('--from-scratch trains the stage although a shipped model has its key', async () => {
  const runC = path.join(tmp, 'runC');
  const list = await lvdm(['run', exp, '--out', runC, '--from-scratch', '--list']);
  assert.deepEqual(listedStates(list.out), { ae: 'todo', lvdm: 'todo', ar: 'todo' });
  const out = await lvdmRun(runC, ['--from-scratch', '--only', 'ae']);
  assert.ok(!out.includes('reused shipped'), out);
  assert.match(out, /done ae \(autoencoder\) in/);
  const ae = planExperiment(exp, { out: runC }).tasks.find((t) => t.id === 'ae')!;
  assert.notEqual(readDone(path.join(runC, ae.outDir))!.finished, readDone(path.join(models, ae.outDir))!.finished);
  assert.ok(fs.existsSync(path.join(runC, ae.outDir, 'checkpoint-last.safetensors')), 'not trained here');
  const both = await lvdm(['run', exp, '--from-scratch', '--models', models, '--list']);
  assert.equal(both.code, 1);
  assert.match(both.err, /--from-scratch and --models exclude each other/);
});

test('a changed config never picks up a shipped model; shipping it replaces the stage', async () => {
  const runD = path.join(tmp, 'runD');
  const sets = CHANGED.flatMap((s) => ['--set', s]);
  const list = await lvdm(['run', exp, '--out', runD, '--models', models, '--list', ...sets]);
  assert.deepEqual(listedStates(list.out), { ae: 'shipped', lvdm: 'todo', ar: 'shipped' });
  const out = await lvdmRun(runD, ['--models', models, '--only', 'lvdm', ...sets]);
  assert.match(out, /reused shipped ae \(/);
  assert.ok(!out.includes('reused shipped lvdm'), out);
  assert.ok(!out.includes('reused shipped ar'), 'ar is not needed by --only lvdm');
  assert.match(out, /done lvdm \(short\) in/);
  const lvdmD = planExperiment(exp, { out: runD, set: CHANGED }).tasks.find((t) => t.id === 'lvdm')!;
  const before = manifest(models).tasks.find((e) => e.stage === 'lvdm')!;
  assert.notEqual(lvdmD.key, before.key);

  const r = await lvdm(['ship', runD, '--to', models, '--stages', 'lvdm']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`replaces lvdm \\(${before.dir}`));
  const m = manifest(models);
  assert.deepEqual(m.tasks.map((e) => e.stage).sort(), ['ae', 'ar', 'lvdm']);
  const now = m.tasks.find((e) => e.stage === 'lvdm')!;
  assert.equal(now.key, lvdmD.key);
  assert.deepEqual(now.set, CHANGED);
  assert.equal(now.command, `lvdm run ${exp} --set ${CHANGED[0]} --only ae,lvdm --from-scratch`);
  assert.ok(!fs.existsSync(path.join(models, before.dir)), 'the replaced folder is still there');
  assert.equal(m.total_bytes, m.tasks.reduce((a, e) => a + e.bytes, 0));
});

test('--drop retires another experiment\'s stages in the same write: manifest, folders and total', async () => {
  const dropModels = path.join(tmp, 'models-drop');
  fs.cpSync(models, dropModels, { recursive: true });
  // FILE:STAGE drops only that stage (in a copy: the whole-file drop below starts from every stage).
  const oneModels = path.join(tmp, 'models-drop-one');
  fs.cpSync(models, oneModels, { recursive: true });
  const exp2 = path.join(tmp, 'tiny2.yaml');
  fs.writeFileSync(exp2, TINY); // the same stages under another file: the same keys, so the run reuses them
  const runF = path.join(tmp, 'runF');
  const r = await runLvdm(['run', exp2, '--out', runF, '--models', dropModels, '--only', 'ae', '--workers', '1', '--quiet', '--no-report'], { env: { LVDM_BACKEND: 'wasm' } });
  assert.equal(r.code, 0, r.stderr);
  const before = manifest(dropModels);
  const gone = before.tasks.filter((e) => e.stage !== 'ae');
  assert.ok(gone.length >= 2);
  const lvdmEntry = before.tasks.find((e) => e.stage === 'lvdm')!;
  const badStage = await lvdm(['ship', runF, '--to', oneModels, '--stages', 'ae', '--drop', `${exp}:nope`]);
  assert.equal(badStage.code, 1);
  assert.match(badStage.err, /--drop: .*tiny\.yaml has no shipped stage 'nope' \(its shipped stages: ae, lvdm, ar\)/);
  const one = await lvdm(['ship', runF, '--to', oneModels, '--stages', 'ae', '--drop', `${exp}:lvdm`]);
  assert.equal(one.code, 0, one.err);
  assert.match(one.out, new RegExp(`drops .*tiny\\.yaml lvdm \\(${lvdmEntry.dir}`));
  const mOne = manifest(oneModels);
  assert.deepEqual(mOne.tasks.map((e) => [path.basename(e.experiment), e.stage]).sort(), [['tiny.yaml', 'ar'], ['tiny2.yaml', 'ae']]);
  assert.ok(!fs.existsSync(path.join(oneModels, lvdmEntry.dir)), 'the dropped lvdm folder is still there');
  assert.ok(fs.existsSync(path.join(oneModels, before.tasks.find((e) => e.stage === 'ar')!.dir)), 'the ar folder was removed');
  const bad = await lvdm(['ship', runF, '--to', dropModels, '--stages', 'ae', '--drop', path.join(tmp, 'nope.yaml')]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--drop: .*nope\.yaml has no shipped stages in .*models-drop \(shipped: .*tiny\.yaml\)/);
  const ok = await lvdm(['ship', runF, '--to', dropModels, '--stages', 'ae', '--drop', exp]);
  assert.equal(ok.code, 0, ok.err);
  for (const e of gone) assert.match(ok.out, new RegExp(`drops .*tiny\\.yaml ${e.stage} \\(${e.dir}`));
  const m = manifest(dropModels);
  assert.deepEqual(m.tasks.map((e) => [e.experiment, e.stage]), [[exp2, 'ae']]);
  for (const e of gone) assert.ok(!fs.existsSync(path.join(dropModels, e.dir)), `${e.dir} is still there`);
  assert.ok(fs.existsSync(path.join(dropModels, m.tasks[0].dir, 'autoencoder.safetensors')));
  assert.equal(m.total_bytes, m.tasks[0].bytes);
});

test('the size limit refuses, naming the size and the limit; nothing is written', async () => {
  const small = path.join(tmp, 'models-small');
  const r = await lvdm(['ship', runA, '--to', small, '--max-mb', '0.05']);
  assert.equal(r.code, 1);
  assert.match(r.err, /refusing to ship: the shipped models would take 0\.\d\d MB in all, above the limit of 0\.05 MB \(--max-mb 0\.05\)/);
  assert.ok(!fs.existsSync(small));
  const unknown = await lvdm(['ship', runA, '--to', small, '--stages', 'nope']);
  assert.match(unknown.err, /--stages: 'nope' is not a training stage of tiny-ship \(training stages: ae, lvdm, ar\)/);
  const precision = await lvdm(['ship', runA, '--to', small, '--precision', 'fp8']);
  assert.equal(precision.code, 1);
  assert.match(precision.err, /--precision: expected one of fp16, int8, int4, fp32, got 'fp8'/);
  assert.ok(!fs.existsSync(small));
});

test('a shipped file that does not match its manifest (e.g. a Git LFS pointer) is not used', () => {
  const damaged = path.join(tmp, 'models-damaged');
  fs.cpSync(models, damaged, { recursive: true });
  const ae = manifest(damaged).tasks.find((e) => e.stage === 'ae')!;
  fs.writeFileSync(path.join(damaged, ae.dir, 'autoencoder.safetensors'), 'version https://git-lfs.github.com/spec/v1\n');
  const plan = planExperiment(exp, { out: path.join(tmp, 'runE') });
  const lines: string[] = [];
  const reused = reuseShipped(plan, plan.tasks, damaged, (m) => lines.push(m));
  assert.deepEqual(reused, ['ar']); // ar's key is the shipped one; lvdm was replaced by the changed config's
  assert.match(lines.join('\n'), /shipped ae \(.*\) does not match its manifest \(autoencoder\.safetensors: size or sha256 differs\); training it instead/);
  assert.ok(!fs.existsSync(path.join(plan.runDir, ae.dir)));
});

test("the repository's shipped models still match their experiment files: every manifest entry's stage plans to its key", () => {
  // A schema change that adds a defaulted key (or a code version bump) changes every content key,
  // and the demo and notebooks would silently retrain instead of reusing models/. This catches it.
  const root = path.resolve(__dirname, '..');
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'models', 'manifest.json'), 'utf8')) as Manifest;
  assert.ok(manifest.tasks.length >= 5, 'the manifest lists the shipped stages');
  for (const t of manifest.tasks) {
    const plan = planExperiment(path.join(root, t.experiment), { set: t.set });
    const task = plan.tasks.find((x) => x.id === t.stage);
    assert.ok(task, `${t.experiment}: no stage '${t.stage}'`);
    assert.equal(task.key, t.key, `${t.experiment} stage '${t.stage}' plans to key ${task.key.slice(0, 16)}, but models/ ships ${t.key.slice(0, 16)}`);
  }
});
