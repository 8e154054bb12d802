/**
 * The results table of an experiment (arquero): one row per finished sweep point, and its
 * writers (CSV, row-oriented JSON, markdown, HTML), written atomically.
 *
 * Columns: experiment, dataset, mode, s, w, frames, steps, seed, the metric named by what it is
 * (`fvd` and `kvd` with real I3D weights, `fvd_proxy` and `kvd_proxy` otherwise), `window` (frames
 * per window) and one column per frame window (`fvd_win0`, `fvd_win1`, ...: window i covers frames
 * [i*window, (i+1)*window)), n_fake, n_real, wall_s, protocol (a one-line summary; the full
 * protocol is in the points' JSON and in the report) and the first sample video.
 */
import * as path from 'node:path';
import type { PointResult } from '../experiments/types';
import { writeFileAtomic } from '../io/atomic';
import { aq, type Table } from './arquero';
import { metricNames } from './settings';

export type Cell = string | number | null;
export type Row = Record<string, Cell>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One line naming the parts of a metric protocol that decide comparability. */
export function protocolSummary(protocol: Record<string, unknown>): string {
  const parts: string[] = [];
  const fe = protocol.feature_extractor;
  if (isRecord(fe) && typeof fe.extractor === 'string') parts.push(fe.extractor);
  if (typeof protocol.name === 'string') parts.push(protocol.name);
  if (typeof protocol.frames === 'number') parts.push(`${protocol.frames}-frame clips` + (typeof protocol.stride === 'number' ? ` stride ${protocol.stride}` : ''));
  if (typeof protocol.runs === 'number') parts.push(`${protocol.runs} run${protocol.runs === 1 ? '' : 's'}`);
  if (typeof protocol.seed === 'number') parts.push(`seed ${protocol.seed}`);
  if (typeof protocol.covariance === 'string') parts.push(`cov ${protocol.covariance}`);
  return parts.length > 0 ? parts.join(' · ') : JSON.stringify(protocol).slice(0, 120);
}

/** Number of frame-window columns: the longest `fvd_by_window` among the points. */
export function windowCount(points: readonly PointResult[]): number {
  return points.reduce((m, p) => Math.max(m, p.fvd_by_window.length), 0);
}

/** Rows of the results table in sweep order (setting fields, then seed). */
export function resultRows(points: readonly PointResult[]): Row[] {
  const names = metricNames(points);
  const nw = windowCount(points);
  const anyEta = points.some((p) => p.eta !== undefined); // an eta column where some grid set eta (null: sweep.eta)
  const sorted = [...points].sort(
    (a, b) =>
      a.dataset.localeCompare(b.dataset) || a.mode.localeCompare(b.mode) || (a.s ?? -Infinity) - (b.s ?? -Infinity) || a.w - b.w || a.frames - b.frames || a.steps - b.steps || (a.eta ?? -1) - (b.eta ?? -1) || a.seed - b.seed,
  );
  return sorted.map((p) => {
    const row: Row = {
      experiment: p.experiment,
      dataset: p.dataset,
      mode: p.mode,
      s: p.s,
      w: p.w,
      frames: p.frames,
      steps: p.steps,
      ...(anyEta ? { eta: p.eta ?? null } : {}),
      seed: p.seed,
      [names.fvd]: finiteOrNull(p.fvd),
      [names.kvd]: finiteOrNull(p.kvd),
      window: nw > 0 ? p.window : null,
    };
    if (p.object_consistency !== undefined) row.object_consistency = finiteOrNull(p.object_consistency);
    if (p.motion_consistency !== undefined) row.motion_consistency = finiteOrNull(p.motion_consistency);
    if (p.polygons !== undefined) row.polygons = finiteOrNull(p.polygons);
    if (p.regular !== undefined) row.regular = finiteOrNull(p.regular);
    for (let i = 0; i < nw; i++) row[`${names.fvd}_win${i}`] = finiteOrNull(p.fvd_by_window[i]);
    row.n_fake = p.n_fake;
    row.n_real = p.n_real;
    row.wall_s = p.wall_s;
    row.protocol = protocolSummary(p.protocol);
    row.sample = p.samples[0] ?? null;
    return row;
  });
}

/** A number for a table cell: null when missing or not finite (NaN for one seed, say). */
export function finiteOrNull(v: number | undefined): number | null {
  return v === undefined || !Number.isFinite(v) ? null : v;
}

/** Sets the cells `<prefix>_<key>` of a row from `values` (non-finite values become null). */
export function putNumbers(row: Row, prefix: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) row[`${prefix}_${k}`] = finiteOrNull(v);
}

/** The results table: one row per sweep point (see the module comment for the columns). */
export function resultsTable(points: readonly PointResult[]): Table {
  return tableFromRows(resultRows(points));
}

/** An arquero table from rows, keeping the column order of the first row (empty: no columns). */
export function tableFromRows(rows: readonly Row[]): Table {
  if (rows.length === 0) return aq.table({});
  const names = Object.keys(rows[0]);
  const cols: Record<string, Cell[]> = {};
  for (const n of names) cols[n] = rows.map((r) => (n in r ? r[n] : null));
  return aq.table(cols);
}

/** A number for people: 4 significant digits, no exponent for ordinary magnitudes. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

function formatCell(v: unknown): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return formatNumber(v);
  return String(v);
}

function formatAll(t: Table): Record<string, (v: unknown) => string> {
  const f: Record<string, (v: unknown) => string> = {};
  for (const n of t.columnNames()) f[n] = formatCell;
  return f;
}

/** Markdown (numbers to 4 significant digits, '–' for missing values). */
export function tableMarkdown(t: Table): string {
  return t.toMarkdown({ format: formatAll(t) });
}

/** Text safe inside HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** An HTML <table> (numbers to 4 significant digits; arquero escapes the text), for the report. */
export function tableHtml(t: Table): string {
  return t.toHTML({ format: formatAll(t), null: () => '–' });
}

/** Row-oriented JSON (an array of objects), readable by people and by `aq.from(JSON.parse(...))`. */
export function tableJson(t: Table): string {
  return JSON.stringify(t.objects(), null, 1) + '\n';
}

export interface WrittenTable {
  csv: string;
  json: string;
  md: string;
}

/** Writes `<dir>/<base>.csv`, `.json` and `.md` atomically; returns their paths. */
export function writeTable(t: Table, dir: string, base: string): WrittenTable {
  const out: WrittenTable = { csv: path.join(dir, `${base}.csv`), json: path.join(dir, `${base}.json`), md: path.join(dir, `${base}.md`) };
  writeFileAtomic(out.csv, t.toCSV()); // no trailing newline: arquero's fromCSV would read an empty row
  writeFileAtomic(out.json, tableJson(t));
  writeFileAtomic(out.md, tableMarkdown(t) + '\n');
  return out;
}
