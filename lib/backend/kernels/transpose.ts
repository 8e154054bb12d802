// Fast Transpose for the wasm backend. The stock kernel is fast for rank <= 4 (and rank 5 with
// perm[0] = 0) but falls to a per-element loop otherwise (about 35x slower). We drop unit axes,
// merge input axes that stay adjacent, and split what remains into passes the stock code does fast.
import * as tf from '@tensorflow/tfjs';
import { alloc, free, heapU8, nativeTransposeInto, offsetOf, sizeOf, WasmBackend } from './wasm-util';

/** Shape and permutation after dropping unit axes and merging axes that stay adjacent. */
export function reducePermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const keep = shape.map((s) => s !== 1);
  const renum = new Map<number, number>();
  const kshape: number[] = [];
  shape.forEach((s, i) => {
    if (keep[i]) {
      renum.set(i, kshape.length);
      kshape.push(s);
    }
  });
  const kperm = perm.filter((p) => keep[p]).map((p) => renum.get(p) as number);
  // Groups of output positions whose input axes are consecutive.
  const groups: number[][] = [];
  for (const p of kperm) {
    const g = groups[groups.length - 1];
    if (g !== undefined && g[g.length - 1] + 1 === p) g.push(p);
    else groups.push([p]);
  }
  const byInput = groups.map((g, outPos) => ({ first: g[0], outPos, size: g.reduce((a, ax) => a * kshape[ax], 1) }));
  byInput.sort((a, b) => a.first - b.first);
  const newShape = byInput.map((g) => g.size);
  const outToIn = new Array<number>(groups.length);
  byInput.forEach((g, inPos) => {
    outToIn[g.outPos] = inPos;
  });
  return { shape: newShape, perm: outToIn };
}

/** Whether the stock C++ transpose handles this (reduced) permutation quickly. */
function nativeFast(perm: readonly number[]): boolean {
  return perm.length <= 4 || (perm.length === 5 && perm[0] === 0);
}

/**
 * One pass: split the current axis order into contiguous blocks and permute the blocks, with at
 * most 4 blocks (or 5 with the first fixed) so the stock kernel stays fast.
 */
interface Pass {
  /** Block boundaries in the current axis order, e.g. [0, 2, 3, 5] for blocks [0,2), [2,3), [3,5). */
  cuts: number[];
  /** New order of the blocks. */
  blockPerm: number[];
}

const planCache = new Map<string, Pass[]>();

function applyPass(order: readonly number[], p: Pass): number[] {
  const blocks: number[][] = [];
  for (let i = 0; i + 1 < p.cuts.length; i++) blocks.push(order.slice(p.cuts[i], p.cuts[i + 1]));
  return p.blockPerm.flatMap((bi) => blocks[bi]);
}

function* combinations(n: number, k: number, start = 1): Generator<number[]> {
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = start; i <= n - k; i++) for (const rest of combinations(n, k - 1, i + 1)) yield [i, ...rest];
}

function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) {
    for (let i = 0; i <= p.length; i++) {
      const q = p.slice();
      q.splice(i, 0, n - 1);
      out.push(q);
    }
  }
  return out;
}

function candidatePasses(r: number): Pass[] {
  const out: Pass[] = [];
  for (let k = 2; k <= Math.min(4, r); k++) {
    const perms = permutations(k).filter((p) => p.some((v, i) => v !== i));
    for (const inner of combinations(r, k - 1)) {
      const cuts = [0, ...inner, r];
      for (const bp of perms) out.push({ cuts, blockPerm: bp });
    }
  }
  if (r >= 5) {
    const perms = permutations(4).filter((p) => p.some((v, i) => v !== i));
    for (const inner of combinations(r, 4)) {
      const cuts = [0, ...inner, r];
      for (const bp of perms) out.push({ cuts, blockPerm: [0, ...bp.map((v) => v + 1)] });
    }
  }
  return out;
}

