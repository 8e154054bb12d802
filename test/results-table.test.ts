/**
 * lib/results: the results table (columns named by the metric, frame-window columns), its
 * writers (CSV / JSON parse back to the same rows), aggregates over seeds and paired
 * comparisons against a baseline, checked against direct computations.
 */
import type { PointResult } from '../lib/experiments/types';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  aggregateSettings,
  aggregatesTable,
  aq,
  comparisonsTable,
  formatNumber,
  groupBySetting,
  pairedComparisons,
  resultsTable,
  settingLabel,
  varyingFields,
  tableHtml,
  tableMarkdown,
  tInterval,
  writeTable,
} from '../lib/results';
import { baselineText } from '../lib/plots/figures';
import { tempDir } from './helpers';
import { syntheticPoints } from './results-fixtures';

test('results table: a row per point, sweep columns, metric-named columns, window columns', () => {
  const pts = syntheticPoints({ s: [0, 100], w: [0, 1], seeds: [1, 2], windows: 3 });
  const t = resultsTable(pts);
  assert.equal(t.numRows(), 8);
  assert.deepEqual(t.columnNames().slice(0, 14), ['experiment', 'dataset', 'mode', 's', 'w', 'frames', 'steps', 'seed', 'fvd_proxy', 'kvd_proxy', 'window', 'fvd_proxy_win0', 'fvd_proxy_win1', 'fvd_proxy_win2']);
  assert.ok(t.columnNames().includes('wall_s') && t.columnNames().includes('protocol'));
  const first = t.objects()[0] as Record<string, unknown>;
  const p = pts.find((q) => q.s === 0 && q.w === 0 && q.seed === 1)!;
  assert.equal(first.fvd_proxy, p.fvd);
  assert.equal(first.fvd_proxy_win2, p.fvd_by_window[2]);
  assert.match(String(first.protocol), /synthetic-motion · window16 · 16-frame clips stride 1/);
  // with real I3D weights the columns are fvd / kvd; no windows -> no window columns
  const real = resultsTable(syntheticPoints({ metric: 'fvd', windows: 0, seeds: [1] }));
  assert.ok(real.columnNames().includes('fvd') && real.columnNames().includes('kvd'));
  assert.ok(!real.columnNames().some((c) => c.includes('_win')));
  assert.throws(() => resultsTable([...syntheticPoints({ metric: 'fvd' }), ...syntheticPoints({ metric: 'fvd_proxy' })]), /points use different metrics \(fvd, fvd_proxy\)/);
  const dup = syntheticPoints({ s: [0], w: [0], seeds: [1] });
  assert.throws(() => groupBySetting([...dup, ...dup]), /have the same seed 1/);
});

test('points of grids that set eta: an eta column (null where the sweep default applied), separate settings', () => {
  const pts = syntheticPoints({ modes: ['short'], s: [null], w: [0], seeds: [1], windows: 0 });
  const withEta = [...pts, ...pts.map((p) => ({ ...p, eta: 1 }))];
  const t = resultsTable(withEta);
  assert.deepEqual(t.columnNames().slice(6, 9), ['steps', 'eta', 'seed']);
  assert.deepEqual(t.array('eta'), [null, 1]);
  const groups = groupBySetting(withEta);
  assert.equal(groups.length, 2);
  assert.deepEqual(groups.map((g) => g.setting.eta), [null, 1]);
  assert.deepEqual(varyingFields(groups.map((g) => g.setting)), ['eta']);
  assert.deepEqual(groups.map((g) => settingLabel(g.setting, ['mode', 'eta'])), ['short', 'short eta=1']);
  assert.ok(!resultsTable(pts).columnNames().includes('eta'), 'no grid set eta: no column');
});

