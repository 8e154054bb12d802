/**
 * Seeded random numbers for everything random in LVDM.ts (initialisation, data, noise, masks).
 *
 * Generator: xoshiro128** (Blackman & Vigna), 32-bit state words so it is exact in JS numbers.
 * The whole state is four uint32 words: `state()` / `Rng.fromState()` make it checkpointable,
 * and `fork(tag)` derives independent streams (e.g. one for init, one for data) from one seed.
 */
export type RngState = [number, number, number, number];

/** splitmix32: spreads a 32-bit seed over the xoshiro state. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** FNV-1a hash of a string, used to derive named sub-streams. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Rng {
  private s: RngState;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    // Low 32 bits seed splitmix; any high part (negative or >= 2^32 seeds) is mixed in separately,
    // so e.g. seeds -1 and 0 give different streams (seeds in [0, 2^32) are unaffected).
    const lo = Math.floor(seed) >>> 0;
    const hi = Math.floor(Math.floor(seed) / 2 ** 32);
    const sm = splitmix32(lo);
    this.s = [sm(), sm(), sm(), sm()];
    if (hi !== 0) {
      const sh = splitmix32((hi ^ 0x5bd1e995) >>> 0);
      for (let i = 0; i < 4; i++) this.s[i] = (this.s[i] ^ sh()) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  setState(state: RngState): void {
    if (!Array.isArray(state) || state.length !== 4) throw new Error('Rng.setState: expected 4 uint32 words');
    this.s = [state[0] >>> 0, state[1] >>> 0, state[2] >>> 0, state[3] >>> 0];
  }

  /** A new generator whose stream is independent of this one's (derived from the state and a tag). */
  fork(tag: string): Rng {
    const h = hashString(tag);
    return new Rng((this.s[0] ^ h ^ Math.imul(this.s[1], 0x9e3779b1) ^ this.s[2]) >>> 0);
  }

  /** Next uint32 (xoshiro128**). */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Integer uniform in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    if (hi < lo) throw new Error(`Rng.int: empty range [${lo}, ${hi}]`);
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller, both values used in turn is avoided so state stays 4 words). */
  normal(): number {
    let u = this.uniform();
    while (u <= 0) u = this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fill a Float32Array with N(mean, std^2) samples (pairs of Box-Muller values). */
  normalArray(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      let u = this.uniform();
      while (u <= 0) u = this.uniform();
      const v = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * v);
    }
    return out;
  }

  uniformArray(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }

  /** Fisher-Yates shuffle of [0, n). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.choice: empty list');
    return items[this.int(0, items.length - 1)];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
