// lib/train/optim.ts vs hand-written float64 references: Adam (L2 weight decay), AdamW (decoupled),
// global-norm clipping, EMA with the LDM warm-up, the LR schedule; state round trips; no leaks.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Adam, AdamConfig, clipGradNorm, Ema, lrAt, LrSchedule } from '../lib/train/optim';
import { NamedArray } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { decodeSafetensors, encodeSafetensors } from '../lib/io/safetensors';

before(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const SHAPES: Record<string, number[]> = { 'a.weight': [3, 4], 'a.bias': [4], 'b.scale': [2, 1, 3] };
const size = (s: number[]): number => s.reduce((x, y) => x * y, 1);

function makeVars(rng: Rng): [string, tf.Variable][] {
  return Object.entries(SHAPES).map(([n, s]) => {
    const t = tf.tensor(rng.normalArray(size(s)), s);
    const v = tf.variable(t, true);
    t.dispose();
    return [n, v] as [string, tf.Variable];
  });
}

function disposeVars(vars: [string, tf.Variable][]): void {
  for (const [, v] of vars) v.dispose();
}

/** Per-step gradients (plain arrays), the same for the optimiser and the reference. */
function gradSeries(rng: Rng, steps: number): Map<string, Float32Array>[] {
  return Array.from({ length: steps }, () => new Map(Object.entries(SHAPES).map(([n, s]) => [n, rng.normalArray(size(s), 0, 0.5)] as [string, Float32Array])));
}

function toTensors(g: Map<string, Float32Array>): Map<string, tf.Tensor> {
  return new Map([...g].map(([n, a]) => [n, tf.tensor(a, SHAPES[n])] as [string, tf.Tensor]));
}

/** Float64 Adam / AdamW, PyTorch's formulation (bias-corrected moments). */
class RefAdam {
  t = 0;
  m = new Map<string, Float64Array>();
  v = new Map<string, Float64Array>();
  constructor(readonly p: Map<string, Float64Array>, readonly cfg: AdamConfig) {
    for (const [n, a] of p) {
      this.m.set(n, new Float64Array(a.length));
      this.v.set(n, new Float64Array(a.length));
    }
  }
  step(grads: Map<string, Float32Array>, lr: number): void {
    this.t++;
    const [b1, b2] = this.cfg.betas;
    const wd = this.cfg.weightDecay;
    for (const [n, p] of this.p) {
      const g0 = grads.get(n);
      if (!g0) continue;
      const m = this.m.get(n)!;
      const v = this.v.get(n)!;
      for (let i = 0; i < p.length; i++) {
        const g = this.cfg.kind === 'adam' ? g0[i] + wd * p[i] : g0[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        const mh = m[i] / (1 - b1 ** this.t);
        const vh = v[i] / (1 - b2 ** this.t);
        const decayed = this.cfg.kind === 'adamw' ? p[i] - lr * wd * p[i] : p[i];
        p[i] = decayed - (lr * mh) / (Math.sqrt(vh) + this.cfg.eps);
      }
    }
  }
}

function values(vars: [string, tf.Variable][]): Map<string, Float32Array> {
  return new Map(vars.map(([n, v]) => [n, v.dataSync() as Float32Array] as [string, Float32Array]));
}

function assertClose(got: Map<string, ArrayLike<number>>, want: Map<string, ArrayLike<number>>, tol: number, what: string): void {
  for (const [n, w] of want) {
    const g = got.get(n)!;
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) <= tol * Math.max(1, Math.abs(w[i])), `${what} ${n}[${i}]: ${g[i]} vs ${w[i]}`);
  }
}