/** Fewest passes (breadth-first over axis orders) turning identity order into `perm`. */
export function planTranspose(perm: readonly number[]): Pass[] {
  const key = perm.join(',');
  const hit = planCache.get(key);
  if (hit !== undefined) return hit;
  const r = perm.length;
  let plan: Pass[];
  if (r <= 6) {
    const cands = candidatePasses(r);
    const start = Array.from({ length: r }, (_, i) => i);
    const seen = new Map<string, { prev: string; pass: Pass } | null>([[start.join(','), null]]);
    let frontier = [start];
    let found = seen.has(key);
    while (!found && frontier.length > 0) {
      const next: number[][] = [];
      for (const order of frontier) {
        const ok = order.join(',');
        for (const c of cands) {
          const o2 = applyPass(order, c);
          const k2 = o2.join(',');
          if (seen.has(k2)) continue;
          seen.set(k2, { prev: ok, pass: c });
          if (k2 === key) {
            found = true;
            break;
          }
          next.push(o2);
        }
        if (found) break;
      }
      frontier = next;
    }
    plan = [];
    let cur = key;
    for (let step = seen.get(cur); step !== null && step !== undefined; step = seen.get(cur)) {
      plan.unshift(step.pass);
      cur = step.prev;
    }
  } else {
    // Greedy: bring the axis wanted at position k forward, one block move per pass.
    plan = [];
    let order = Array.from({ length: r }, (_, i) => i);
    for (let k = 0; k < r; k++) {
      const i = order.indexOf(perm[k]);
      if (i === k) continue;
      let len = 1;
      while (i + len < r && k + len < r && order[i + len] === perm[k + len]) len++;
      const cuts = [0, k, i, i + len, r].filter((v, j, a) => j === 0 || v !== a[j - 1]);
      const blocks = cuts.length - 1;
      const bp = k === 0 ? (blocks === 2 ? [1, 0] : [1, 0, 2]) : blocks === 3 ? [0, 2, 1] : [0, 2, 1, 3];
      const pass = { cuts, blockPerm: bp };
      plan.push(pass);
      order = applyPass(order, pass);
    }
  }
  planCache.set(key, plan);
  return plan;
}

function copyInto(b: WasmBackend, x: tf.TensorInfo, out: tf.TensorInfo): void {
  const bpe = x.dtype === 'bool' ? 1 : 4;
  const src = offsetOf(b, x) * 4;
  const dst = offsetOf(b, out) * 4;
  heapU8(b).copyWithin(dst, src, src + sizeOf(x.shape) * bpe);
}

/** Transpose on TensorInfo; returns a new buffer owned by the caller. */
export function transposeInfo(b: WasmBackend, x: tf.TensorInfo, perm: readonly number[]): tf.TensorInfo {
  const outShape = perm.map((p) => x.shape[p]);
  const out = alloc(b, outShape, x.dtype);
  if (sizeOf(outShape) === 0) return out;
  const red = reducePermutation(x.shape, perm);
  if (red.perm.every((p, i) => p === i)) {
    copyInto(b, x, out);
    return out;
  }
  if (nativeFast(red.perm)) {
    nativeTransposeInto(b, x, red.shape, red.perm, out);
    return out;
  }
  const plan = planTranspose(red.perm);
  let order = red.shape.map((_, i) => i);
  let cur: tf.TensorInfo = x;
  for (let pi = 0; pi < plan.length; pi++) {
    const p = plan[pi];
    const blockShape: number[] = [];
    for (let i = 0; i + 1 < p.cuts.length; i++) {
      blockShape.push(order.slice(p.cuts[i], p.cuts[i + 1]).reduce((a, ax) => a * red.shape[ax], 1));
    }
    const last = pi === plan.length - 1;
    const dst = last ? out : alloc(b, [sizeOf(x.shape)], x.dtype);
    nativeTransposeInto(b, cur, blockShape, p.blockPerm, dst);
    if (cur !== x) free(b, cur);
    cur = dst;
    order = applyPass(order, p);
  }
  return out;
}
