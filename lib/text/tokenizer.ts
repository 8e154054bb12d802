/**
 * CLIP's byte-level BPE tokenizer (Radford et al., 2021, "Learning Transferable Visual Models From
 * Natural Language Supervision"; the published `simple_tokenizer.py` algorithm), loading a user's
 * `vocab.json` (token -> id) and `merges.txt` (one merge "a b" per line, ranked by line, first line
 * "#version: ..." skipped) in the Hugging Face `CLIPTokenizer` file format.
 *
 * encode(text):
 *   1. clean: HTML entities unescaped twice, whitespace runs -> one space, trimmed, lower-cased
 *      (CLIP also runs ftfy.fix_text, a mojibake repair that is not reproduced here);
 *   2. split with CLIP's pattern: the two special tokens, the English contractions 's 't 're 've
 *      'm 'll 'd, letter runs, single digits, runs of other non-space characters;
 *   3. each piece's UTF-8 bytes are mapped to printable characters (bytes_to_unicode), the last
 *      character gets the end-of-word marker `</w>`, and the lowest-ranked adjacent pair is merged
 *      until no ranked pair is left; the resulting symbols are looked up in the vocabulary.
 * tokenize(text): <|startoftext|> + ids + <|endoftext|>, truncated to `contextLength` (default 77,
 *   the last kept id replaced by <|endoftext|>) and padded with `padId` (default <|endoftext|>, as
 *   the HF tokenizer of openai/clip-vit-large-patch14 pads; OpenAI's own code pads with 0). The
 *   attention mask marks <|startoftext|> .. <|endoftext|> inclusive.
 */
import * as fs from 'node:fs';

export const START_TOKEN = '<|startoftext|>';
export const END_TOKEN = '<|endoftext|>';
export const END_OF_WORD = '</w>';
export const CLIP_CONTEXT_LENGTH = 77;

/** CLIP's reversible byte -> printable-character table (printable Latin-1 bytes map to themselves). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n += 1;
    }
  }
  const table = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCodePoint(cs[i])));
  return table;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** HTML entity unescaping for the common named entities and numeric references (&#39; &#x27;). */
export function htmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[body.toLowerCase()] ?? m;
  });
}

/** CLIP's basic_clean (without ftfy) + whitespace_clean + lower(). */
export function cleanText(text: string): string {
  return htmlUnescape(htmlUnescape(text)).trim().replace(/\s+/gu, ' ').trim().toLowerCase();
}

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

export interface TokenizerFiles {
  /** token -> id (vocab.json). */
  vocab: Record<string, number>;
  /** Merge rules in rank order, each [first, second]. */
  merges: [string, string][];
}

export interface TokenizeOptions {
  contextLength?: number;
  /** 'end' (default) pads with <|endoftext|>, or an explicit id (OpenAI CLIP: 0). */
  pad?: 'end' | number;
}

export interface TokenizedBatch {
  /** [B * contextLength] ids, row-major. */
  ids: Int32Array;
  /** [B * contextLength] 1 for <|startoftext|> .. <|endoftext|>, 0 for padding. */
  mask: Float32Array;
  batch: number;
  contextLength: number;
}

export class ClipTokenizer {
  readonly vocab: Map<string, number>;
  readonly startId: number;
  readonly endId: number;
  private readonly ranks = new Map<string, number>();
  private readonly byteEncoder = bytesToUnicode();
  private readonly cache = new Map<string, string[]>();
  private readonly utf8 = new TextEncoder();

  constructor(files: TokenizerFiles, readonly source = '<tokenizer>') {
    this.vocab = new Map(Object.entries(files.vocab));
    for (const special of [START_TOKEN, END_TOKEN]) if (!this.vocab.has(special)) throw new Error(`${source}: vocabulary has no '${special}' token`);
    this.startId = this.vocab.get(START_TOKEN)!;
    this.endId = this.vocab.get(END_TOKEN)!;
    files.merges.forEach(([a, b], i) => {
      const k = `${a} ${b}`;
      if (!this.ranks.has(k)) this.ranks.set(k, i);
    });
    this.cache.set(START_TOKEN, [START_TOKEN]);
    this.cache.set(END_TOKEN, [END_TOKEN]);
  }

