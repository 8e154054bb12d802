/**
 * Paired comparisons against a baseline setting.
 *
 * Why paired: a seed fixes the conditioning frames (the same first window) and the sampler noise,
 * so two settings run with the same seed share most of their randomness. In the long-video runs
 * the spread of FVD between seeds was far larger than the change a setting makes, and the
 * difference of two settings on the same seed is far less noisy than the difference of their
 * seed means. So each setting is compared with the baseline seed by seed (and window by window),
 * and the interval is a percentile bootstrap over seeds of the mean paired difference
 * (candidate - baseline; negative means a lower, better FVD than the baseline).
 */
import type { PointResult, SweepValues } from '../experiments/types';
import { hashString } from '../nn/rng';
import type { Table } from './arquero';
import { groupBySetting, matchesPartial, metricNames, type Setting, SETTING_FIELDS, settingKey, settingLabel, varyingFields } from './settings';
import { bootstrapMeanColumns, mean, std } from './stats';
import { putNumbers, type Row, tableFromRows } from './table';

export type Baseline = Partial<SweepValues> & { dataset?: string };

export interface PairedSummary {
  /** Pairs (seeds present in both settings, with this quantity finite on both). */
  n: number;
  /** Mean of candidate - baseline over the pairs. */
  diff: number;
  /** Standard deviation (ddof 1) of the paired differences. */
  sdDiff: number;
  /** Standard deviation (ddof 1) of the candidate over the same seeds: the seed spread. */
  sdSeeds: number;
  /** Percentile bootstrap interval of the mean difference. */
  lo: number;
  hi: number;
}

export interface Comparison {
  setting: Setting;
  baseline: Setting;
  label: string;
  baselineLabel: string;
  /** The paired seeds. */
  seeds: number[];
  metric: PairedSummary;
  kvd: PairedSummary;
  byWindow: PairedSummary[];
}

export interface PairedOptions {
  /** Bootstrap resamples (default 10000). */
  B?: number;
  /** Seed of the bootstrap (default 0); each comparison derives its own stream from it. */
  seed?: number;
  /** Interval level (default 0.95). */
  level?: number;
}

export interface PairedResult {
  baseline: Baseline;
  comparisons: Comparison[];
  /** Settings that have no baseline counterpart, with why. */
  unmatched: string[];
}

function summarizePairs(cand: number[], diffs: number[], ci: { lo: number; hi: number }): PairedSummary {
  const ok = diffs.map((d, i) => (Number.isFinite(d) ? i : -1)).filter((i) => i >= 0);
  const d = ok.map((i) => diffs[i]);
  return { n: d.length, diff: mean(d), sdDiff: std(d), sdSeeds: std(ok.map((i) => cand[i])), lo: ci.lo, hi: ci.hi };
}

/**
 * Compares every setting with its baseline counterpart: the setting with the baseline's given
 * fields substituted (so `{ s: 0 }` compares each (mode, w, ...) setting with its own s = 0).
 */
export function pairedComparisons(points: readonly PointResult[], baseline: Baseline, opts: PairedOptions = {}): PairedResult {
  const given = SETTING_FIELDS.filter((f) => baseline[f as keyof Baseline] !== undefined);
  if (given.length === 0) throw new Error('paired comparisons: the baseline names no setting field (dataset, mode, s, w, frames, steps)');
  const groups = groupBySetting(points);
  const byKey = new Map(groups.map((g) => [settingKey(g.setting), g]));
  const fields = varyingFields(groups.map((g) => g.setting));
  if (!groups.some((g) => matchesPartial(g.setting, baseline))) {
    throw new Error(`paired comparisons: no sweep point matches the baseline ${JSON.stringify(baseline)}`);
  }
  const out: PairedResult = { baseline, comparisons: [], unmatched: [] };
  for (const g of groups) {
    if (matchesPartial(g.setting, baseline)) continue;
    const base: Setting = { ...g.setting };
    for (const f of given) (base as unknown as Record<string, unknown>)[f] = baseline[f as keyof Baseline];
    const label = settingLabel(g.setting, fields);
    const bg = byKey.get(settingKey(base));
    if (!bg) {
      out.unmatched.push(`${label}: no baseline point ${settingLabel(base, fields)}`);
      continue;
    }
    const bySeed = new Map(bg.points.map((p) => [p.seed, p]));
    const pairs = g.points.filter((p) => bySeed.has(p.seed)).map((p) => [p, bySeed.get(p.seed)!] as const);
    if (pairs.length === 0) {
      out.unmatched.push(`${label}: no seed in common with the baseline ${settingLabel(base, fields)}`);
      continue;
    }
    const nw = pairs.reduce((m, [c, b]) => Math.max(m, Math.min(c.fvd_by_window.length, b.fvd_by_window.length)), 0);
    const win = (p: PointResult, i: number): number => (i < p.fvd_by_window.length ? p.fvd_by_window[i] : NaN);
    // columns: metric, kvd, window 0..nw-1; rows: seeds (the bootstrap's resampling unit)
    const cand = pairs.map(([c]) => [c.fvd, c.kvd, ...Array.from({ length: nw }, (_, i) => win(c, i))]);
    const diffs = pairs.map(([c, b]) => [c.fvd - b.fvd, c.kvd - b.kvd, ...Array.from({ length: nw }, (_, i) => win(c, i) - win(b, i))]);
    const ci = bootstrapMeanColumns(diffs, { B: opts.B, level: opts.level, seed: ((opts.seed ?? 0) ^ hashString(settingKey(g.setting))) >>> 0 });
    const col = (j: number): PairedSummary =>
      summarizePairs(
        cand.map((r) => r[j]),
        diffs.map((r) => r[j]),
        ci[j],
      );
    out.comparisons.push({
      setting: g.setting,
      baseline: base,
      label,
      baselineLabel: settingLabel(base, fields),
      seeds: pairs.map(([c]) => c.seed),
      metric: col(0),
      kvd: col(1),
      byWindow: Array.from({ length: nw }, (_, i) => col(2 + i)),
    });
  }
  return out;
}

/**
 * The comparisons as a table: setting, baseline, n_pairs, `<metric>_diff` with its bootstrap
 * interval, the sd of the paired differences next to the seed spread, the same for KVD, and the
 * mean difference per frame window (`<metric>_win<i>_diff`).
 */
export function comparisonsTable(res: PairedResult, points: readonly PointResult[]): Table {
  const names = metricNames(points);
  const rows: Row[] = res.comparisons.map((c) => {
    const r: Row = { setting: c.label, baseline: c.baselineLabel, n_pairs: c.seeds.length };
    const cells = (s: PairedSummary): Record<string, number> => ({ diff: s.diff, diff_lo: s.lo, diff_hi: s.hi, sd_diff: s.sdDiff, sd_seeds: s.sdSeeds });
    putNumbers(r, names.fvd, cells(c.metric));
    putNumbers(r, names.kvd, cells(c.kvd));
    c.byWindow.forEach((s, i) => putNumbers(r, `${names.fvd}_win${i}`, { diff: s.diff }));
    return r;
  });
  return tableFromRows(rows);
}
