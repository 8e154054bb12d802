/**
 * The runner with a text-to-video model (experiments/t2v-shapes.yaml, shrunk with --set) and with a
 * class-conditional one: the sweep's w reaches sampling as classifier-free guidance s_cfg = 1 + w,
 * prompts / labels are the held-out clips' (the same for every w), and a short model with neither
 * refuses w != 0. `lvdm sample --class` on the class-conditional model.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planExperiment } from '../lib/experiments/plan';
import { collectResults } from '../lib/experiments/execute';
import { readNpz } from '../lib/io/npy';
import { heldOutLabels } from '../lib/lvdm/captions';
import { loadLvdm } from '../lib/lvdm/weights';
import { initBackend } from '../lib/backend';
import { runLvdm } from './helpers';

const ROOT = path.join(__dirname, '..');
const T2V = path.join(ROOT, 'experiments', 't2v-shapes.yaml');
const SET = [
  'data.num_videos=64',
  'stages.ae.autoencoder.train.steps=6',
  'stages.t2v.diffusion.train.steps=6',
  'sweep.n=4',
  'sweep.grids.guidance.steps=3',
  'evaluate.n_real=8',
];

interface SampleJson {
  point: { w: number };
  cfg_scale?: number;
  prompts?: string[];
}

test('a text-to-video sweep: w is guidance (s_cfg = 1 + w), the same held-out captions for every w', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-t2v-run-'));
  try {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'lvdm.js'), 'run', T2V, '--out', out, '--quiet', '--no-report', ...SET.flatMap((s) => ['--set', s])], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(r.status, 0, `lvdm run failed:\n${r.stdout}\n${r.stderr}`);
    const plan = planExperiment(T2V, { out, set: SET });
    const points = collectResults(plan);
    assert.deepEqual(points.map((p) => p.w).sort((a, b) => a - b), [0, 2, 6.5]);
    const samples = plan.tasks.filter((t) => t.kind === 'sample');
    const json = samples.map((t) => JSON.parse(fs.readFileSync(path.join(out, t.outDir, 'sample.json'), 'utf8')) as SampleJson);
    for (const j of json) {
      assert.equal(j.cfg_scale, 1 + j.point.w);
      assert.equal(j.prompts?.length, 4);
      for (const p of j.prompts!) assert.match(p, /^(a|two) (red|green|blue|yellow) (circle|square|triangle)s? moves? /);
    }
    assert.deepEqual(json[1].prompts, json[0].prompts);
    // Same noise, different guidance: the videos differ.
    const videos = samples.map((t) => readNpz(path.join(out, t.outDir, 'videos.npz')).get('videos')!.data as Uint8Array);
    assert.equal(videos[0].length, videos[1].length);
    assert.ok(videos[0].some((v, i) => v !== videos[1][i]), 'w = 0 and w = 2 gave identical videos');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('a short model without a text section or classes refuses a guidance weight w != 0', () => {
  assert.throws(
    () => planExperiment(path.join(ROOT, 'experiments', 'smoke.yaml'), { set: ['sweep.grids.short.w=0.5'], out: path.join(os.tmpdir(), 'lvdm-never-run') }),
    /smoke\.yaml: key 'sweep\.grids': short-video point short-w0\.5-f16-st2-seed1 has w = 0\.5, but stage 'lvdm' has neither a 'text' section nor unet\.num_classes/,
  );
});

/** A tiny class-conditional experiment on synthetic shapes (classes = the kinds a clip shows). */
const CLASS_YAML = `
name: class-tiny
seed: 0
data: { source: synthetic-shapes, frames: 4, size: 16, video_length: 4, num_videos: 24, held_out: 8 }
stages:
  ae:
    kind: autoencoder
    autoencoder:
      model: { channels: [8], temporal_factor: 1, spatial_factor: 2, latent_channels: 2, enc_res_blocks: 1, dec_res_blocks: 1, norm_groups: 4, frame_wise: true }
      loss: { pixel: mse, kl_weight: 1.0e-6, lpips_weight: 0, disc_start: 100000 }
      optim: { kind: adam, lr: 1.0e-3 }
      train: { steps: 4, batch_size: 2, ckpt_every: 2, log_every: 2 }
      latent_stats_clips: 4
  lvdm:
    kind: short
    autoencoder: ae
    unet: { in_channels: 2, out_channels: 2, model_channels: 8, channel_mult: [1], attention_resolutions: [], head_channels: 8, temporal_length: 4, norm_groups: 4, num_classes: 7 }
    diffusion:
      class_p_uncond: 0.2
      optim: { kind: adamw, lr: 1.0e-3 }
      train: { steps: 4, batch_size: 2, ckpt_every: 2, log_every: 2 }
      latents: { windows_per_video: 1, batch_size: 4 }
sweep:
  models:
    short: { model: lvdm }
  grids:
    guidance: { mode: short, w: [0, 2], frames: 4, steps: 3, seed: 1 }
  n: 4
  max_batch: 4
evaluate:
  features: synthetic-motion
  window: 4
  n_real: 8
baseline: { mode: short, s: null, w: 0 }
`;

