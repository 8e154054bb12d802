/**
 * Experiment files and plans (no training): schema and cross-reference errors name the file and the
 * key; content keys change exactly when a task's inputs change (and with them its dependents');
 * a real data root that does not exist is an error naming the key and the synthetic stand-in.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planExperiment, pointId, taskKey, canonicalJson } from '../lib/experiments/plan';
import { loadExperiment } from '../lib/experiments/resolve';
import { Plan } from '../lib/experiments/types';

const SMOKE = path.join(__dirname, '..', 'experiments', 'smoke.yaml');

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-exp-'));
}

function write(dir: string, name: string, text: string): string {
  const f = path.join(dir, name);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return f;
}

/** A file that includes smoke.yaml and changes what `extra` says. */
function smokeWith(dir: string, extra: string): string {
  return write(dir, 'x.yaml', `include: [${JSON.stringify(SMOKE)}]\n${extra}`);
}

function keys(p: Plan): Map<string, string> {
  return new Map(p.tasks.map((t) => [t.id, t.key]));
}

function changed(a: Plan, b: Plan): string[] {
  const ka = keys(a);
  return b.tasks.filter((t) => ka.get(t.id) !== t.key).map((t) => t.id).sort();
}

test('schema errors name the file, the key path and the expectation', () => {
  const dir = tmpDir();
  try {
    const cases: [string, RegExp][] = [
      ['stages:\n  ae:\n    autoencoder:\n      model:\n        chanels: [8]\n', /x\.yaml: unknown key 'stages\.ae\.autoencoder\.model\.chanels'/],
      ['stages:\n  ae:\n    autoencoder:\n      train:\n        steps: many\n', /x\.yaml: key 'stages\.ae\.autoencoder\.train\.steps': expected number, got string/],
      ['stages:\n  pred:\n    autoencoder: nope\n', /x\.yaml: key 'stages\.pred\.autoencoder': 'nope' is not a stage of this experiment \(stages: ae, pred, interp, ar, lvdm\)/],
      ['stages:\n  pred:\n    autoencoder: interp\n', /key 'stages\.pred\.autoencoder': stage 'interp' is a interpolation stage, expected autoencoder/],
      ['sweep:\n  grids:\n    bad: { mode: sideways, frames: 32 }\n', /key 'sweep\.grids\.bad\.mode': /],
      ['evaluate:\n  features: nonsense\n', /key 'evaluate\.features': expected 'i3d' or one of 'synthetic-motion'/],
      ['evaluate:\n  window: 64\n', /key 'sweep\.grids\.ablation\.frames': 32 frames is shorter than evaluate\.window 64/],
      ['stages:\n  pred:\n    diffusion:\n      autoencoder: x.safetensors\n', /key 'stages\.pred\.diffusion\.autoencoder': must not be set in an experiment file/],
      ['stages:\n  ar:\n    from: nothing\n', /key 'stages\.ar\.from': expected the name of another stage/],
      ['stages:\n  interp:\n    long: { role: prediction }\n', /key 'stages\.interp\.long\.role': expected 'interpolation'/],
      // A motion threshold without its weight changes nothing: refused where it is written, in each of the three sections.
      ['stages:\n  ae:\n    autoencoder:\n      loss: { motion_threshold: 0.25 }\n', /key 'stages\.ae\.autoencoder\.loss\.motion_threshold': is 0\.25 but motion_weight is unset or 0/],
      ['stages:\n  lvdm:\n    diffusion: { motion_weight: 0, motion_threshold: 0.1 }\n', /key 'stages\.lvdm\.diffusion\.motion_threshold': is 0\.1 but motion_weight is unset or 0/],
      [
        'stages:\n  dec:\n    kind: decoder\n    autoencoder: ae\n    finetune: { sigma_max: 0.6, motion_threshold: 0.2, optim: { lr: 1.0e-4 }, train: { steps: 4, batch_size: 1 } }\n',
        /key 'stages\.dec\.finetune\.motion_threshold': is 0\.2 but motion_weight is unset or 0/,
      ],
    ];
    for (const [extra, re] of cases) assert.throws(() => loadExperiment(smokeWith(dir, extra)), re, extra);
    const missing = write(dir, 'y.yaml', 'include: [base/none.yaml]\nname: y\n');
    assert.throws(() => loadExperiment(missing), /y\.yaml: key 'include': file 'base\/none\.yaml' not found/);
    assert.throws(() => loadExperiment(SMOKE, ['stages.ae.autoencoder.train.steps=-1']), /smoke\.yaml: key 'stages\.ae\.autoencoder\.train\.steps': Number must be greater than 0/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a real data root that does not exist names the key and the synthetic stand-in', () => {
  const set = ['data.source=sky', 'data.root=/nonexistent/sky_timelapse'];
  assert.throws(
    () => planExperiment(SMOKE, { set }),
    (e: Error) => {
      assert.match(e.message, /smoke\.yaml: key 'data\.root': data set root '\/nonexistent\/sky_timelapse' does not exist/);
      assert.match(e.message, /lvdm run .*smoke\.yaml --set data\.source=synthetic-sky/);
      return true;
    },
  );
  assert.throws(() => planExperiment(SMOKE, { set: ['data.source=ucf101'] }), /key 'data\.root': data\.source 'ucf101' is a real data set and needs its root folder; .*--set data\.source=synthetic-ucf/);
});

test('includes deep-merge, from: copies a stage, sweeps expand to the union of their grids', () => {
  const { experiment: e } = loadExperiment(SMOKE);
  // smoke.yaml only sets ae's channels; the rest of the model comes from base/long-models-32.yaml.
  assert.deepEqual(e.stages.ae.kind === 'autoencoder' && e.stages.ae.autoencoder.model.channels, [8, 8, 8]);
  assert.equal(e.stages.ae.kind === 'autoencoder' && e.stages.ae.autoencoder.model.temporal_factor, 4);
  // interp starts from pred (from: pred) with its own long section; every stage gets the top-level data.
  const interp = e.stages.interp;
  assert.ok(interp.kind === 'interpolation');
  assert.equal(interp.unet.model_channels, 16);
  assert.equal(interp.long.role, 'interpolation');
  assert.equal(interp.data.frames, 32);
  assert.equal(interp.data.source, 'synthetic-sky');
  const p = planExperiment(SMOKE, { out: '/tmp/x' });
  const points = p.tasks.filter((t) => t.kind === 'sample').map((t) => pointId(t.point!));
  assert.deepEqual(points, ['hierarchical-s0-w0-f32-st2-seed1', 'hierarchical-s100-w0-f32-st2-seed1', 'autoregressive-s0-w0-f32-st2-seed1', 'short-w0-f16-st2-seed1']);
  // A point in two grids runs once.
  const dup = planExperiment(SMOKE, { set: ['sweep.grids.again={mode: autoregressive, s: 0, w: 0, frames: 32, steps: 2, seed: [1, 2]}'] });
  assert.equal(dup.tasks.filter((t) => t.kind === 'sample').length, 5);
  for (const t of p.tasks) for (const d of t.deps) assert.ok(p.tasks.findIndex((x) => x.id === d) < p.tasks.indexOf(t), `${t.id} after ${d}`);
  assert.ok(p.tasks.every((t) => t.outDir === path.join('store', t.kind, t.key.slice(0, 16))));
});

test('null removes an included stage or sweep mode; the rest keep their keys; a stage still needed is an error naming it', () => {
  const dir = tmpDir();
  try {
    const full = planExperiment(SMOKE, { out: dir });
    const shortOnly = smokeWith(dir, 'stages: { pred: null, ar: null, interp: null }\nsweep:\n  models: { autoregressive: null, hierarchical: null }\n  grids: { baseline: null, ablation: null }\n');
    const p = planExperiment(shortOnly, { out: dir });
    assert.deepEqual(p.tasks.filter((t) => t.kind === 'prediction' || t.kind === 'interpolation'), []);
    assert.deepEqual(p.tasks.filter((t) => t.kind === 'sample').map((t) => pointId(t.point!)), ['short-w0-f16-st2-seed1']);
    const before = keys(full);
    for (const t of p.tasks) assert.equal(t.key, before.get(t.id), `${t.id} kept its key`);
    // interp and ar start from pred: removing pred alone leaves them pointing at nothing.
    assert.throws(() => planExperiment(smokeWith(dir, 'stages: { pred: null }\n'), { out: dir }), /x\.yaml: key 'stages\.interp\.from': expected the name of another stage \(stages: ae, interp, ar, lvdm\), got 'pred'/);
    // A mode left in the sweep whose stage is removed names the key.
    assert.throws(() => planExperiment(smokeWith(dir, 'stages: { interp: null }\n'), { out: dir }), /x\.yaml: key 'sweep\.models\.hierarchical\.interp'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a grid may set eta: it names its points and their sampling; grids without it keep their ids and keys', () => {
  const base = planExperiment(SMOKE);
  const withEta = planExperiment(SMOKE, { set: ['sweep.grids.short.eta=[0, 1]'] });
  const ids = (p: typeof base): string[] => p.tasks.filter((t) => t.kind === 'sample').map((t) => t.id);
  assert.deepEqual(ids(withEta), [...ids(base).filter((id) => !id.includes('short')), 'sample/short-w0-f16-st2-eta0-seed1', 'sample/short-w0-f16-st2-eta1-seed1']);
  const eta = (p: typeof base, id: string): unknown => p.tasks.find((t) => t.id === id)!.config.eta;
  assert.equal(eta(withEta, 'sample/short-w0-f16-st2-eta1-seed1'), 1);
  assert.equal(eta(withEta, 'sample/short-w0-f16-st2-eta0-seed1'), 0);
  // The other grids take sweep.eta and keep the keys they had.
  const long = base.tasks.filter((t) => !t.id.includes('short'));
  for (const t of long) assert.equal(withEta.tasks.find((x) => x.id === t.id)?.key, t.key, t.id);
  // eta 0 set in the grid is the same sampling as the default, but a different (named) point.
  assert.notEqual(withEta.tasks.find((t) => t.id === 'sample/short-w0-f16-st2-eta0-seed1')!.key, base.tasks.find((t) => t.id === 'sample/short-w0-f16-st2-seed1')!.key);
  assert.throws(() => planExperiment(SMOKE, { set: ['sweep.grids.short.eta=2'] }), /sweep\.grids\.short\.eta/);
});

test('content keys change exactly when a task or one of its inputs changes', () => {
  const base = planExperiment(SMOKE);
  // Identical inputs, identical keys; a different run folder or description does not matter.
  assert.deepEqual(keys(planExperiment(SMOKE, { out: '/elsewhere' })), keys(base));
  assert.deepEqual(changed(base, planExperiment(SMOKE, { set: ['description=other words', 'name=renamed'] })), []);
  const hier = ['evaluate/hierarchical-s0-w0-f32-st2-seed1', 'evaluate/hierarchical-s100-w0-f32-st2-seed1', 'sample/hierarchical-s0-w0-f32-st2-seed1', 'sample/hierarchical-s100-w0-f32-st2-seed1'];
  // The prediction model: it and the hierarchical points that sample with it; not ar, interp, real.
  assert.deepEqual(changed(base, planExperiment(SMOKE, { set: ['stages.pred.long.p_cond=0.4'] })), ['pred', ...hier].sort());
  // Stages written 'from: pred' inherit what they do not set themselves (interp and ar share pred's training settings).
  assert.deepEqual(changed(base, planExperiment(SMOKE, { set: ['stages.pred.diffusion.train.steps=7'] })).filter((id) => !id.includes('/')), ['ar', 'interp', 'pred']);
  // diffusion.sampling is not read by training (the sweep says how to sample): no key changes.
  assert.deepEqual(changed(base, planExperiment(SMOKE, { set: ['stages.pred.diffusion.sampling.steps=7'] })), []);
  // The autoencoder: everything downstream of it.
  assert.deepEqual(changed(base, planExperiment(SMOKE, { set: ['stages.ae.autoencoder.train.steps=7'] })), base.tasks.map((t) => t.id).sort());
  // A metric setting: the real clips and every evaluation, no sampling, no training.
  const ev = base.tasks.filter((t) => t.kind === 'evaluate').map((t) => t.id);
  assert.deepEqual(changed(base, planExperiment(SMOKE, { set: ['evaluate.n_real=6'] })), ['real', ...ev].sort());
  // A sampling setting: every sample and evaluation (sweep.n would also change the floors: n_floor defaults to it).
  const sw = base.tasks.filter((t) => t.kind === 'sample' || t.kind === 'evaluate').map((t) => t.id);
  assert.deepEqual(changed(base, planExperiment(SMOKE, { set: ['sweep.eta=0.5'] })), sw.sort());
  // The sampling networks' precision likewise; unset, it is absent from the sample tasks' configs (keys as before).
  const bf16 = planExperiment(SMOKE, { set: ['sweep.precision=bf16'] });
  assert.deepEqual(changed(base, bf16), sw.sort());
  assert.ok(bf16.tasks.filter((t) => t.kind === 'sample').every((t) => t.config.precision === 'bf16'));
  assert.ok(base.tasks.every((t) => !('precision' in t.config) || t.config.precision === undefined));
  assert.throws(() => planExperiment(SMOKE, { set: ['sweep.precision=fp16'] }), /sweep\.precision/);
  // Key = sha256(kind, code version, config, input keys by role): independent of key order.
  assert.equal(taskKey('real', { a: 1, b: { c: 2, d: 3 } }, {}), taskKey('real', { b: { d: 3, c: 2 }, a: 1 }, {}));
  assert.notEqual(taskKey('real', { a: 1 }, { autoencoder: 'k1' }), taskKey('real', { a: 1 }, { autoencoder: 'k2' }));
  assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), '{"a":[{"c":2,"d":1}],"b":1}');
});

test('every experiment file under experiments/ plans (real data sets through their synthetic stand-in)', () => {
  const dir = path.join(__dirname, '..', 'experiments');
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && /^(include|stages):/m.test(fs.readFileSync(path.join(dir, f), 'utf8')));
  for (const name of ['smoke.yaml', 'demo-ablation.yaml', 'long-sky.yaml', 'ucf101.yaml', 'ucf101-mini.yaml', 'sky.yaml', 'sky-mini.yaml', 'taichi.yaml', 'taichi-mini.yaml']) assert.ok(files.includes(name), name);
  const standIn: Record<string, string> = { ucf101: 'synthetic-ucf', sky: 'synthetic-sky', taichi: 'synthetic-taichi' };
  for (const f of files) {
    const kind = f.replace(/(-mini)?\.ya?ml$/, '');
    const p = planExperiment(path.join(dir, f), { set: standIn[kind] ? [`data.source=${standIn[kind]}`] : [] });
    assert.ok(p.tasks.some((t) => t.kind === 'evaluate'), `${f}: no sweep points`);
    if (standIn[kind]) {
      // Each data set's files define the ablations: autoregressive vs hierarchical, an s sweep and a w sweep.
      const pts = p.tasks.filter((t) => t.kind === 'sample').map((t) => t.point!);
      assert.deepEqual([...new Set(pts.map((q) => q.mode))].sort(), ['autoregressive', 'hierarchical'], f);
      assert.ok(new Set(pts.filter((q) => q.w === 0).map((q) => q.s)).size >= 5, `${f}: s sweep`);
      assert.ok(new Set(pts.filter((q) => q.s === 100).map((q) => q.w)).size >= 5, `${f}: w sweep`);
      assert.equal((p.resolved as { data: { size: number } }).data.size, f.includes('-mini') ? 32 : 256, f);
    }
  }
});

test("a 'decoder' stage fine-tunes an autoencoder's decoder; sweep.decoder decodes the samples and the floor with it", () => {
  const dir = tmpDir();
  const base = planExperiment(SMOKE);
  const stage = 'stages:\n  dec:\n    kind: decoder\n    autoencoder: ae\n    data: { num_videos: 16, held_out: 2 }\n    finetune: { sigma_max: 0.6, optim: { lr: 1.0e-4 }, train: { steps: 4, batch_size: 1 } }\n';
  // The stage alone adds one task over the autoencoder and changes no other key.
  const alone = planExperiment(smokeWith(dir, stage));
  const dec = alone.tasks.find((t) => t.id === 'dec')!;
  assert.equal(dec.kind, 'decoder');
  assert.deepEqual(dec.deps, ['ae']);
  assert.deepEqual(changed(base, alone), ['dec'], 'only the new task has a key the base plan lacks');
  assert.equal(alone.tasks.length, base.tasks.length + 1);
  // Decoding with it: the floors and every sample (and so every evaluation) change, no training does.
  const used = planExperiment(smokeWith(dir, `${stage}sweep:\n  decoder: dec\n`));
  const sweepTasks = base.tasks.filter((t) => t.kind === 'real' || t.kind === 'sample' || t.kind === 'evaluate').map((t) => t.id);
  assert.deepEqual(changed(base, used), ['dec', ...sweepTasks].sort());
  for (const t of used.tasks.filter((x) => x.kind === 'sample' || x.kind === 'real')) assert.equal((t.config.inputs as Record<string, string>).autoencoder, 'dec', t.id);
  // Its key follows the autoencoder's.
  const aeChanged = planExperiment(smokeWith(dir, stage), { set: ['stages.ae.autoencoder.train.steps=7'] });
  assert.notEqual(aeChanged.tasks.find((t) => t.id === 'dec')!.key, dec.key);
  // Cross-references: the decoder must decode the latents the sampled models learned.
  assert.throws(() => planExperiment(smokeWith(dir, 'sweep:\n  decoder: lvdm\n')), /key 'sweep\.decoder': stage 'lvdm' is a short stage, expected decoder or autoencoder/);
  const other = 'stages:\n  ae2:\n    from: ae\n  dec:\n    kind: decoder\n    autoencoder: ae2\n    finetune: { sigma_max: 0.6, optim: { lr: 1.0e-4 }, train: { steps: 4, batch_size: 1 } }\nsweep:\n  decoder: dec\n';
  assert.throws(() => planExperiment(smokeWith(dir, other)), /key 'sweep\.decoder': stage 'dec' decodes the latents of the encoder of 'ae2', but model stage '\w+' learned those of 'ae' \(its autoencoder: 'ae'\)/);
  // A decoder stage that trains the encoder makes latents of its own: every model must learn them (autoencoder: dec).
  const jointDec = 'stages:\n  dec:\n    kind: decoder\n    autoencoder: ae\n    finetune: { sigma_max: 0.6, train_encoder: true, optim: { lr: 1.0e-4 }, train: { steps: 4, batch_size: 1 } }\n';
  const onDec = (who: string[]) => who.map((st) => `  ${st}:\n    autoencoder: dec\n`).join('');
  const joint = planExperiment(smokeWith(dir, jointDec + onDec(['lvdm', 'pred', 'interp', 'ar'])));
  for (const id of ['lvdm', 'pred', 'interp', 'ar', 'real']) {
    const t = joint.tasks.find((x) => x.id === id)!;
    assert.equal((t.config.inputs as Record<string, string>).autoencoder, 'dec', id);
    assert.ok(t.deps.includes('dec'), `${id} waits for dec`);
  }
  assert.throws(() => planExperiment(smokeWith(dir, `${jointDec}${onDec(['lvdm', 'pred', 'interp', 'ar'])}sweep:\n  decoder: ae\n`)), /key 'sweep\.decoder': stage 'ae' decodes the latents of the encoder of 'ae', but model stage '\w+' learned those of 'dec' \(its autoencoder: 'dec'\)/);
  assert.throws(() => planExperiment(smokeWith(dir, 'stages:\n  dec:\n    kind: decoder\n    autoencoder: lvdm\n    finetune: { sigma_max: 0.6, optim: { lr: 1.0e-4 }, train: { steps: 4, batch_size: 1 } }\n')), /key 'stages\.dec\.autoencoder': stage 'lvdm' is a short stage, expected autoencoder/);
  assert.throws(() => planExperiment(smokeWith(dir, 'stages:\n  dec:\n    kind: decoder\n    autoencoder: ae\n    finetune: { sigma_max: -1, optim: { lr: 1.0e-4 }, train: { steps: 4, batch_size: 1 } }\n')), /stages\.dec\.finetune\.sigma_max/);
  fs.rmSync(dir, { recursive: true, force: true });
});
