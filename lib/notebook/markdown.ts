/**
 * Tables of a markdown file (GitHub pipe tables) as rows, so a notebook can show figures recorded
 * in a README / RESULTS.md without copying them: each table with the heading it sits under.
 */
import * as fs from 'node:fs';

export interface MarkdownTable {
  /** Text of the nearest heading above the table ('' before any heading). */
  heading: string;
  columns: string[];
  /** One record per body row, keyed by column name (cells as written, trimmed). A name repeated in
   *  the header gets ' (2)', ' (3)', ... from its second use on, so no cell is lost. */
  rows: Record<string, string>[];
}

const cells = (line: string): string[] => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
const isRow = (line: string | undefined): line is string => line !== undefined && line.trim().startsWith('|');
const isSeparator = (line: string | undefined): boolean => isRow(line) && cells(line).every((c) => /^:?-+:?$/.test(c));

/** Header names made unique: a repeated name gets ' (k)' from its k-th use on. */
function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n} (${k})`.trim();
  });
}

/** A fence line (CommonMark: three or more backticks or tildes, up to three spaces of indent). */
const fence = (line: string): string | null => /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1] ?? null;

/** Every pipe table of `text` (header row, separator row, body rows); lines inside fenced code
 *  blocks are code, neither headings nor tables (a shell comment '# ...' there is no heading). */
export function markdownTables(text: string): MarkdownTable[] {
  const lines = text.split(/\r?\n/);
  const out: MarkdownTable[] = [];
  let heading = '';
  let open: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const f = fence(lines[i]);
    if (open !== null) {
      // A fence closes on the same character, at least as long (CommonMark 4.5).
      if (f !== null && f[0] === open[0] && f.length >= open.length && lines[i].trim() === f) open = null;
      continue;
    }
    if (f !== null) {
      open = f;
      continue;
    }
    const h = /^#{1,6}\s+(.*)$/.exec(lines[i]);
    if (h) heading = h[1].trim();
    if (!isRow(lines[i]) || !isSeparator(lines[i + 1])) continue;
    const columns = uniqueNames(cells(lines[i]));
    const rows: Record<string, string>[] = [];
    for (i += 2; isRow(lines[i]); i++) {
      const c = cells(lines[i]);
      rows.push(Object.fromEntries(columns.map((name, j) => [name, c[j] ?? ''])));
    }
    out.push({ heading, columns, rows });
    i--;
  }
  return out;
}

/** The tables of a markdown file; `heading` keeps those under that heading (an error naming the file when there are none). */
export function readMarkdownTables(file: string, heading?: string): MarkdownTable[] {
  const all = markdownTables(fs.readFileSync(file, 'utf8'));
  const picked = heading === undefined ? all : all.filter((t) => t.heading === heading);
  if (picked.length === 0) throw new Error(`${file}: no table${heading === undefined ? '' : ` under the heading '${heading}'`} (headings with tables: ${[...new Set(all.map((t) => t.heading))].join(', ') || 'none'})`);
  return picked;
}
