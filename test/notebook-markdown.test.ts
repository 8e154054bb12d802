/** lib/notebook/markdown.ts: pipe tables of a markdown file, with their headings (notebook 09 reads lib/t2v/RESULTS.md). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { markdownTables, readMarkdownTables } from '../lib/notebook/markdown';
import { ROOT } from './helpers';

test('pipe tables are read with their heading, columns in order, cells trimmed', () => {
  const md = ['# Title', 'text | not a table', '', '## Numbers', '', '| s | 0 | 7.5 |', '|---|:--:|---:|', '| acc | 0.24 | 0.396 |', '|  n  | 96 |', 'after', '| a | b |', '|---|---|', '| 1 | 2 |'].join('\n');
  const t = markdownTables(md);
  assert.equal(t.length, 2);
  assert.deepEqual(t[0], { heading: 'Numbers', columns: ['s', '0', '7.5'], rows: [{ s: 'acc', '0': '0.24', '7.5': '0.396' }, { s: 'n', '0': '96', '7.5': '' }] });
  assert.deepEqual(t[1].rows, [{ a: '1', b: '2' }]);
});

test('lines inside fenced code blocks are neither headings nor tables', () => {
  const md = ['## Results', '```sh', '# a shell comment, not a heading', '| a | b |', '|---|---|', '| 1 | 2 |', '```', '| x | y |', '|---|---|', '| 3 | 4 |', '~~~~', '```', '# still code', '~~~~', '| p | q |', '|---|---|', '| 5 | 6 |'].join('\n');
  const t = markdownTables(md);
  assert.deepEqual(t.map((x) => x.heading), ['Results', 'Results']);
  assert.deepEqual(t.map((x) => x.rows), [[{ x: '3', y: '4' }], [{ p: '5', q: '6' }]]);
});

test('a column name used twice in a header keeps both columns (the second as "name (2)")', () => {
  const [t] = markdownTables(['| setting | diff | 95% interval | kvd | 95% interval |', '|---|---|---|---|---|', '| s = 50 | -1 | -2 to 0 | -5 | -9 to -1 |'].join('\n'));
  assert.deepEqual(t.columns, ['setting', 'diff', '95% interval', 'kvd', '95% interval (2)']);
  assert.deepEqual(t.rows[0], { setting: 's = 50', diff: '-1', '95% interval': '-2 to 0', kvd: '-5', '95% interval (2)': '-9 to -1' });
});

test('the prompt-following tables of lib/t2v/RESULTS.md; a missing heading is an error naming the file', () => {
  const file = path.join(ROOT, 'lib', 't2v', 'RESULTS.md');
  const [accuracy, probe] = readMarkdownTables(file, 'Result');
  assert.deepEqual(accuracy.columns.slice(0, 3), ['videos', 'classifier', 'colour']);
  assert.ok(accuracy.rows.some((r) => r.videos.startsWith('generated, s = 7.5')));
  assert.equal(probe.columns[0], 's');
  assert.throws(() => readMarkdownTables(file, 'No such heading'), /RESULTS\.md: no table under the heading 'No such heading'/);
});
