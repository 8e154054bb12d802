/**
 * Autoguidance through the runner (sweep.models.short.guide): a short point's w weights a weaker
 * short stage, s = 1 + w; w = 0 points neither need the guide nor change their keys; the guide
 * must be another unconditional short stage of the same latents. On experiments/smoke.yaml with a
 * guide stage added by --set (its long-video grids removed).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planExperiment } from '../lib/experiments/plan';
import { readNpz } from '../lib/io/npy';

const ROOT = path.join(__dirname, '..');
const SMOKE = path.join(ROOT, 'experiments', 'smoke.yaml');
const SHORT_ONLY = ['sweep.grids.ablation=null', 'sweep.grids.baseline=null'];
const GUIDE = [...SHORT_ONLY, 'stages.lvdm_guide.from=lvdm', 'stages.lvdm_guide.diffusion.train.steps=2', 'sweep.models.short.guide=lvdm_guide', 'sweep.grids.short.w=[0, 1.5]'];
const NEVER = path.join(os.tmpdir(), 'lvdm-never-run');

test('plan: a guided point takes the guide as an input, a w = 0 point neither takes it nor changes its key', () => {
  const guided = planExperiment(SMOKE, { set: GUIDE, out: NEVER });
  const plain = planExperiment(SMOKE, { set: SHORT_ONLY, out: NEVER });
  const sample = (p: typeof plain, w: number) => p.tasks.find((t) => t.kind === 'sample' && (t.config.point as { w: number }).w === w)!;
  assert.deepEqual(sample(guided, 1.5).config.inputs, { model: 'lvdm', guide: 'lvdm_guide', autoencoder: 'ae' });
  assert.deepEqual(sample(guided, 0).config.inputs, { model: 'lvdm', autoencoder: 'ae' });
  assert.equal(sample(guided, 0).key, sample(plain, 0).key);
  const errors: [string[], RegExp][] = [
    [[...SHORT_ONLY, 'sweep.models.short.guide=lvdm'], /key 'sweep\.models\.short\.guide': stage 'lvdm' is the model itself; autoguidance needs a weaker model/],
    [[...SHORT_ONLY, 'sweep.models.short.guide=pred'], /key 'sweep\.models\.short\.guide': .*pred/],
    [[...SHORT_ONLY, 'sweep.models.short.guide=nothing'], /key 'sweep\.models\.short\.guide': .*nothing/],
    [
      [...SHORT_ONLY, 'stages.ae2.from=ae', 'stages.g.from=lvdm', 'stages.g.autoencoder=ae2', 'sweep.models.short.guide=g'],
      /key 'sweep\.models\.short\.guide': stage 'g' learned the latents of 'ae2', but model stage 'lvdm' those of 'ae'/,
    ],
  ];
  for (const [set, re] of errors) assert.throws(() => planExperiment(SMOKE, { set, out: NEVER }), re, set.join(' '));
});

test('run: the guided point samples with s = 1 + w from the same noise, and its videos differ from the unguided ones', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-autoguide-run-'));
  try {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'lvdm.js'), 'run', SMOKE, '--out', out, '--quiet', '--no-report', '--only', 'ae,lvdm,lvdm_guide,real,sweep', ...GUIDE.flatMap((s) => ['--set', s])], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(r.status, 0, `lvdm run failed:\n${r.stdout}\n${r.stderr}`);
    const plan = planExperiment(SMOKE, { out, set: GUIDE });
    const samples = plan.tasks.filter((t) => t.kind === 'sample');
    assert.equal(samples.length, 2);
    const json = samples.map((t) => JSON.parse(fs.readFileSync(path.join(out, t.outDir, 'sample.json'), 'utf8')) as { point: { w: number }; autoguide_scale?: number; autoguide_step?: number });
    const byW = new Map(json.map((j, i) => [j.point.w, { j, t: samples[i] }]));
    assert.equal(byW.get(0)!.j.autoguide_scale, undefined);
    assert.equal(byW.get(1.5)!.j.autoguide_scale, 2.5);
    assert.equal(byW.get(1.5)!.j.autoguide_step, 2);
    const videos = [0, 1.5].map((w) => readNpz(path.join(out, byW.get(w)!.t.outDir, 'videos.npz')).get('videos')!.data as Uint8Array);
    assert.equal(videos[0].length, videos[1].length);
    assert.ok(videos[0].some((v, i) => v !== videos[1][i]), 'w = 0 and w = 1.5 gave identical videos');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
