/**
 * The experiment figures, built from aggregates over seeds (lib/results):
 * - metric vs perturbation strength s (one curve per guidance scale w and any other varying field),
 * - metric vs guidance scale w (one curve per s ...),
 * - metric per frame window (one curve per setting, a 95% band over seeds),
 * - paired differences against the baseline (bootstrap intervals),
 * - training loss curves.
 * Error bars are 95% t-intervals over seeds (or +- one std). Metric floors (real vs real, and
 * autoencoder reconstruction vs real) are dashed horizontal lines.
 */
import type { LossCurve, MetricFloors } from '../experiments/types';
import type { SettingAggregate, Summary } from '../results/aggregate';
import type { PairedResult } from '../results/paired';
import { type SettingField, settingLabel, varyingFields } from '../results/settings';
import { type Axis, baseLayout, color, dash, type Figure, logTicks, type ScatterTrace, withAlpha } from './figure';

export type Quantity = 'metric' | 'kvd';

export interface MetricFigureOptions {
  /** Column name of the metric ('fvd', 'fvd_proxy'); KVD is named from it. */
  metricName: string;
  /** Which quantity to plot (default the metric). */
  quantity?: Quantity;
  /** Error bars: the 95% t-interval over seeds (default) or +- one standard deviation. */
  error?: 'ci95' | 'std';
  floors?: MetricFloors;
  /** Per-window plot: error bands up to this many curves, error bars beyond (default 4). */
  maxBands?: number;
}

function quantityName(o: MetricFigureOptions): string {
  return (o.quantity ?? 'metric') === 'metric' ? o.metricName : o.metricName.replace(/^fvd/, 'kvd');
}

function pick(a: SettingAggregate, q: Quantity): Summary {
  return q === 'metric' ? a.metric : a.kvd;
}

/** Lower and upper error extents of a summary (null when undefined, e.g. one seed). */
function extents(s: Summary, error: 'ci95' | 'std'): [number | null, number | null] {
  const up = error === 'std' ? s.std : s.hi - s.mean;
  const down = error === 'std' ? s.std : s.mean - s.lo;
  return [Number.isFinite(down) ? down : null, Number.isFinite(up) ? up : null];
}

function errorText(o: MetricFigureOptions): string {
  return (o.error ?? 'ci95') === 'std' ? 'mean ± std over seeds' : 'mean, 95% t-interval over seeds';
}

/** Dashed horizontal floor lines spanning [x0, x1]. */
export function floorTraces(floors: MetricFloors | undefined, quantity: Quantity, x0: number | string, x1: number | string): ScatterTrace[] {
  if (!floors) return [];
  const key = quantity === 'metric' ? 'fvd' : 'kvd';
  const items: [string, number, string][] = [
    ['floor: real vs real', floors.real_vs_real[key], '#444444'],
    ['floor: AE reconstruction', floors.reconstruction[key], '#999999'],
  ];
  return items
    .filter(([, v]) => Number.isFinite(v))
    .map(([name, v, c]) => ({ type: 'scatter', mode: 'lines', name, x: [x0, x1], y: [v, v], line: { color: c, dash: 'dash', width: 1.5 }, hoverinfo: 'x+y+name' }));
}

function fieldTitle(f: SettingField): string {
  return f === 's' ? 'perturbation strength s' : f === 'w' ? 'guidance scale w' : f === 'steps' ? 'sampler steps' : f === 'frames' ? 'video length (frames)' : f;
}

/**
 * Metric vs a numeric sweep field (s or w, also steps or frames): one curve per combination of
 * the other varying fields, error bars over seeds. Settings with s = null are left out of a plot
 * against s. Returns null when fewer than two values of the field were swept.
 */
export function metricVsField(aggs: readonly SettingAggregate[], field: 's' | 'w' | 'steps' | 'frames', o: MetricFigureOptions): Figure | null {
  const q = o.quantity ?? 'metric';
  const err = o.error ?? 'ci95';
  const usable = aggs.filter((a) => a.setting[field] !== null && Number.isFinite(pick(a, q).mean));
  const xs = [...new Set(usable.map((a) => a.setting[field] as number))].sort((a, b) => a - b);
  if (xs.length < 2) return null;
  const others = varyingFields(usable.map((a) => a.setting)).filter((f) => f !== field);
  const curves = new Map<string, SettingAggregate[]>();
  for (const a of usable) {
    const key = others.length > 0 ? settingLabel(a.setting, others) : quantityName(o);
    const c = curves.get(key) ?? [];
    c.push(a);
    curves.set(key, c);
  }
  const data: ScatterTrace[] = [...curves.entries()].map(([name, as], i) => {
    as.sort((a, b) => (a.setting[field] as number) - (b.setting[field] as number));
    const ex = as.map((a) => extents(pick(a, q), err));
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name,
      x: as.map((a) => a.setting[field] as number),
      y: as.map((a) => pick(a, q).mean),
      line: { color: color(i), width: 2, dash: dash(i) },
      marker: { color: color(i), size: 7 },
      error_y: { type: 'data', symmetric: false, array: ex.map((e) => e[1]), arrayminus: ex.map((e) => e[0]), visible: true, color: color(i), thickness: 1.5, width: 4 },
    };
  });
  data.push(...floorTraces(o.floors, q, xs[0], xs[xs.length - 1]));
  const name = quantityName(o);
  return { data, layout: baseLayout(`${name} vs ${fieldTitle(field)} (${errorText(o)})`, fieldTitle(field), name) };
}

