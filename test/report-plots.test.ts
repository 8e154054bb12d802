/**
 * lib/plots: figure specs have the right traces (curves, error bars, bands, floors), standalone
 * HTML inlines plotly once and escapes what it embeds, a PNG rendered by headless Chromium is a
 * real image of the requested size with the plot drawn in it, and a missing Chromium is a
 * result naming what to install, not an exception.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodePng } from '../lib/io/image';
import { logTicks } from '../lib/plots/figure';
import { experimentFigures, figureHtml, figuresPageHtml, findChromium, lossCurvesFigure, metricByWindow, metricVsField, pairedDifferences, plotDiv, renderPng, writeFigureFiles } from '../lib/plots';
import { aggregateSettings, pairedComparisons } from '../lib/results';
import { tempDir } from './helpers';
import { syntheticCurves, syntheticPoints } from './results-fixtures';

const floors = { real_vs_real: { fvd: 150, kvd: 0.1 }, reconstruction: { fvd: 200, kvd: 0.15 } };
const pts = syntheticPoints({ modes: ['autoregressive', 'hierarchical'], s: [0, 100, 200], w: [0, 1], seeds: [1, 2, 3], windows: 3 });
const aggs = aggregateSettings(pts);

test('metric vs s: one curve per (mode, w) with asymmetric error bars over seeds, dashed floors', () => {
  const f = metricVsField(aggs, 's', { metricName: 'fvd_proxy', floors })!;
  const curves = f.data.filter((t) => !t.name.startsWith('floor'));
  assert.deepEqual(
    curves.map((t) => t.name),
    ['autoregressive w=0', 'autoregressive w=1', 'hierarchical w=0', 'hierarchical w=1'],
  );
  for (const c of curves) {
    assert.deepEqual(c.x, [0, 100, 200]);
    assert.equal(c.error_y?.array.length, 3);
  }
  const a = aggs.find((g) => g.setting.mode === 'hierarchical' && g.setting.w === 1 && g.setting.s === 100)!;
  const c = curves.find((t) => t.name === 'hierarchical w=1')!;
  assert.equal(c.y[1], a.metric.mean);
  assert.ok(Math.abs((c.error_y!.array[1] as number) - (a.metric.hi - a.metric.mean)) < 1e-9);
  const fl = f.data.filter((t) => t.name.startsWith('floor'));
  assert.deepEqual(
    fl.map((t) => [t.name, t.y, t.line?.dash]),
    [
      ['floor: real vs real', [150, 150], 'dash'],
      ['floor: AE reconstruction', [200, 200], 'dash'],
    ],
  );
  assert.match(f.layout.title.text, /fvd_proxy vs perturbation strength s/);
  // metric vs w: one curve per (mode, s); KVD uses the KVD floors
  const fw = metricVsField(aggs, 'w', { metricName: 'fvd_proxy', quantity: 'kvd', floors })!;
  assert.equal(fw.data.filter((t) => !t.name.startsWith('floor')).length, 6);
  assert.deepEqual(fw.data.find((t) => t.name === 'floor: real vs real')!.y, [0.1, 0.1]);
  assert.equal(fw.layout.yaxis.title.text, 'kvd_proxy');
  // a single swept value gives no plot
  assert.equal(metricVsField(aggregateSettings(syntheticPoints({ s: [0], w: [0, 1] })), 's', { metricName: 'fvd' }), null);
});

test('metric per window: bands for a few settings, error bars for many; paired differences; loss curves', () => {
  const few = aggregateSettings(syntheticPoints({ modes: ['autoregressive', 'hierarchical'], s: [100], w: [1], windows: 4 }));
  const f = metricByWindow(few, { metricName: 'fvd' })!;
  const bands = f.data.filter((t) => t.fill === 'toself');
  const lines = f.data.filter((t) => t.fill === undefined);
  assert.equal(bands.length, 2);
  assert.deepEqual(lines[0].x, [0, 16, 32, 48]);
  assert.equal(bands[0].x.length, 8, 'the band goes along the upper bound and back along the lower one');
  assert.ok((bands[0].y[0] as number) > (lines[0].y[0] as number) && (bands[0].y[7] as number) < (lines[0].y[0] as number));
  const many = metricByWindow(aggs, { metricName: 'fvd' })!;
  assert.equal(many.data.filter((t) => t.fill === 'toself').length, 0);
  assert.equal(many.data.filter((t) => t.error_y).length, 12);

  const pd = pairedDifferences(pairedComparisons(pts, { s: 0, w: 0 }, { B: 200 }), { metricName: 'fvd_proxy' })!;
  assert.equal(pd.data[0].x.length, 10);
  assert.equal(pd.layout.xaxis.type, 'category');
  assert.deepEqual(pd.data[1].y, [0, 0]);

  const lc = lossCurvesFigure(syntheticCurves())!;
  assert.deepEqual(
    lc.data.map((t) => t.name),
    ['autoencoder', 'prediction'],
  );
  assert.equal(lc.layout.yaxis.type, 'log');
  assert.equal(lossCurvesFigure([]), null);
  // An autoencoder's NLL (negative here) and diffusion losses: one panel and y axis per group.
  const [ae, pred] = syntheticCurves();
  const grouped = lossCurvesFigure([{ ...ae, loss: ae.loss.map((v) => -1e4 * v), group: 'autoencoder' }, { ...pred, group: 'diffusion' }])!;
  assert.deepEqual(grouped.data.map((t) => t.yaxis), [undefined, 'y2']);
  assert.equal(grouped.layout.yaxis.type, undefined, 'negative losses stay on a linear axis');
  assert.equal(grouped.layout.yaxis2?.type, 'log');
  assert.match(grouped.layout.yaxis2?.title.text ?? '', /^diffusion loss/);
  const [d1, d2] = [grouped.layout.yaxis.domain!, grouped.layout.yaxis2!.domain!];
  assert.ok(d1[0] > d2[1], `panels must not overlap: ${d1} above ${d2}`);
  assert.equal(grouped.layout.xaxis.anchor, 'y2', 'the step axis sits under the bottom panel');
  // Its div in a page is as high as the figure, so the bottom panel does not spill out of it.
  assert.ok(grouped.layout.height && grouped.layout.height > 420, `two panels want more than the default 420 px, got ${grouped.layout.height}`);
  assert.match(plotDiv(grouped, 'loss'), new RegExp(`style="width:100%;height:${grouped.layout.height}px"`));
  assert.match(plotDiv(lc, 'one'), /style="width:100%;height:420px"/, 'a figure without a layout height gets 420 px');
  const all = experimentFigures(aggs, { metricName: 'fvd_proxy', floors, curves: syntheticCurves() });
  assert.deepEqual(
    all.map((x) => x.name),
    ['metric-vs-s', 'metric-vs-w', 'metric-by-window', 'kvd-vs-s', 'kvd-vs-w', 'loss-curves'],
  );
});

test('log-axis ticks: 1-2-5 over wide ranges, every mantissa over a narrow one, none of ours over a narrower one', () => {
  assert.deepEqual(logTicks(1, 1000).tickvals, [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
  const narrow = logTicks(0.061, 0.092).tickvals!;
  assert.deepEqual(
    narrow.filter((v) => v >= 0.061 && v <= 0.092),
    [0.07, 0.08, 0.09],
    `ticks ${narrow}`,
  );
  assert.deepEqual(logTicks(0.0612, 0.0618), {}, 'no 1-9 mantissa inside: leave the ticks to plotly');
});

test('standalone HTML: plotly inlined once per page, embedded text cannot close the script', () => {
  const f = metricVsField(aggs, 's', { metricName: 'fvd_proxy' })!;
  f.layout.title.text = 'evil </script><script>alert(1)</script>';
  const html = figureHtml(f, 'a <title>');
  const marker = 'plotly.js v2.35.2';
  assert.equal(html.split(marker).length - 1, 1, 'plotly inlined once');
  assert.equal(html.split('</script>').length - 1, 2, 'only the bundle and the plot script close');
  assert.match(html, /<title>a &lt;title&gt;<\/title>/);
  assert.match(html, /Plotly\.newPlot\("plot"/);
  const outsideBundle = html.slice(0, html.indexOf('<script>')) + html.slice(html.indexOf('</script>'));
  assert.ok(!/(src|href)=["']?(https?:)?\/\//.test(outsideBundle), 'no network references');
  const page = figuresPageHtml('three', [
    { title: 'a', figure: f },
    { title: 'b', figure: f },
    { title: 'c', figure: f },
  ]);
  assert.equal(page.split(marker).length - 1, 1);
  assert.equal(page.split('<script>Plotly.newPlot(').length - 1, 3);
});

test('a missing Chromium is a result naming what to install, and the HTML is still written', async () => {
  const saved = { bin: process.env.LVDM_CHROMIUM, path: process.env.PATH };
  const dir = tempDir('lvdm-plots-');
  try {
    process.env.LVDM_CHROMIUM = path.join(dir, 'no-such-chromium');
    const r = await renderPng(path.join(dir, 'x.html'), path.join(dir, 'x.png'), { width: 100, height: 100 });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : '', /LVDM_CHROMIUM=.*no-such-chromium is not an executable file; install it with 'sudo apt-get install -y --no-install-recommends chromium fonts-dejavu-core'/);
    delete process.env.LVDM_CHROMIUM;
    process.env.PATH = dir; // nothing on PATH
    const miss = findChromium();
    assert.ok('missing' in miss && /headless Chromium was not found \(looked for chromium, chromium-browser/.test(miss.missing));
    const files = await writeFigureFiles(metricVsField(aggs, 's', { metricName: 'fvd' })!, 'fvd vs s', dir, 'metric-vs-s');
    assert.ok(fs.existsSync(files.html));
    assert.equal(files.png, undefined);
    assert.match(files.message ?? '', /PNG not written .*metric-vs-s\.png.*apt-get install/);
  } finally {
    if (saved.bin === undefined) delete process.env.LVDM_CHROMIUM;
    else process.env.LVDM_CHROMIUM = saved.bin;
    process.env.PATH = saved.path;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('PNG by headless Chromium: the requested size, not blank, the curves drawn in their colours', async () => {
  assert.ok('path' in findChromium(), 'Chromium is installed by scripts/setup.sh');
  const dir = tempDir('lvdm-plots-');
  try {
    const fig = metricVsField(aggs, 's', { metricName: 'fvd_proxy', floors })!;
    fs.writeFileSync(path.join(dir, 'fig.html'), figureHtml(fig, 'fvd vs s', { width: 640, height: 400, modeBar: false }));
    const r = await renderPng(path.join(dir, 'fig.html'), path.join(dir, 'fig.png'), { width: 640, height: 400 });
    assert.ok(r.ok, r.ok ? '' : r.message);
    const img = decodePng(fs.readFileSync(path.join(dir, 'fig.png')));
    assert.deepEqual([img.width, img.height], [640, 400]);
    let sum = 0;
    let sum2 = 0;
    let blue = 0; // the first curve's colour #1f77b4
    const n = img.width * img.height;
    for (let i = 0; i < n; i++) {
      const [R, G, B] = [img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2]];
      const v = (R + G + B) / 3;
      sum += v;
      sum2 += v * v;
      if (Math.abs(R - 0x1f) < 30 && Math.abs(G - 0x77) < 30 && Math.abs(B - 0xb4) < 30) blue++;
    }
    const variance = sum2 / n - (sum / n) ** 2;
    assert.ok(variance > 100, `pixel variance ${variance}`);
    assert.ok(blue > 200, `${blue} pixels in the first curve's colour`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