interface ClassSampleJson extends SampleJson {
  class_labels?: number[];
}

test("a class-conditional sweep: w is guidance (s_cfg = 1 + w), the held-out clips' labels for every w; lvdm sample --class by name", async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-class-run-'));
  try {
    const file = path.join(out, 'class-tiny.yaml');
    fs.writeFileSync(file, CLASS_YAML);
    const runDir = path.join(out, 'run');
    const r = await runLvdm(['run', file, '--out', runDir, '--quiet', '--no-report']);
    assert.equal(r.code, 0, `lvdm run failed:\n${r.stdout}\n${r.stderr}`);
    const plan = planExperiment(file, { out: runDir });
    const samples = plan.tasks.filter((t) => t.kind === 'sample');
    const json = samples.map((t) => JSON.parse(fs.readFileSync(path.join(runDir, t.outDir, 'sample.json'), 'utf8')) as ClassSampleJson);
    const model = path.join(runDir, plan.tasks.find((t) => t.id === 'lvdm')!.outDir, 'lvdm.safetensors');
    await initBackend({ quiet: true });
    const loaded = loadLvdm(model);
    const labels = await heldOutLabels(loaded.config, 4);
    loaded.dispose();
    for (const j of json) {
      assert.equal(j.cfg_scale, 1 + j.point.w);
      assert.deepEqual(j.class_labels, labels);
    }
    assert.deepEqual(json[1].class_labels, json[0].class_labels);
    const videos = samples.map((t) => readNpz(path.join(runDir, t.outDir, 'videos.npz')).get('videos')!.data as Uint8Array);
    assert.ok(videos[0].some((v, i) => v !== videos[1][i]), 'w = 0 and w = 2 gave identical videos');

    // lvdm sample --class: names of the data source's classes or numbers, --n per class, recorded in samples.json.
    const dir = path.join(out, 'samples');
    const s = await runLvdm(['sample', '--ckpt', model, '--class', 'square,5', '--n', '2', '--cfg', '3', '--steps', '2', '--npz', '--quiet', '--out', dir]);
    assert.equal(s.code, 0, s.stderr);
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'samples.json'), 'utf8')) as { n: number; class_labels: number[]; classes: string[]; cfg: number };
    assert.deepEqual([info.n, info.class_labels, info.classes, info.cfg], [4, [1, 1, 5, 5], ['square', 'square', 'square+triangle', 'square+triangle'], 3]);
    assert.deepEqual(readNpz(path.join(dir, 'samples.npz')).get('videos')!.shape, [4, 4, 16, 16, 3]);
    const bad = await runLvdm(['sample', '--ckpt', model, '--class', 'hexagon', '--out', path.join(out, 'x1'), '--quiet']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--class: 'hexagon' is not a class of this model \(0 disc, 1 square, 2 disc\+square, 3 triangle/);
    const none = await runLvdm(['sample', '--ckpt', model, '--n', '1', '--out', path.join(out, 'x2'), '--quiet']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /a class-conditional model needs class labels \(lvdm sample --class NAME\)/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
