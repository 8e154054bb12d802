/**
 * A short stage started from another's weights through the runner (`stages.<name>.init`,
 * lib/lvdm/init.ts): the init stage is an input (its key in the stage's key), the loader checks the
 * reference, and a run trains the video model's temporal layers only on top of the image stage's
 * weights. On experiments/smoke.yaml with an image stage added by --set (long-video grids removed).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planExperiment } from '../lib/experiments/plan';
import { loadSafetensors } from '../lib/io/safetensors';

const ROOT = path.join(__dirname, '..');
const SMOKE = path.join(ROOT, 'experiments', 'smoke.yaml');
const SHORT_ONLY = ['sweep.grids.ablation=null', 'sweep.grids.baseline=null'];
// The image stage: smoke's short model on 4-frame clips (one latent frame), without temporal layers.
const IMAGE = ['stages.img.from=lvdm', 'stages.img.data.frames=4', 'stages.img.unet.temporal_attention=false', 'stages.img.diffusion.train.steps=2'];
// The video stage: smoke's short model started from the image stage (a stage of its own: 'from' copies init too).
const VIDEO = ['stages.video.from=lvdm', 'sweep.models.short.model=video'];
const INIT = [...SHORT_ONLY, ...IMAGE, ...VIDEO, 'stages.video.init.stage=img', 'stages.video.init.train=temporal'];
const NEVER = path.join(os.tmpdir(), 'lvdm-never-run');

function keyOf(set: string[], id: string): string {
  return planExperiment(SMOKE, { set, out: NEVER }).tasks.find((t) => t.id === id)!.key;
}

test('plan: the init stage is an input of the stage it starts; its key and the init settings are in that stage key; bad references name the key', () => {
  const plan = planExperiment(SMOKE, { set: INIT, out: NEVER });
  const ids = plan.tasks.map((t) => t.id);
  const video = plan.tasks.find((t) => t.id === 'video')!;
  assert.ok(ids.indexOf('img') < ids.indexOf('video'), ids.join(', '));
  assert.deepEqual(video.config.inputs, { autoencoder: 'ae', init: 'img' });
  assert.deepEqual(video.config.init, { temporal: 'fresh', train: 'temporal' });
  // Without init a stage has the key it had before init existed (the video stage is then smoke's lvdm
  // under another name); the image stage's key does not depend on who it starts.
  const plain = [...SHORT_ONLY, ...IMAGE, ...VIDEO];
  assert.equal(keyOf(plain, 'lvdm'), keyOf(SHORT_ONLY, 'lvdm'));
  assert.equal(keyOf(INIT, 'img'), keyOf(plain, 'img'));
  const base = keyOf(INIT, 'video');
  assert.notEqual(base, keyOf(plain, 'video'));
  assert.notEqual(base, keyOf([...INIT, 'stages.img.diffusion.train.steps=3'], 'video'));
  assert.notEqual(base, keyOf([...INIT, 'stages.video.init.train=all'], 'video'));
  assert.notEqual(base, keyOf([...INIT, 'stages.video.init.temporal=copy'], 'video'));
  const errors: [string[], RegExp][] = [
    [[...INIT, 'stages.video.init.stage=pred'], /key 'stages\.video\.init\.stage': stage 'pred' is a prediction stage, expected short/],
    [[...INIT, 'stages.video.init.stage=nothing'], /key 'stages\.video\.init\.stage': 'nothing' is not a stage of this experiment/],
    [[...INIT, 'stages.img.init.stage=video'], /key 'stages\.(img|video)\.init\.stage': cycle of inits \((img -> video -> img|video -> img -> video)\)/],
    [[...INIT, 'stages.ae2.from=ae', 'stages.img.autoencoder=ae2'], /key 'stages\.video\.init\.stage': stage 'img' learned the latents of 'ae2', but stage 'video' learns those of 'ae'; init needs the same latents/],
    [[...INIT, 'stages.video.init.temporal=maybe'], /stages\.video\.init\.temporal/],
    [[...INIT, 'stages.pred.init.stage=img'], /stages\.pred.*init/],
  ];
  for (const [set, re] of errors) assert.throws(() => planExperiment(SMOKE, { set, out: NEVER }), re, set.join(' '));
});

test("run: the video stage starts from the image stage's weights and trains only its temporal layers", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-init-run-'));
  try {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'lvdm.js'), 'run', SMOKE, '--out', out, '--quiet', '--no-report', '--only', 'ae,img,video', ...INIT.flatMap((s) => ['--set', s])], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(r.status, 0, `lvdm run failed:\n${r.stdout}\n${r.stderr}`);
    const plan = planExperiment(SMOKE, { out, set: INIT });
    const weights = (id: string) => loadSafetensors(path.join(out, plan.tasks.find((t) => t.id === id)!.outDir, 'lvdm.safetensors')).tensors;
    const img = weights('img');
    const video = weights('video');
    const temporal = [...video.keys()].filter((k) => /\.(norm_t|qkv_t|proj_out_t|relative_position_[kv])\./.test(k));
    assert.ok(temporal.length > 0);
    assert.equal(video.size, img.size + temporal.length);
    for (const [k, v] of img) assert.deepEqual(video.get(k)!.data, v.data, `${k} moved`);
    // The zero-initialised output projections moved: the temporal layers trained.
    const proj = temporal.filter((k) => k.endsWith('proj_out_t.weight'));
    assert.ok(proj.length > 0 && proj.every((k) => (video.get(k)!.data as Float32Array).some((x) => x !== 0)), proj.join(', '));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
