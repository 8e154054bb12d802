/**
 * Tables as HTML outputs, through the results layer's HTML writer (lib/results/table: numbers to 4
 * significant digits, text escaped): arquero tables (e.g. `resultsTable(points)`) or plain rows,
 * whose values other than strings, numbers and null are shown as short JSON.
 */
import { escapeHtml, tableFromRows, tableHtml as resultsTableHtml } from '../results/table';
import type { Cell } from '../results/table';
import type { Table } from '../results/arquero';
import { showHtml } from './output';

export interface TableOptions {
  caption?: string;
}

function cell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  const json = JSON.stringify(v);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function isTable(source: readonly Record<string, unknown>[] | Table): source is Table {
  return !Array.isArray(source);
}

/** An HTML table (with an optional caption) of rows or an arquero table. */
export function tableHtml(source: readonly Record<string, unknown>[] | Table, opts: TableOptions = {}): string {
  const table = isTable(source) ? source : tableFromRows(source.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cell(v)]))));
  const caption = opts.caption ? `<div style="font-weight:bold;margin:6px 0 2px">${escapeHtml(opts.caption)}</div>` : '';
  return `<div class="lvdm-table">${caption}${resultsTableHtml(table)}</div>`;
}

export function showTable(source: readonly Record<string, unknown>[] | Table, opts: TableOptions = {}): void {
  showHtml(tableHtml(source, opts));
}
