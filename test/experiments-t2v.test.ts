/**
 * The runner with a text-to-video model (experiments/t2v-shapes.yaml, shrunk with --set): the
 * sweep's w reaches sampling as classifier-free guidance s_cfg = 1 + w, prompts are the held-out
 * captions (the same for every w), and a short model without a text section refuses w != 0.
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

test('a short model without a text section refuses a guidance weight w != 0', () => {
  assert.throws(
    () => planExperiment(path.join(ROOT, 'experiments', 'smoke.yaml'), { set: ['sweep.grids.short.w=0.5'], out: path.join(os.tmpdir(), 'lvdm-never-run') }),
    /smoke\.yaml: key 'sweep\.grids': short-video point short-w0\.5-f16-st2-seed1 has w = 0\.5, but stage 'lvdm' has no 'text' section/,
  );
});
