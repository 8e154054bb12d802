/**
 * The notebook helpers without a kernel: profiles (every profile's settings load and plan), HTML
 * for videos, tables and figures, live training progress through an output sink, notebook lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tempDir } from './helpers';
import { loadConfig } from '../lib/config/load';
import { planExperiment } from '../lib/experiments/plan';
import { ProgressBar } from '../lib/train/progress';
import { NOTEBOOKS, PROFILES, notebookSettings, profileName, shippedLongSettings, ucfShippedSettings } from '../lib/notebook/profile';
import { inTslabKernel, LiveOutput, OutputSink, setOutputSink } from '../lib/notebook/output';
import { gifFileHtml, videoGridHtml, videoHtml } from '../lib/notebook/video';
import { tableHtml } from '../lib/notebook/table';
import { figureHtml, showFigure } from '../lib/notebook/plot';
import { curveSvg, liveBar, withLiveTraining } from '../lib/notebook/progress';
import { listNotebooks } from '../lib/notebook/jupyter';
import { baseLayout } from '../lib/plots/figure';

/** Collects outputs: appended HTML, and each live output's successive contents. */
function capture(): { sink: OutputSink; html: string[]; live: string[][] } {
  const html: string[] = [];
  const live: string[][] = [];
  const sink: OutputSink = {
    html: (h) => html.push(h),
    live: (): LiveOutput => {
      const states: string[] = [];
      live.push(states);
      return { html: (h) => states.push(h) };
    },
  };
  return { sink, html, live };
}

function withSink<T>(fn: (c: ReturnType<typeof capture>) => T): T {
  const c = capture();
  const prev = setOutputSink(c.sink);
  try {
    return fn(c);
  } finally {
    setOutputSink(prev);
  }
}

test('LVDM_PROFILE: smoke | mini | paper, default mini, anything else names the choices', () => {
  assert.equal(profileName({}), 'mini');
  assert.equal(profileName({ LVDM_PROFILE: 'smoke' }), 'smoke');
  assert.throws(() => profileName({ LVDM_PROFILE: 'huge' }), /LVDM_PROFILE='huge': expected one of smoke, mini, paper/);
});