  /** Reads vocab.json and merges.txt (Hugging Face CLIPTokenizer files). */
  static fromFiles(vocabFile: string, mergesFile: string): ClipTokenizer {
    let vocab: unknown;
    try {
      vocab = JSON.parse(fs.readFileSync(vocabFile, 'utf8'));
    } catch (e) {
      throw new Error(`${vocabFile}: cannot read the tokenizer vocabulary (expected a JSON object token -> id): ${(e as Error).message}`);
    }
    if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new Error(`${vocabFile}: expected a JSON object token -> id`);
    for (const [k, v] of Object.entries(vocab as Record<string, unknown>))
      if (!Number.isInteger(v) || (v as number) < 0) throw new Error(`${vocabFile}: token '${k}' has id ${JSON.stringify(v)}, expected an integer >= 0`);
    return new ClipTokenizer({ vocab: vocab as Record<string, number>, merges: parseMerges(fs.readFileSync(mergesFile, 'utf8'), mergesFile) }, vocabFile);
  }

  /** Largest id + 1 (rows of the token embedding). */
  get vocabSize(): number {
    let m = 0;
    for (const v of this.vocab.values()) m = Math.max(m, v + 1);
    return m;
  }

  /** BPE symbols of one pre-token (already byte-encoded). */
  bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    const chars = Array.from(token);
    let word = [...chars.slice(0, -1), chars[chars.length - 1] + END_OF_WORD];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      // Merge every non-overlapping occurrence of (first, second), left to right.
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i]);
          i += 1;
        }
      }
      word = next;
    }
    if (this.cache.size < 10000) this.cache.set(token, word);
    return word;
  }

  /** Token ids of a text, without start/end tokens. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const m of cleanText(text).matchAll(PATTERN)) {
      const piece = m[0];
      const encoded = piece === START_TOKEN || piece === END_TOKEN ? piece : Array.from(this.utf8.encode(piece), (b) => this.byteEncoder[b]).join('');
      for (const sym of this.bpe(encoded)) {
        const id = this.vocab.get(sym);
        if (id === undefined) throw new Error(`${this.source}: BPE symbol '${sym}' (from '${piece}') is not in the vocabulary`);
        out.push(id);
      }
    }
    return out;
  }

  /** [<|startoftext|>, ...encode(text), <|endoftext|>], truncated and padded to the context length. */
  tokenize(texts: readonly string[], opts: TokenizeOptions = {}): TokenizedBatch {
    const L = opts.contextLength ?? CLIP_CONTEXT_LENGTH;
    if (!Number.isInteger(L) || L < 2) throw new Error(`tokenize: context length must be an integer >= 2, got ${L}`);
    const pad = opts.pad === undefined || opts.pad === 'end' ? this.endId : opts.pad;
    const ids = new Int32Array(texts.length * L).fill(pad);
    const mask = new Float32Array(texts.length * L);
    texts.forEach((text, b) => {
      let row = [this.startId, ...this.encode(text), this.endId];
      if (row.length > L) {
        row = row.slice(0, L);
        row[L - 1] = this.endId;
      }
      ids.set(row, b * L);
      mask.fill(1, b * L, b * L + row.length);
    });
    return { ids, mask, batch: texts.length, contextLength: L };
  }
}

/** merges.txt -> ranked pairs (a first line starting with '#version' is a header). */
export function parseMerges(text: string, source = 'merges.txt'): [string, string][] {
  const lines = text.split(/\r?\n/);
  const out: [string, string][] = [];
  lines.forEach((line, i) => {
    if (line.length === 0 || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`${source}:${i + 1}: expected a merge 'first second', got '${line}'`);
    out.push([parts[0], parts[1]]);
  });
  return out;
}

/**
 * A small CLIP-format vocabulary for a closed word list (the captioned synthetic data): the 256
 * byte symbols and their `</w>` forms (as in CLIP), merges that make every listed word one token,
 * then the two special tokens. Merges are added word by word: while BPE with the merges so far
 * leaves a word in k > 1 symbols, the pair of its first two symbols is appended. An appended merge
 * ranks after every earlier one, so words finished before keep their single token. Other text
 * still tokenizes (partial merges and bytes).
 */
export function buildWordVocab(words: readonly string[]): TokenizerFiles {
  const base = bytesToUnicode();
  const vocab: Record<string, number> = {};
  const add = (t: string): void => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  for (const c of base) add(c);
  for (const c of base) add(c + END_OF_WORD);
  const merges: [string, string][] = [];
  const utf8 = new TextEncoder();
  for (const w of [...new Set(words.map((x) => cleanText(x)))].filter((x) => x.length > 0)) {
    const piece = Array.from(utf8.encode(w), (b) => base[b]).join('');
    for (;;) {
      const symbols = new ClipTokenizer({ vocab: { ...vocab, [START_TOKEN]: 1e9, [END_TOKEN]: 1e9 + 1 }, merges }).bpe(piece);
      if (symbols.length === 1) break;
      merges.push([symbols[0], symbols[1]]);
      add(symbols[0] + symbols[1]);
    }
  }
  add(START_TOKEN);
  add(END_TOKEN);
  return { vocab, merges };
}
