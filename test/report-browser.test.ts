/**
 * The experiment report in a real browser: writeReport on a synthetic ReportInput with tiny GIF
 * (and one MP4) samples writes report.html, the tables and each figure as HTML + PNG; headless
 * Chromium (driven over the DevTools protocol) loads the report from file:// with no console
 * errors, every plot drew its traces, every image and video loaded, and a screenshot is written.
 * The checker itself is checked on a broken page, and Chromium is gone (by pid) after success
 * and after failure.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { ReportInput } from '../lib/experiments/types';
import { decodePng, writeGif } from '../lib/io/image';
import { writeMp4 } from '../lib/io/video-writer';
import { BrowserSession, checkPageInBrowser, figuresPageHtml, metricVsField, withBrowser } from '../lib/plots';
import { writeReport } from '../lib/report';
import { aggregateSettings, aq } from '../lib/results';
import { tempDir } from './helpers';
import { syntheticCurves, syntheticPoints } from './results-fixtures';

const T = 6;
const H = 24;
const W = 24;

/** A small moving square, coloured by the setting, so each sample is a distinct animation. */
function frames(s: number | null, w: number, seed: number): Uint8Array[] {
  return Array.from({ length: T }, (_, t) => {
    const f = new Uint8Array(H * W * 3);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = (y * W + x) * 3;
        const on = Math.abs(x - 3 - 3 * t) < 4 && Math.abs(y - 12) < 4;
        f[i] = on ? 255 : 30 + 60 * seed;
        f[i + 1] = on ? 220 : ((s ?? 0) * 1.2) & 255;
        f[i + 2] = on ? 40 : 100 * w;
      }
    return f;
  });
}

let runDir = '';
let input: ReportInput;
let browser: BrowserSession | undefined; // shared by the two page checks

before(async () => {
  runDir = tempDir('lvdm-report-');
  const points = syntheticPoints({
    modes: ['hierarchical'],
    s: [0, 100],
    w: [0, 1],
    seeds: [1, 2],
    windows: 3,
    samples: (p) => [`samples/${p.mode}-s${p.s}-w${p.w}-seed${p.seed}.${p.s === 100 && p.w === 1 && p.seed === 2 ? 'mp4' : 'gif'}`],
  });
  for (const p of points) {
    const file = path.join(runDir, p.samples[0]);
    if (file.endsWith('.mp4')) await writeMp4(file, frames(p.s, p.w, p.seed), W, H, { fps: 4, preset: 'ultrafast' });
    else writeGif(file, frames(p.s, p.w, p.seed), W, H, 4);
  }
  input = {
    name: 'report-test',
    description: 'synthetic sweep over s and w',
    file: 'experiments/test.yaml',
    overrides: ['sweep.n=4', 'sweep.defaults.frames=64'],
    resolved: { data: { family: 'synthetic-sky' }, sweep: { s: [0, 100], w: [0, 1], seeds: [1, 2] } },
    points,
    floors: { real_vs_real: { fvd: 150, kvd: 0.1 }, reconstruction: { fvd: 200, kvd: 0.15 } },
    curves: syntheticCurves(),
    baseline: { s: 0, w: 0 },
    runDir,
    stages: [{ id: 'prediction', kind: 'prediction', outDir: 'store/prediction/0123456789abcdef', wall_s: 42 }],
  };
  browser = await BrowserSession.launch();
});

after(async () => {
  await browser?.close(); // kills Chromium by pid
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
});