test('Adam and AdamW (with and without weight decay) match a float64 reference over several steps', () => {
  const configs: AdamConfig[] = [
    { kind: 'adam', lr: 0, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
    { kind: 'adam', lr: 0, betas: [0.5, 0.9], eps: 1e-8, weightDecay: 0.1 },
    { kind: 'adamw', lr: 0, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05 },
    { kind: 'adamw', lr: 0, betas: [0.9, 0.99], eps: 1e-3, weightDecay: 0 },
  ];
  for (const cfg of configs) {
    const rng = new Rng(1);
    const vars = makeVars(rng);
    const ref = new RefAdam(new Map([...values(vars)].map(([n, a]) => [n, Float64Array.from(a)] as [string, Float64Array])), cfg);
    const opt = new Adam(vars, cfg);
    const series = gradSeries(rng, 6);
    const lrs = [1e-2, 2e-2, 3e-2, 3e-2, 1e-2, 5e-3];
    series.forEach((g, k) => {
      const gt = toTensors(g);
      opt.apply(gt, lrs[k]);
      tf.dispose([...gt.values()]);
      ref.step(g, lrs[k]);
    });
    assert.equal(opt.t, 6);
    const what = `${cfg.kind} wd=${cfg.weightDecay} betas=${cfg.betas} eps=${cfg.eps}`;
    assertClose(values(vars), ref.p, 2e-6, what);
    // The moments are exposed for checkpoints under optim.m.<name> / optim.v.<name>.
    const st = opt.stateTensors('optim.');
    assertClose(new Map(Object.keys(SHAPES).map((n) => [n, st.get(`optim.m.${n}`)!.data])), ref.m, 1e-6, `${what} m`);
    assertClose(new Map(Object.keys(SHAPES).map((n) => [n, st.get(`optim.v.${n}`)!.data])), ref.v, 1e-6, `${what} v`);
    opt.dispose();
    disposeVars(vars);
  }
});

test('decoupled (AdamW) and L2 (Adam) weight decay differ as defined', () => {
  // With a zero gradient, Adam+L2 moves by ~lr * sign(p) on the first step (normalised), AdamW by lr*wd*p.
  const t0 = tf.tensor([2, -4], [2]);
  const pa = tf.variable(t0);
  const pw = tf.variable(t0);
  t0.dispose();
  const base: AdamConfig = { kind: 'adam', lr: 0, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 };
  const a = new Adam([['p', pa]], base);
  const w = new Adam([['p', pw]], { ...base, kind: 'adamw' });
  const g = tf.zeros([2]);
  a.apply(new Map([['p', g]]), 0.01);
  w.apply(new Map([['p', g]]), 0.01);
  const va = Array.from(pa.dataSync());
  const vw = Array.from(pw.dataSync());
  assert.ok(Math.abs(va[0] - (2 - 0.01)) < 1e-6 && Math.abs(va[1] - (-4 + 0.01)) < 1e-6, `adam L2: ${va}`);
  assert.ok(Math.abs(vw[0] - 2 * (1 - 0.001)) < 1e-6 && Math.abs(vw[1] - -4 * (1 - 0.001)) < 1e-6, `adamw: ${vw}`);
  // A parameter without a gradient is left untouched.
  const before0 = Array.from(pa.dataSync());
  a.apply(new Map(), 0.01);
  assert.deepEqual(Array.from(pa.dataSync()), before0);
  g.dispose();
  a.dispose();
  w.dispose();
  pa.dispose();
  pw.dispose();
});

test('clipGradNorm scales to the max norm, returns the pre-clip norm, and disposes what it replaces', () => {
  const rng = new Rng(2);
  const g = gradSeries(rng, 1)[0];
  let ss = 0;
  for (const a of g.values()) for (const x of a) ss += x * x;
  const norm = Math.sqrt(ss);
  const n0 = tf.memory().numTensors;
  const gt = toTensors(g);
  const originals = [...gt.values()];
  const maxNorm = norm / 3;
  const got = clipGradNorm(gt, maxNorm);
  assert.ok(Math.abs(got - norm) <= 1e-5 * norm, `returned ${got}, want ${norm}`);
  let after = 0;
  for (const [n, t] of gt) {
    const v = t.dataSync();
    const src = g.get(n)!;
    for (let i = 0; i < v.length; i++) {
      assert.ok(Math.abs(v[i] - src[i] * (maxNorm / norm)) <= 1e-6, `${n}[${i}] not scaled by maxNorm / norm`);
      after += v[i] * v[i];
    }
  }
  assert.ok(Math.abs(Math.sqrt(after) - maxNorm) <= 1e-5 * maxNorm, `norm after clipping ${Math.sqrt(after)}`);
  assert.ok(originals.every((t) => t.isDisposed), 'replaced gradients must be disposed');
  assert.equal(tf.memory().numTensors, n0 + gt.size);
  tf.dispose([...gt.values()]);
  // Below the limit, or disabled (0): same tensors, same values, norm still returned.
  for (const limit of [norm * 2, 0]) {
    const gt2 = toTensors(g);
    const same = [...gt2.values()];
    const r = clipGradNorm(gt2, limit);
    assert.ok(Math.abs(r - norm) <= 1e-5 * norm);
    assert.deepEqual([...gt2.values()], same);
    assert.deepEqual(Array.from(gt2.get('a.bias')!.dataSync()), Array.from(g.get('a.bias')!));
    tf.dispose(same);
  }
  assert.equal(clipGradNorm(new Map(), 1), 0);
  assert.equal(tf.memory().numTensors, n0);
});

test('Ema follows decay_n = min(d, (1 + n) / (10 + n)), n = 1 on the first update (LDM LitEma)', () => {
  for (const decay of [0.9999, 0.5]) {
    const rng = new Rng(3);
    const vars = makeVars(rng);
    const ema = new Ema(vars, decay);
    const shadow = new Map([...values(vars)].map(([n, a]) => [n, Float64Array.from(a)] as [string, Float64Array]));
    const decays: number[] = [];
    for (let n = 1; n <= 12; n++) {
      // Move the live weights, then update the average.
      for (const [, v] of vars) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size), v.shape)));
      const d = Math.min(decay, (1 + n) / (10 + n));
      assert.ok(Math.abs(ema.currentDecay() - d) < 1e-15, `update ${n}: currentDecay ${ema.currentDecay()} vs ${d}`);
      decays.push(d);
      ema.update();
      const live = values(vars);
      for (const [name, s] of shadow) {
        const p = live.get(name)!;
        for (let i = 0; i < s.length; i++) s[i] = d * s[i] + (1 - d) * p[i];
      }
    }
    assert.equal(ema.updates, 12);
    assert.ok(Math.abs(decays[0] - 2 / 11) < 1e-15);
    if (decay === 0.5) assert.equal(decays[11], 0.5);
    const st = ema.stateTensors('ema.');
    assertClose(new Map(Object.keys(SHAPES).map((n) => [n, st.get(`ema.${n}`)!.data])), shadow, 1e-6, `ema d=${decay}`);
    ema.dispose();
    disposeVars(vars);
  }
});