test('every notebook has settings under every profile, and they load (configs) or plan (experiments)', () => {
  const out = tempDir('lvdm-nb-profile-');
  try {
    for (const profile of PROFILES) {
      for (const id of NOTEBOOKS) {
        const s = notebookSettings(id, profile, {});
        assert.ok(fs.existsSync(path.join(ROOT, s.config)), `${id}/${profile}: ${s.config} missing`);
        assert.ok(s.outDir.startsWith(path.join('runs', 'notebooks', profile)), s.outDir);
        const file = path.join(ROOT, s.config);
        if (s.config.endsWith('demo.yaml') || s.config.endsWith('lvdm-sky.yaml') || s.config.endsWith('t2v-captioned.yaml')) loadConfig(file, s.set);
        else {
          const plan = planExperiment(file, { set: s.set, out: path.join(out, `${id}-${profile}`) });
          assert.ok(plan.tasks.some((t) => t.kind === 'evaluate'), `${id}/${profile}: no sweep points`);
        }
      }
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('profile settings: smoke is tiny, families use their stand-in or the named data root, 04 and 06 share a run folder in smoke', () => {
  const smoke = notebookSettings('quickstart', 'smoke', {});
  assert.equal(loadConfig(path.join(ROOT, smoke.config), smoke.set).autoencoder!.train.steps, 6);
  assert.equal(loadConfig(path.join(ROOT, 'experiments/demo.yaml'), notebookSettings('quickstart', 'mini', {}).set).autoencoder!.train.steps, 400);
  const ucf = notebookSettings('ablation-ucf101', 'smoke', { LVDM_UCF101_ROOT: '/data/ucf' });
  assert.equal(ucf.config, 'experiments/smoke.yaml');
  assert.ok(ucf.set.includes('data.source=synthetic-ucf'), 'smoke always uses the synthetic stand-in');
  assert.deepEqual(notebookSettings('ablation-ucf101', 'mini', { LVDM_UCF101_ROOT: '/data/ucf' }).set, ['data.root=/data/ucf']);
  assert.deepEqual(notebookSettings('ablation-taichi', 'paper', {}).set, ['data.source=synthetic-taichi']);
  assert.equal(notebookSettings('ablation-taichi', 'paper', {}).config, 'experiments/taichi.yaml');
  assert.equal(notebookSettings('long-video', 'smoke', {}).outDir, notebookSettings('ablation-sky', 'smoke', {}).outDir);
  assert.notEqual(notebookSettings('long-video', 'mini', {}).outDir, notebookSettings('ablation-sky', 'mini', {}).outDir);
  assert.equal(notebookSettings('metrics', 'smoke', { LVDM_NOTEBOOK_RUNS: '/tmp/x' }).outDir, path.join('/tmp/x', 'smoke', 'metrics'));
});

test("notebook 10's ucf section plans the shipped class-conditional ucf short model's clips only: no long-video stage, w 0 and 3, smoke cut to 4 clips", () => {
  const out = tempDir('lvdm-nb-ucf-');
  const shipped = new Set((JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'manifest.json'), 'utf8')) as { tasks: { key: string }[] }).tasks.map((e) => e.key));
  try {
    for (const profile of PROFILES) {
      const s = ucfShippedSettings(profile, { LVDM_NOTEBOOK_RUNS: out });
      assert.equal(s.outDir, path.join(out, profile, 'shapes-ucf-shipped'));
      const plan = planExperiment(path.join(ROOT, s.config), { set: s.set, out: s.outDir });
      assert.deepEqual([...new Set(plan.tasks.map((t) => t.kind))].sort(), ['autoencoder', 'decoder', 'evaluate', 'real', 'sample', 'short']);
      const points = plan.tasks.filter((t) => t.kind === 'sample').map((t) => t.point!);
      const steps = profile === 'smoke' ? 4 : 20;
      assert.deepEqual(points.map((p) => [p.mode, p.frames, p.steps, p.w, p.seed]), [['short', 16, steps, 0, 1], ['short', 16, steps, 3, 1]], 'unguided and w = 3, seed 1');
      assert.equal((plan.resolved.sweep as { n: number }).n, profile === 'smoke' ? 4 : 32);
      // Every model it samples with is shipped (else the notebook would train for an hour).
      for (const t of plan.tasks.filter((x) => ['autoencoder', 'decoder', 'short'].includes(x.kind)))
        assert.ok(shipped.has(t.key), `${s.config} stage '${t.id}' (key ${t.key.slice(0, 16)}) is not in models/manifest.json`);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test("the ablation notebooks' fast path samples their family's shipped long-video models: every model shipped, the recorded points in paper", () => {
  const out = tempDir('lvdm-nb-long-');
  const shipped = new Set((JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'manifest.json'), 'utf8')) as { tasks: { key: string }[] }).tasks.map((e) => e.key));
  try {
    for (const notebook of ['ablation-ucf101', 'ablation-sky', 'ablation-taichi'] as const) {
      for (const profile of PROFILES) {
        // A data root changes nothing: the shipped models are the synthetic stand-in's.
        const s = shippedLongSettings(notebook, profile, { LVDM_NOTEBOOK_RUNS: out, LVDM_SKY_ROOT: '/data/sky', LVDM_TAICHI_ROOT: '/data/taichi', LVDM_UCF101_ROOT: '/data/ucf' });
        assert.equal(s.outDir, path.join(out, profile, `${notebook.slice('ablation-'.length)}-shipped`));
        const plan = planExperiment(path.join(ROOT, s.config), { set: s.set, out: s.outDir });
        assert.match(String((plan.resolved.data as { source?: string }).source), /^synthetic-/);
        const points = plan.tasks.filter((t) => t.kind === 'sample').map((t) => t.point!);
        const frames = { smoke: 64, mini: 256, paper: 1024 }[profile];
        const seeds = profile === 'paper' ? [1, 2, 3] : [1];
        const expected = ['autoregressive', 'hierarchical'].flatMap((mode) => [0, 200].flatMap((sv) => seeds.map((seed) => [mode, sv, 0, frames, seed])));
        assert.deepEqual(points.map((p) => [p.mode, p.s, p.w, p.frames, p.seed]).sort(), expected.sort(), `${notebook}/${profile}`);
        // Every model it samples with is shipped (else the notebook would train for hours).
        const training = plan.tasks.filter((x) => !['sample', 'evaluate', 'real'].includes(x.kind));
        assert.ok(training.some((t) => t.kind === 'interpolation') && training.some((t) => t.kind === 'prediction'), `${notebook}: no long-video models planned`);
        for (const t of training) assert.ok(shipped.has(t.key), `${s.config} stage '${t.id}' (key ${t.key.slice(0, 16)}) is not in models/manifest.json`);
      }
    }
    assert.throws(() => shippedLongSettings('long-video' as 'ablation-sky', 'mini', {}), /'long-video' is not an ablation notebook/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('videos become animated GIFs in <img> data URIs, scaled up with nearest-neighbour rendering', () => {
  const T = 3;
  const H = 4;
  const W = 5;
  const video = new Uint8Array(T * H * W * 3).map((_, i) => (i * 7) % 256);
  const html = videoHtml(video, T, H, W, { fps: 4, caption: 'a <b> clip' });
  const m = /src="data:image\/gif;base64,([^"]+)" style="width:(\d+)px;image-rendering:pixelated"/.exec(html);
  assert.ok(m, html.slice(0, 200));
  const gif = Buffer.from(m[1], 'base64');
  assert.equal(gif.toString('latin1', 0, 6), 'GIF89a');
  assert.deepEqual([gif.readUInt16LE(6), gif.readUInt16LE(8)], [W, H]);
  assert.equal(Number(m[2]), W * 8); // integer upscale towards 128 px, at most 8x
  assert.match(html, /a &lt;b&gt; clip/);
  assert.throws(() => videoHtml(video.subarray(1), T, H, W), /expected 3x4x5x3 = 180 bytes, got 179/);
  const grid = videoGridHtml([video, video, video], T, H, W, { cols: 3 });
  const g = Buffer.from(/base64,([^"]+)"/.exec(grid)![1], 'base64');
  assert.deepEqual([g.readUInt16LE(6), g.readUInt16LE(8)], [3 * (W + 2) + 2, H + 4]); // 2 px padding
  const dir = tempDir('lvdm-nb-gif-');
  try {
    fs.writeFileSync(path.join(dir, 'a.gif'), g);
    assert.match(gifFileHtml(path.join(dir, 'a.gif')), /<figcaption[^>]*>a\.gif<\/figcaption>/);
    fs.writeFileSync(path.join(dir, 'b.gif'), 'not a gif');
    assert.throws(() => gifFileHtml(path.join(dir, 'b.gif')), /b\.gif: not a GIF file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tables: rows (values of any type) as an HTML table with escaped text and rounded numbers', () => {
  const html = tableHtml([{ name: '<x>', v: 0.123456789, n: null, list: [1, 2] }, { name: 'y', v: 12, extra: true }], { caption: 'cap & more' });
  assert.match(html, /cap &amp; more/);
  assert.match(html, /&lt;x&gt;/);
  assert.match(html, />0\.1235</);
  assert.match(html, />\[1,2\]</);
  assert.match(html, /<th[^>]*>v<\/th>/);
  assert.doesNotMatch(html, /extra/, 'columns come from the first row');
});

test('figures: the plotly bundle goes with the first figure only; later ones wait for window.Plotly', () => {
  const fig = { data: [{ type: 'scatter' as const, mode: 'lines' as const, name: 'a', x: [1, 2], y: [3, 4] }], layout: baseLayout('t', 'x', 'y') };
  withSink((c) => {
    showFigure(fig);
    showFigure(fig);
    showFigure(null);
    assert.equal(c.html.length, 3);
    assert.ok(c.html[0].includes('plotly.js v2.35.2') && c.html[0].length > 3_000_000);
    assert.ok(!c.html[1].includes('plotly.js v2.35.2') && c.html[1].length < 5000);
    assert.match(c.html[1], /if \(window\.Plotly\) \{ window\.Plotly\.newPlot\(el, data, layout, config\)/);
    assert.match(c.html[2], /no data to plot/);
  });
  // The bundle runs with define/exports/module shadowed, so require.js pages get window.Plotly.
  assert.match(figureHtml(fig, { bundle: true }), /^<script type="text\/javascript">\(function \(define, exports, module\) \{\n/);
});

test('live training progress: one output per stage, replaced in place, with a bar and the loss curve', async () => {
  await withSink(async (c) => {
    const result = await withLiveTraining(
      async () => {
        const bar = new ProgressBar('train-x', 4, 0, false);
        for (let s = 1; s <= 4; s++) bar.update(s, { loss: 1 / s, lr: 0.1 });
        const other = new ProgressBar('train-y', 2, 0, false);
        for (let s = 1; s <= 2; s++) other.update(s, { mse: 2 - s });
        return 42;
      },
      { everyMs: 0 },
    );
    assert.equal(result, 42);
    assert.equal(c.live.length, 2, 'one live output per stage');
    const [x, y] = c.live;
    assert.ok(x.length >= 4);
    assert.match(x[x.length - 1], /<b>train-x<\/b>[\s\S]*4\/4 loss 0\.2500 {2}lr 0\.1000/);
    assert.match(x[x.length - 1], /<polyline[^>]*points="([\d.]+,[\d.]+ ){3}[\d.]+,[\d.]+"/);
    assert.match(y[y.length - 1], /train-y: mse/, 'a stage without a loss key plots its first log');
  });
  // After the call the listener is gone: more steps draw nothing.
  withSink((c) => {
    new ProgressBar('train-z', 1, 0, false).update(1, { loss: 1 });
    assert.equal(c.live.length, 0);
  });
  assert.match(curveSvg([], [], { label: 'l' }), /l: no values yet/);
});

test('liveBar: throttled updates of one output, the final state always drawn', () => {
  withSink((c) => {
    const bar = liveBar('loop', 3, 60_000);
    bar.update(1);
    bar.update(2);
    bar.update(3, 'last');
    bar.done();
    assert.equal(c.live.length, 1);
    const states = c.live[0];
    assert.equal(states.length, 3, 'initial, final update, done');
    assert.match(states[1], /3\/3 last/);
    assert.match(states[2], /3\/3 done/);
  });
});

test('kernel detection and notebook lists', () => {
  assert.equal(inTslabKernel(['/usr/bin/node', '/p/scripts/tslab-kernel.cjs', 'kernel', '--config-path', 'x.json']), true);
  assert.equal(inTslabKernel(['/usr/bin/node', '/p/bin/lvdm.js', 'notebooks']), false);
  const dir = path.join(ROOT, 'notebooks');
  const all = listNotebooks(dir);
  assert.deepEqual(
    all.map((f) => path.basename(f)),
    ['01-quickstart', '02-autoencoder', '03-short-video', '04-long-video', '05-ablation-ucf101', '06-ablation-sky', '07-ablation-taichi', '08-metrics', '09-text-to-video', '10-shapes'].map((n) => `${n}.ipynb`),
  );
  assert.deepEqual(listNotebooks(dir, ['metrics', 'ablation-sky']).map((f) => path.basename(f)), ['06-ablation-sky.ipynb', '08-metrics.ipynb']);
  assert.deepEqual(listNotebooks(dir, ['01', '03-short-video']).map((f) => path.basename(f)), ['01-quickstart.ipynb', '03-short-video.ipynb'], "'01' is a number, not part of 'ucf101'");
  assert.equal(listNotebooks(dir, ['ablation']).length, 3);
  assert.throws(() => listNotebooks(dir, ['nope']), /no notebook in .*notebooks matches 'nope' \(have: 01-quickstart\.ipynb/);
});