/**
 * Metric per frame window: one curve per setting (window means over seeds) with a 95% band
 * (or +- std), x = first frame of the window. Returns null when no point has two windows.
 */
export function metricByWindow(aggs: readonly SettingAggregate[], o: MetricFigureOptions): Figure | null {
  const err = o.error ?? 'ci95';
  const withWin = aggs.filter((a) => a.byWindow.filter((s) => Number.isFinite(s.mean)).length >= 2);
  if (withWin.length === 0) return null;
  const data: ScatterTrace[] = [];
  // bands stay readable for a few curves; with more, error bars on the lines instead
  const bands = withWin.length <= (o.maxBands ?? 4);
  let xmax = 0;
  withWin.forEach((a, i) => {
    const idx = a.byWindow.map((s, j) => (Number.isFinite(s.mean) ? j : -1)).filter((j) => j >= 0);
    const x = idx.map((j) => j * a.window);
    xmax = Math.max(xmax, x[x.length - 1]);
    const lo = idx.map((j) => {
      const [d] = extents(a.byWindow[j], err);
      return d === null ? null : a.byWindow[j].mean - d;
    });
    const hi = idx.map((j) => {
      const [, u] = extents(a.byWindow[j], err);
      return u === null ? null : a.byWindow[j].mean + u;
    });
    const c = color(i);
    const y = idx.map((j) => a.byWindow[j].mean);
    const line: ScatterTrace = { type: 'scatter', mode: 'lines+markers', name: a.label, x, y, line: { color: c, width: 2, dash: dash(i) }, marker: { color: c, size: 5 }, legendgroup: a.label };
    const complete = lo.every((v) => v !== null) && hi.every((v) => v !== null);
    if (complete && bands) {
      // band: a closed polygon along the upper bound and back along the lower bound
      data.push({
        type: 'scatter',
        mode: 'lines',
        name: `${a.label} band`,
        x: [...x, ...[...x].reverse()],
        y: [...hi, ...[...lo].reverse()],
        fill: 'toself',
        fillcolor: withAlpha(c, 0.18),
        line: { color: withAlpha(c, 0), width: 0 },
        showlegend: false,
        legendgroup: a.label,
        hoverinfo: 'skip',
      });
    } else if (complete) {
      line.error_y = { type: 'data', symmetric: false, array: hi.map((v, k) => (v as number) - y[k]), arrayminus: lo.map((v, k) => y[k] - (v as number)), visible: true, color: c, thickness: 1, width: 3 };
    }
    data.push(line);
  });
  data.push(...floorTraces(o.floors, 'metric', 0, xmax));
  const win = withWin[0].window;
  return { data, layout: baseLayout(`${o.metricName} per ${win}-frame window (${errorText(o)})`, `first frame of the window (windows of ${win} frames)`, o.metricName) };
}

/**
 * Paired differences against the baseline: one marker per setting (x: the setting) with its
 * bootstrap interval, and a dashed zero line. Returns null when there is no comparison.
 */
export function pairedDifferences(res: PairedResult, o: MetricFigureOptions): Figure | null {
  if (res.comparisons.length === 0) return null;
  const q = o.quantity ?? 'metric';
  const cs = res.comparisons;
  const get = (c: (typeof cs)[number]) => (q === 'metric' ? c.metric : c.kvd);
  const name = quantityName(o);
  const x = cs.map((c) => c.label);
  const data: ScatterTrace[] = [
    {
      type: 'scatter',
      mode: 'markers',
      name: `${name} difference (paired by seed)`,
      x,
      y: cs.map((c) => get(c).diff),
      marker: { color: color(0), size: 9 },
      error_y: {
        type: 'data',
        symmetric: false,
        array: cs.map((c) => (Number.isFinite(get(c).hi) ? get(c).hi - get(c).diff : null)),
        arrayminus: cs.map((c) => (Number.isFinite(get(c).lo) ? get(c).diff - get(c).lo : null)),
        visible: true,
        color: color(0),
        thickness: 1.5,
        width: 6,
      },
    },
    { type: 'scatter', mode: 'lines', name: 'no difference', x: [x[0], x[x.length - 1]], y: [0, 0], line: { color: '#444444', dash: 'dash', width: 1 }, hoverinfo: 'skip' },
  ];
  const base = cs.every((c) => c.baselineLabel === cs[0].baselineLabel) ? cs[0].baselineLabel : baselineText(res.baseline);
  const layout = baseLayout(`${name} minus baseline (${base}), same seeds; 95% bootstrap interval`, 'setting', `${name} difference`);
  layout.xaxis.type = 'category';
  return { data, layout };
}