test('Ema.swap exchanges live and EMA weights; swapping twice restores both exactly', () => {
  const rng = new Rng(4);
  const vars = makeVars(rng);
  const ema = new Ema(vars, 0.9);
  for (const [, v] of vars) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size), v.shape)));
  ema.update();
  const live0 = new Map([...values(vars)].map(([n, a]) => [n, Array.from(a)]));
  const shadow0 = new Map([...ema.stateTensors('')].map(([n, a]) => [n, Array.from(a.data)]));
  assert.notDeepEqual(live0, shadow0);
  ema.swap();
  assert.deepEqual(new Map([...values(vars)].map(([n, a]) => [n, Array.from(a)])), shadow0);
  assert.deepEqual(new Map([...ema.stateTensors('')].map(([n, a]) => [n, Array.from(a.data)])), live0);
  ema.swap();
  assert.deepEqual(new Map([...values(vars)].map(([n, a]) => [n, Array.from(a)])), live0);
  assert.deepEqual(new Map([...ema.stateTensors('')].map(([n, a]) => [n, Array.from(a.data)])), shadow0);
  ema.dispose();
  disposeVars(vars);
});

test('lrAt: linear warm-up, then constant or cosine down to min_lr', () => {
  const s: LrSchedule = { lr: 1, warmupSteps: 4, decay: 'constant', totalSteps: 14, minLr: 0.1 };
  assert.deepEqual([0, 1, 2, 3].map((k) => lrAt(k, s)), [0.25, 0.5, 0.75, 1]);
  assert.deepEqual([4, 10, 1000].map((k) => lrAt(k, s)), [1, 1, 1]);
  const c = { ...s, decay: 'cosine' as const };
  assert.deepEqual([0, 3].map((k) => lrAt(k, c)), [0.25, 1]);
  const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-12;
  assert.ok(close(lrAt(4, c), 1));
  assert.ok(close(lrAt(9, c), 0.1 + 0.45 * (1 + Math.cos(Math.PI * 0.5))), `midpoint ${lrAt(9, c)}`);
  assert.ok(close(lrAt(6, c), 0.1 + 0.45 * (1 + Math.cos(Math.PI * 0.2))));
  assert.ok(close(lrAt(14, c), 0.1));
  assert.ok(close(lrAt(50, c), 0.1), 'clamped after the end');
  // Monotone non-increasing after warm-up.
  for (let k = 4; k < 14; k++) assert.ok(lrAt(k + 1, c) <= lrAt(k, c));
  // No warm-up: starts at lr.
  assert.equal(lrAt(0, { ...c, warmupSteps: 0 }), 1);
  assert.equal(lrAt(0, { ...s, warmupSteps: 0 }), 1);
});

