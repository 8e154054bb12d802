/**
 * CLIP BPE tokenizer against reference ids from an independent Python implementation of CLIP's
 * published algorithm (test/fixtures/clip-tokenizer/make_reference.py, which also learns the small
 * vocabulary and merges used here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipTokenizer, buildWordVocab, cleanText, parseMerges } from '../lib/text/tokenizer';
import { tempDir } from './helpers';

const DIR = path.join(__dirname, 'fixtures', 'clip-tokenizer');
interface Case {
  text: string;
  encode: number[];
  ids: number[];
  mask: number[];
}
const expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as { context_length: number; cases: Case[] };
const tok = ClipTokenizer.fromFiles(path.join(DIR, 'vocab.json'), path.join(DIR, 'merges.txt'));

test('tokenizer: ids, padding to 77 and masks equal the Python reference for every case', () => {
  assert.equal(expected.context_length, 77);
  for (const c of expected.cases) {
    assert.deepEqual(tok.encode(c.text), c.encode, `encode(${JSON.stringify(c.text)})`);
    const b = tok.tokenize([c.text]);
    assert.equal(b.ids.length, 77);
    assert.deepEqual(Array.from(b.ids), c.ids, `tokenize(${JSON.stringify(c.text)})`);
    assert.deepEqual(Array.from(b.mask), c.mask, `mask(${JSON.stringify(c.text)})`);
  }
});

test('tokenizer: start/end tokens, end-token padding, truncation keeps the end token', () => {
  const b = tok.tokenize(['', 'a red circle moves left', Array(60).fill('red circle').join(' ')]);
  const row = (i: number): number[] => Array.from(b.ids.subarray(i * 77, (i + 1) * 77));
  assert.deepEqual(row(0).slice(0, 3), [tok.startId, tok.endId, tok.endId]);
  assert.equal(b.mask.subarray(0, 77).reduce((a, v) => a + v, 0), 2);
  assert.equal(row(1)[0], tok.startId);
  assert.equal(row(2)[76], tok.endId);
  assert.equal(b.mask.subarray(2 * 77, 3 * 77).reduce((a, v) => a + v, 0), 77);
  const zeroPad = tok.tokenize(['red'], { pad: 0, contextLength: 8 });
  assert.deepEqual(Array.from(zeroPad.ids).slice(3), [0, 0, 0, 0, 0]);
});

test('tokenizer: lower-casing and whitespace rules', () => {
  assert.equal(cleanText('  A  RED\tCircle\n moves  '), 'a red circle moves');
  assert.equal(cleanText('&amp;amp; x'), '& x');
  assert.deepEqual(tok.encode('RED   Circle'), tok.encode('red circle'));
});

test('tokenizer: errors name the file and the problem', () => {
  const d = tempDir();
  try {
    fs.writeFileSync(path.join(d, 'vocab.json'), JSON.stringify({ a: 0 }));
    fs.writeFileSync(path.join(d, 'merges.txt'), '#version: 0.2\n');
    assert.throws(() => ClipTokenizer.fromFiles(path.join(d, 'vocab.json'), path.join(d, 'merges.txt')), /vocab\.json: vocabulary has no '<\|startoftext\|>' token/);
    assert.throws(() => parseMerges('#version: 0.2\na b\nbad\n', 'm.txt'), /m\.txt:3: expected a merge 'first second', got 'bad'/);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('tokenizer: a generated word vocabulary encodes each listed word as one token', () => {
  const words = ['red', 'circle', 'circles', 'moves', 'left', 'two', 'a'];
  const t = new ClipTokenizer(buildWordVocab(words));
  for (const w of words) assert.equal(t.encode(w).length, 1, w);
  assert.equal(t.encode('a red circle moves left').length, 5);
  assert.ok(t.encode('zebra').length > 1);
});