test('writers: CSV and JSON parse back to the same rows; markdown and HTML are formatted', () => {
  const pts = syntheticPoints({ s: [null, 100], w: [0], seeds: [1, 2], windows: 2 });
  const t = resultsTable(pts);
  const dir = tempDir('lvdm-results-');
  try {
    const files = writeTable(t, dir, 'results');
    assert.deepEqual(Object.values(files).map((f) => path.basename(f)), ['results.csv', 'results.json', 'results.md']);
    const fromCsv = aq.fromCSV(fs.readFileSync(files.csv, 'utf8'));
    assert.deepEqual(fromCsv.objects(), t.objects(), 'CSV round trip (null s -> empty -> null)');
    const fromJson = aq.from(JSON.parse(fs.readFileSync(files.json, 'utf8')) as object[]);
    assert.deepEqual(fromJson.objects(), t.objects(), 'JSON round trip');
    const md = fs.readFileSync(files.md, 'utf8').trim().split('\n');
    assert.equal(md.length, 2 + 4);
    assert.match(md[0], /^\|experiment\|dataset\|mode\|s\|w\|/);
    assert.match(md[2], /\|–\|/, 'missing s shows as a dash');
    assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temporary files left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(formatNumber(282.13456), '282.1');
  assert.equal(formatNumber(0.000123456), '1.235e-4');
  assert.equal(formatNumber(16), '16');
  const html = tableHtml(aq.from([{ a: '<b>x</b>', b: 1.23456 }]));
  assert.match(html, /&lt;b&gt;x&lt;\/b&gt;/);
  assert.match(html, />1.235</);
  assert.match(tableMarkdown(t), /\|fvd_proxy\|/);
});

test('aggregates over seeds: mean, std and 95% t-interval per setting, per window', () => {
  const pts = syntheticPoints({ modes: ['autoregressive', 'hierarchical'], s: [0, 100], w: [1], seeds: [1, 2, 3, 4], windows: 2 });
  const aggs = aggregateSettings(pts);
  assert.equal(aggs.length, 4);
  assert.deepEqual(
    aggs.map((a) => a.label),
    ['autoregressive s=0', 'autoregressive s=100', 'hierarchical s=0', 'hierarchical s=100'],
  );
  for (const a of aggs) {
    const mine = pts.filter((p) => p.mode === a.setting.mode && p.s === a.setting.s);
    const t = tInterval(mine.map((p) => p.fvd));
    assert.deepEqual(a.seeds, [1, 2, 3, 4]);
    assert.equal(a.metric.mean, t.mean);
    assert.equal(a.metric.std, t.std);
    assert.equal(a.metric.lo, t.lo);
    assert.equal(a.byWindow[1].mean, tInterval(mine.map((p) => p.fvd_by_window[1])).mean);
  }
  const t = aggregatesTable(aggs, pts);
  assert.deepEqual(t.columnNames().slice(0, 12), ['dataset', 'mode', 's', 'w', 'frames', 'steps', 'n_seeds', 'seeds', 'fvd_proxy_mean', 'fvd_proxy_std', 'fvd_proxy_ci_lo', 'fvd_proxy_ci_hi']);
  assert.ok(t.columnNames().includes('fvd_proxy_win1_mean'));
  // one seed: no std, no interval (null in the table)
  const one = aggregateSettings(syntheticPoints({ s: [0], w: [0], seeds: [7] }));
  assert.ok(Number.isNaN(one[0].metric.std));
  assert.equal((aggregatesTable(one, syntheticPoints({ s: [0], w: [0], seeds: [7] })).objects()[0] as Record<string, unknown>).fvd_proxy_ci_lo, null);
});

test('aggregates carry the clip readings of shapes sweeps over seeds; settings without them read null', () => {
  const pts = syntheticPoints({ s: [0, 100], w: [0], seeds: [1, 2, 3] });
  const regularOf = (p: PointResult): number => (p.seed === 1 ? 0.25 : p.seed === 2 ? 0.5 : 0.75) + (p.s === 100 ? 0.1 : 0);
  for (const p of pts) {
    if (p.s !== 0) continue; // only s = 0 was read (s = 100 carries the readings on two of its seeds only)
    p.object_consistency = 0.9;
    p.regular = regularOf(p);
  }
  for (const p of pts) if (p.s === 100 && p.seed !== 3) p.regular = regularOf(p);
  const aggs = aggregateSettings(pts);
  const a0 = aggs.find((a) => a.setting.s === 0)!;
  const t = tInterval([0.25, 0.5, 0.75]);
  assert.equal(a0.readings.regular!.mean, t.mean);
  assert.equal(a0.readings.regular!.std, t.std);
  assert.equal(a0.readings.regular!.lo, t.lo);
  assert.equal(a0.readings.object_consistency!.mean, 0.9);
  assert.equal(a0.readings.polygons, undefined);
  assert.deepEqual(aggs.find((a) => a.setting.s === 100)!.readings, {}, 'a reading missing on one seed is not summarised');
  const rows = aggregatesTable(aggs, pts).objects() as Record<string, unknown>[];
  const r0 = rows.find((r) => r.s === 0)!;
  const r100 = rows.find((r) => r.s === 100)!;
  assert.ok(Math.abs((r0.regular_mean as number) - 0.5) < 1e-12);
  assert.equal(r0.regular_ci_hi, t.hi);
  assert.equal(r100.regular_mean, null);
  assert.equal(r100.object_consistency_std, null);
  assert.ok(!('polygons_mean' in r0), 'no column for a reading no setting carries');
  // A sweep without clip readings keeps its columns.
  assert.ok(!aggregatesTable(aggregateSettings(syntheticPoints()), syntheticPoints()).columnNames().some((c) => c.startsWith('regular')));
});

test('paired comparisons: per-seed differences, bootstrap interval, far tighter than the seed spread', () => {
  const pts = syntheticPoints({ s: [0, 100, 200], w: [0, 1], seeds: [1, 2, 3, 4, 5], windows: 3, seedSpread: 40, noise: 2 });
  const res = pairedComparisons(pts, { s: 0, w: 0 }, { B: 3000, seed: 11 });
  assert.deepEqual(res.unmatched, []);
  assert.equal(res.comparisons.length, 5);
  const c = res.comparisons.find((x) => x.setting.s === 100 && x.setting.w === 1)!;
  assert.equal(c.label, 's=100 w=1');
  assert.equal(c.baselineLabel, 's=0 w=0');
  const at = (s: number, w: number, seed: number) => pts.find((p) => p.s === s && p.w === w && p.seed === seed)!;
  const diffs = [1, 2, 3, 4, 5].map((sd) => at(100, 1, sd).fvd - at(0, 0, sd).fvd);
  assert.ok(Math.abs(c.metric.diff - diffs.reduce((a, b) => a + b) / 5) < 1e-9);
  assert.ok(c.metric.lo <= c.metric.diff && c.metric.diff <= c.metric.hi);
  assert.ok(c.metric.sdDiff < c.metric.sdSeeds / 5, `paired sd ${c.metric.sdDiff} vs seed spread ${c.metric.sdSeeds}`);
  assert.ok(c.metric.hi < 0, 'the setting is better than the baseline (true difference -30 - 5 + 8 = -27 +- noise)');
  const w2 = [1, 2, 3, 4, 5].map((sd) => at(100, 1, sd).fvd_by_window[2] - at(0, 0, sd).fvd_by_window[2]);
  assert.ok(Math.abs(c.byWindow[2].diff - w2.reduce((a, b) => a + b) / 5) < 1e-9);
  // deterministic by seed
  assert.deepEqual(pairedComparisons(pts, { s: 0, w: 0 }, { B: 3000, seed: 11 }), res);
  assert.notDeepEqual(pairedComparisons(pts, { s: 0, w: 0 }, { B: 3000, seed: 12 }).comparisons, res.comparisons);
  // a partial baseline compares each w with its own s = 0
  const byS = pairedComparisons(pts, { s: 0 }, { B: 200 });
  assert.equal(byS.comparisons.length, 4);
  assert.deepEqual(
    byS.comparisons.map((x) => `${x.label} vs ${x.baselineLabel}`),
    ['s=100 w=0 vs s=0 w=0', 's=100 w=1 vs s=0 w=1', 's=200 w=0 vs s=0 w=0', 's=200 w=1 vs s=0 w=1'],
  );
  const tab = comparisonsTable(res, pts);
  assert.equal(tab.numRows(), 5);
  assert.ok(['setting', 'baseline', 'n_pairs', 'fvd_proxy_diff', 'fvd_proxy_diff_lo', 'fvd_proxy_diff_hi', 'fvd_proxy_sd_diff', 'fvd_proxy_sd_seeds', 'fvd_proxy_win0_diff'].every((n) => tab.columnNames().includes(n)));
});

test('paired comparisons: pairs only common seeds, names what has no baseline, rejects a baseline matching nothing', () => {
  const pts = syntheticPoints({ s: [0, 100], w: [0], seeds: [1, 2, 3] }).filter((p) => !(p.s === 0 && p.seed === 3));
  const res = pairedComparisons(pts, { s: 0 }, { B: 100 });
  assert.deepEqual(res.comparisons[0].seeds, [1, 2]);
  const extra = [...pts, ...syntheticPoints({ s: [300], w: [5], seeds: [1] })];
  const r2 = pairedComparisons(extra, { s: 0, w: 0 }, { B: 100 });
  assert.deepEqual(r2.unmatched, []);
  const r3 = pairedComparisons(extra, { s: 0 }, { B: 100 });
  assert.deepEqual(r3.unmatched, ['s=300 w=5: no baseline point s=0 w=5']);
  assert.throws(() => pairedComparisons(pts, { s: 50 }), /no sweep point matches the baseline \{"s":50\}/);
  assert.throws(() => pairedComparisons(pts, {}), /the baseline names no setting field/);
});

test('paired comparisons of short points (no s): a baseline with s null pairs them, one with s 0 matches nothing', () => {
  const pts = syntheticPoints({ modes: ['short'], s: [null], w: [0, 1, 2], seeds: [1, 2, 3] });
  const res = pairedComparisons(pts, { mode: 'short', s: null, w: 0 }, { B: 200, seed: 3 });
  assert.deepEqual(res.unmatched, []);
  assert.equal(res.comparisons.length, 2);
  const byW = (w: number) => pts.filter((p) => p.w === w).sort((a, b) => a.seed - b.seed);
  for (const c of res.comparisons) {
    const w = c.setting.w;
    const expect = byW(w).reduce((a, p, i) => a + (p.fvd - byW(0)[i].fvd), 0) / 3;
    assert.ok(Math.abs(c.metric.diff - expect) < 1e-9, `w ${w}: ${c.metric.diff} against ${expect}`);
  }
  assert.throws(() => pairedComparisons(pts, { mode: 'short', s: 0, w: 0 }), /no sweep point matches the baseline/);
  // the report's heading and the paired plot's title name the baseline as setting labels do
  assert.equal(baselineText(res.baseline), 'mode=short s=none w=0');
  assert.equal(baselineText({ mode: 'hierarchical', s: 0 }), 'mode=hierarchical s=0');
});