test('optimiser + EMA state saved and loaded (through safetensors) continue identically', () => {
  const cfg: AdamConfig = { kind: 'adamw', lr: 0, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 };
  const rng = new Rng(5);
  const series = gradSeries(rng, 6);
  const A = makeVars(new Rng(6));
  const optA = new Adam(A, cfg);
  const emaA = new Ema(A, 0.99);
  const run = (vars: [string, tf.Variable][], opt: Adam, ema: Ema, from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      const gt = toTensors(series[k]);
      opt.apply(gt, 1e-2);
      tf.dispose([...gt.values()]);
      ema.update();
    }
  };
  run(A, optA, emaA, 0, 3);
  // Checkpoint: params + optimiser moments + EMA, through the safetensors bytes.
  const tensors = new Map<string, NamedArray>();
  for (const [n, v] of A) tensors.set(`model.${n}`, { shape: v.shape.slice(), data: Float32Array.from(v.dataSync() as Float32Array) });
  for (const [k, v] of optA.stateTensors('optim.')) tensors.set(k, v);
  for (const [k, v] of emaA.stateTensors('ema.')) tensors.set(k, v);
  const loaded = decodeSafetensors(encodeSafetensors(tensors)).tensors as Map<string, NamedArray>;
  const B = makeVars(new Rng(7));
  for (const [n, v] of B) tf.tidy(() => v.assign(tf.tensor(loaded.get(`model.${n}`)!.data, v.shape)));
  const optB = new Adam(B, cfg);
  const emaB = new Ema(B, 0.99);
  optB.loadStateTensors(loaded, 'optim.', optA.t, 'ckpt');
  emaB.loadStateTensors(loaded, 'ema.', emaA.updates, 'ckpt');
  assert.equal(optB.t, 3);
  assert.equal(emaB.updates, 3);
  run(A, optA, emaA, 3, 6);
  run(B, optB, emaB, 3, 6);
  assert.deepEqual(new Map([...values(B)].map(([n, a]) => [n, Array.from(a)])), new Map([...values(A)].map(([n, a]) => [n, Array.from(a)])));
  const ea = emaA.stateTensors('');
  const eb = emaB.stateTensors('');
  for (const n of Object.keys(SHAPES)) assert.deepEqual(Array.from(eb.get(n)!.data), Array.from(ea.get(n)!.data), `ema ${n}`);
  // Missing or mis-shaped state names the tensor.
  const missing = new Map(loaded);
  missing.delete('optim.v.a.bias');
  assert.throws(() => optB.loadStateTensors(missing, 'optim.', 3, 'ckpt.safetensors'), /ckpt\.safetensors.*'optim\.v\.a\.bias' missing/);
  const bad = new Map(loaded);
  bad.set('ema.b.scale', { shape: [6], data: new Float32Array(6) });
  assert.throws(() => emaB.loadStateTensors(bad, 'ema.', 3, 'ckpt.safetensors'), /ckpt\.safetensors.*'ema\.b\.scale'.*\[6\].*\[2,1,3\]/);
  for (const x of [optA, optB, emaA, emaB]) x.dispose();
  disposeVars(A);
  disposeVars(B);
});

test('no tensor leaks: construction + steps + clipping + EMA + dispose', () => {
  const n0 = tf.memory().numTensors;
  const rng = new Rng(8);
  const vars = makeVars(rng);
  const nVars = tf.memory().numTensors;
  assert.equal(nVars, n0 + vars.length);
  const opt = new Adam(vars, { kind: 'adam', lr: 0, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 });
  const ema = new Ema(vars, 0.999);
  assert.equal(tf.memory().numTensors, nVars + 3 * vars.length, 'Adam m, v and the EMA shadow: one tensor each per parameter');
  const n1 = tf.memory().numTensors;
  for (const g of gradSeries(rng, 4)) {
    const gt = toTensors(g);
    clipGradNorm(gt, 0.5);
    opt.apply(gt, 1e-3);
    tf.dispose([...gt.values()]);
    ema.update();
    ema.swap();
    ema.swap();
    opt.stateTensors('x.');
    ema.stateTensors('y.');
  }
  assert.equal(tf.memory().numTensors, n1);
  opt.dispose();
  ema.dispose();
  disposeVars(vars);
  assert.equal(tf.memory().numTensors, n0);
});