test('writeReport writes the page, the tables, and each figure as HTML + PNG; the report passes the browser check', async () => {
  const out = await writeReport(input, { bootstrapB: 1000, figures: ['metric-vs-s', 'metric-vs-w', 'metric-by-window', 'paired-differences', 'loss-curves'] });
  assert.deepEqual(out.messages, []);
  assert.equal(out.html, path.join(runDir, 'report.html'));
  for (const base of ['results', 'aggregates', 'comparisons']) for (const ext of ['csv', 'json', 'md']) assert.ok(fs.existsSync(path.join(runDir, `${base}.${ext}`)), `${base}.${ext}`);
  assert.equal(aq.fromCSV(fs.readFileSync(path.join(runDir, 'results.csv'), 'utf8')).numRows(), 8);
  assert.deepEqual(
    out.figures.map((f) => f.name),
    ['metric-vs-s', 'metric-vs-w', 'metric-by-window', 'paired-differences', 'loss-curves'],
  );
  for (const f of out.figures) {
    assert.ok(fs.existsSync(f.html) && f.png && fs.existsSync(f.png), f.name);
    const img = decodePng(fs.readFileSync(f.png!));
    assert.deepEqual([img.width, img.height], [900, 520], f.name);
  }
  assert.equal(out.png, path.join(runDir, 'plots', 'metric-vs-s.png'));
  const html = fs.readFileSync(out.html, 'utf8');
  assert.equal(html.split('plotly.js v2.35.2').length - 1, 1, 'plotly inlined once');
  assert.match(html, /<img src="samples\/hierarchical-s0-w0-seed1\.gif"/);
  assert.match(html, /run with <code>--set sweep\.n=4 --set sweep\.defaults\.frames=64<\/code>/, 'the header names the overrides');
  assert.match(html, /<video src="samples\/hierarchical-s100-w1-seed2\.mp4" autoplay loop muted/);

  const shot = path.join(runDir, 'report.png');
  const c = await checkPageInBrowser(out.html, { screenshot: shot, browser });
  assert.deepEqual(c.problems, []);
  assert.equal(c.ok, true);
  assert.deepEqual(c.consoleErrors, []);
  assert.equal(c.plots.length, 5);
  assert.equal(c.plotContainers, 5);
  for (const p of c.plots) assert.ok(p.traces > 0 && p.drawn >= p.traces, `${p.id}: ${p.drawn}/${p.traces}`);
  assert.equal(c.images.length, 7);
  assert.ok(c.images.every((i) => i.loaded && i.width === W && i.height === H));
  assert.equal(c.videos.length, 1);
  // loaded: a frame decoded, or (a busy machine) at least the metadata of a W x H video track read
  assert.ok(c.videos[0].loaded && c.videos[0].readyState >= 1 && c.videos[0].error === 0, `video readyState ${c.videos[0].readyState}`);
  assert.deepEqual([c.videos[0].width, c.videos[0].height], [W, H]);
  const img = decodePng(fs.readFileSync(shot));
  assert.equal(img.width, 1280);
  assert.ok(img.height > 2000, `a full-page screenshot, ${img.height} px high`);
});

test('the checker reports console errors, exceptions, missing images, undrawn plots and broken videos', async () => {
  const dir = path.join(runDir, 'broken');
  fs.mkdirSync(dir, { recursive: true });
  const good = figuresPageHtml('ok', [{ title: 'a', figure: metricVsField(aggregateSettings(input.points), 's', { metricName: 'fvd_proxy' })! }]);
  const broken = good.replace(
    '</body>',
    '<div class="lvdm-plot" id="never"></div><img src="no-such.gif"><video src="no-such.mp4" muted></video>' +
      '<script>console.error("boom", 42); setTimeout(() => { throw new Error("late failure"); }, 10);</script></body>',
  );
  fs.writeFileSync(path.join(dir, 'broken.html'), broken);
  const c = await checkPageInBrowser(path.join(dir, 'broken.html'), { timeoutMs: 60_000, browser });
  assert.equal(c.ok, false);
  assert.ok(c.consoleErrors.includes('boom 42'), c.consoleErrors.join(' | '));
  assert.ok(c.consoleErrors.some((e) => /uncaught .*late failure/.test(e)));
  assert.ok(c.problems.includes('1 of 2 plot containers were never drawn by plotly'), c.problems.join(' | '));
  assert.ok(c.problems.includes('image not loaded: no-such.gif'));
  assert.ok(c.problems.some((p) => /^video not loaded: no-such\.mp4 \(readyState 0, MediaError 4\)$/.test(p)), c.problems.join(' | '));
  assert.equal(c.plots.length, 1);
  assert.ok(c.plots[0].drawn > 0 && c.plots[0].drawn >= c.plots[0].traces);
});

test('Chromium is killed by pid when the work succeeds and when it throws', async () => {
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  let pid = 0;
  await withBrowser(async (b) => {
    pid = b.pid!;
    assert.ok(alive(pid));
  });
  assert.ok(pid > 0 && !alive(pid), 'gone after success');
  assert.ok(!alive(-pid), 'its helper processes (the process group) are gone too');
  await assert.rejects(
    withBrowser(async (b) => {
      pid = b.pid!;
      throw new Error('work failed');
    }),
    /work failed/,
  );
  assert.ok(!alive(pid) && !alive(-pid), 'gone after failure');
});