/** 'mode=hierarchical s=0 w=0' for a partial baseline; a null s (short points) reads 's=none', as in setting labels. */
export function baselineText(b: PairedResult['baseline']): string {
  return Object.entries(b)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v === null ? 'none' : v}`)
    .join(' ');
}

/**
 * Training loss curves, one trace per stage; curves of different groups (LossCurve.group) go in
 * stacked panels with a y axis each, log-scaled where every loss of the panel is positive.
 * Returns null without curves.
 */
export function lossCurvesFigure(curves: readonly LossCurve[]): Figure | null {
  const usable = curves.filter((c) => c.steps.length > 0 && c.steps.length === c.loss.length);
  if (usable.length === 0) return null;
  const groups = [...new Set(usable.map((c) => c.group ?? ''))];
  const layout = baseLayout('training loss', 'step', '');
  const gap = 0.08;
  const data: ScatterTrace[] = [];
  groups.forEach((g, k) => {
    const members = usable.filter((c) => (c.group ?? '') === g);
    const positive = members.every((c) => c.loss.every((v) => v > 0));
    const axis: Axis = { ...layout.yaxis, title: { text: `${g ? `${g} ` : ''}loss${positive ? ' (log scale)' : ''}` } };
    if (positive) {
      axis.type = 'log';
      const all = members.flatMap((c) => c.loss.filter((v) => Number.isFinite(v)));
      Object.assign(axis, logTicks(Math.min(...all), Math.max(...all)));
    }
    if (groups.length > 1) {
      // Panel k from the top; each takes an equal share of the height.
      const h = (1 - gap * (groups.length - 1)) / groups.length;
      const top = 1 - k * (h + gap);
      axis.domain = [Math.max(0, top - h), top];
      axis.anchor = 'x';
    }
    if (k === 0) layout.yaxis = axis;
    else layout[`yaxis${k + 1}`] = axis;
    for (const c of members) {
      const i = usable.indexOf(c);
      data.push({ type: 'scatter', mode: 'lines', name: c.stage, x: c.steps, y: c.loss.map((v) => (Number.isFinite(v) ? v : null)), line: { color: color(i), width: 1.5, dash: dash(i) }, ...(k > 0 ? { yaxis: `y${k + 1}` } : {}) });
    }
  });
  if (groups.length > 1) {
    layout.xaxis.anchor = `y${groups.length}`; // the shared step axis under the bottom panel
    layout.height = 260 * groups.length + 80;
  }
  return { data, layout };
}

export interface NamedFigure {
  /** File-name friendly id, e.g. 'metric-vs-s'. */
  name: string;
  title: string;
  figure: Figure;
}

/** Every figure an experiment's results support, in report order. */
export function experimentFigures(
  aggs: readonly SettingAggregate[],
  o: MetricFigureOptions & { paired?: PairedResult; curves?: readonly LossCurve[] },
): NamedFigure[] {
  const out: NamedFigure[] = [];
  const add = (name: string, title: string, f: Figure | null): void => {
    if (f) out.push({ name, title, figure: f });
  };
  add('metric-vs-s', `${o.metricName} vs perturbation strength s`, metricVsField(aggs, 's', o));
  add('metric-vs-w', `${o.metricName} vs guidance scale w`, metricVsField(aggs, 'w', o));
  add('metric-by-window', `${o.metricName} per frame window`, metricByWindow(aggs, o));
  if (o.paired) add('paired-differences', `${o.metricName} paired differences against the baseline`, pairedDifferences(o.paired, o));
  add('kvd-vs-s', `${quantityName({ ...o, quantity: 'kvd' })} vs perturbation strength s`, metricVsField(aggs, 's', { ...o, quantity: 'kvd' }));
  add('kvd-vs-w', `${quantityName({ ...o, quantity: 'kvd' })} vs guidance scale w`, metricVsField(aggs, 'w', { ...o, quantity: 'kvd' }));
  if (o.curves) add('loss-curves', 'training loss curves', lossCurvesFigure(o.curves));
  return out;
}
