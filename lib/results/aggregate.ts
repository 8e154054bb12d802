/**
 * Aggregates over seeds: for each setting, the mean, the sample standard deviation (ddof 1) and
 * the 95% Student-t interval of the mean, for the metric, KVD and the metric of each frame window.
 * The interval is mean +- t_{0.975, n-1} * std / sqrt(n); with one seed it is undefined (null).
 * Shapes sweeps also record per-point readings of the clips (object consistency, polygons, regular
 * outlines: metrics/object-consistency.ts, metrics/shape-kind.ts); they are summarised the same way.
 */
import type { PointResult } from '../experiments/types';
import type { Table } from './arquero';
import { groupBySetting, metricNames, type Setting, settingLabel, varyingFields } from './settings';
import { tInterval } from './stats';
import { putNumbers, type Row, tableFromRows, windowCount } from './table';

export interface Summary {
  n: number;
  mean: number;
  /** ddof 1; NaN for one value. */
  std: number;
  /** Two-sided 95% t-interval of the mean; NaN for one value. */
  lo: number;
  hi: number;
}

/** Per-point fractions of clips that shapes sweeps record (lib/experiments/types.ts PointResult). */
export const CLIP_READINGS = ['object_consistency', 'motion_consistency', 'polygons', 'regular'] as const;
export type ClipReading = (typeof CLIP_READINGS)[number];

export interface SettingAggregate {
  setting: Setting;
  /** Names only the fields that vary across the experiment's settings. */
  label: string;
  seeds: number[];
  metric: Summary;
  kvd: Summary;
  /** Per frame window i (over the seeds that have window i). */
  byWindow: Summary[];
  /** Frames per window. */
  window: number;
  /** The clip readings every point of the setting carries, over its seeds. */
  readings: Partial<Record<ClipReading, Summary>>;
  points: PointResult[];
}

export function summarize(xs: readonly number[], level = 0.95): Summary {
  const v = xs.filter((x) => Number.isFinite(x));
  const t = tInterval(v, level);
  return { n: v.length, mean: t.mean, std: t.std, lo: t.lo, hi: t.hi };
}

/** One aggregate per setting, in setting order. */
export function aggregateSettings(points: readonly PointResult[], level = 0.95): SettingAggregate[] {
  const groups = groupBySetting(points);
  const fields = varyingFields(groups.map((g) => g.setting));
  const nw = windowCount(points);
  return groups.map((g) => ({
    setting: g.setting,
    label: settingLabel(g.setting, fields),
    seeds: g.points.map((p) => p.seed),
    metric: summarize(g.points.map((p) => p.fvd), level),
    kvd: summarize(g.points.map((p) => p.kvd), level),
    byWindow: Array.from({ length: nw }, (_, i) => summarize(g.points.filter((p) => i < p.fvd_by_window.length).map((p) => p.fvd_by_window[i]), level)),
    window: g.points[0].window,
    readings: Object.fromEntries(
      CLIP_READINGS.filter((k) => g.points.every((p) => p[k] !== undefined)).map((k) => [k, summarize(g.points.map((p) => p[k] as number), level)]),
    ),
    points: g.points,
  }));
}

/**
 * The aggregates as a table: setting fields, n_seeds, `<metric>_mean/_std/_ci_lo/_ci_hi`, the
 * same for KVD, the mean of each frame window (`<metric>_win<i>_mean`), and the mean, std and
 * interval of each clip reading that some setting carries (`regular_mean`, ...; null elsewhere).
 */
export function aggregatesTable(aggs: readonly SettingAggregate[], points: readonly PointResult[]): Table {
  const names = metricNames(points);
  const anyEta = aggs.some((a) => a.setting.eta !== null);
  const readings = CLIP_READINGS.filter((k) => aggs.some((a) => a.readings[k]));
  const rows: Row[] = aggs.map((a) => {
    const { eta, ...fields } = a.setting; // eta only where a grid set it (as in the results table)
    const r: Row = { ...fields, ...(anyEta ? { eta } : {}), n_seeds: a.seeds.length, seeds: a.seeds.join(' ') };
    putNumbers(r, names.fvd, { mean: a.metric.mean, std: a.metric.std, ci_lo: a.metric.lo, ci_hi: a.metric.hi });
    putNumbers(r, names.kvd, { mean: a.kvd.mean, std: a.kvd.std, ci_lo: a.kvd.lo, ci_hi: a.kvd.hi });
    a.byWindow.forEach((s, i) => putNumbers(r, `${names.fvd}_win${i}`, { mean: s.mean }));
    for (const k of readings) {
      const x = a.readings[k];
      putNumbers(r, k, { mean: x?.mean ?? NaN, std: x?.std ?? NaN, ci_lo: x?.lo ?? NaN, ci_hi: x?.hi ?? NaN });
    }
    return r;
  });
  return tableFromRows(rows);
}
