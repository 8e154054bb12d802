// lib/nn/params.ts: the named parameter tree (ParamStore + Scope), seeded initialisation,
// snapshot/load round trips and the errors of a mismatched load.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { init, NamedArray, ParamStore, Scope } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';

before(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/** A toy model: encoder.down.{0,1}.conv.{weight,bias}, encoder.norm.{weight,bias}, head.weight. */
function build(seed: number): ParamStore {
  const store = new ParamStore(new Rng(seed));
  const root = new Scope(store);
  const enc = root.child('encoder');
  for (let i = 0; i < 2; i++) {
    const conv = enc.child('down').child(i).child('conv');
    conv.param('weight', [3, 3, 2, 4], init.torchDefault(18));
    conv.param('bias', [4], init.normal(0.5));
  }
  const norm = enc.child('norm');
  norm.param('weight', [4], init.ones(), false);
  norm.param('bias', [4], init.zeros(), false);
  root.child('head').param('weight', [4, 5], init.xavierUniform(4, 5));
  return store;
}

const NAMES = [
  'encoder.down.0.conv.weight',
  'encoder.down.0.conv.bias',
  'encoder.down.1.conv.weight',
  'encoder.down.1.conv.bias',
  'encoder.norm.weight',
  'encoder.norm.bias',
  'head.weight',
];

test('Scope builds dotted names in creation order; lookups, prefixes, trainable', () => {
  const s = build(0);
  try {
    assert.deepEqual(s.names(), NAMES);
    assert.deepEqual(s.get('encoder.down.1.conv.weight').shape, [3, 3, 2, 4]);
    assert.ok(s.has('head.weight') && !s.has('head.bias'));
    assert.throws(() => s.get('head.bias'), /head\.bias/);
    assert.deepEqual(
      s.withPrefix('encoder.down.').map(([n]) => n),
      NAMES.slice(0, 4),
    );
    assert.deepEqual(
      s.trainable().map(([n]) => n),
      NAMES.filter((n) => !n.startsWith('encoder.norm')),
    );
    assert.equal(s.get('encoder.norm.weight').trainable, false);
    assert.equal(s.get('head.weight').trainable, true);
    // A root scope adds no leading dot; a nested child joins with dots.
    assert.equal(new Scope(s).child('a').child(3).child('b').prefix, 'a.3.b');
  } finally {
    s.dispose();
  }
});

test('duplicate names are rejected, also when reached through different scopes', () => {
  const s = new ParamStore(new Rng(0));
  try {
    const a = new Scope(s).child('block');
    a.param('weight', [2], init.zeros());
    assert.throws(() => a.param('weight', [2], init.zeros()), /'block\.weight' defined twice/);
    assert.throws(() => new Scope(s, 'block').param('weight', [3], init.zeros()), /'block\.weight'/);
    assert.throws(() => s.add('block.weight', [1], init.zeros()), /'block\.weight'/);
    assert.deepEqual(s.names(), ['block.weight']);
  } finally {
    s.dispose();
  }
});

test('initial values: same seed -> identical, different seed -> different; initialisers behave', () => {
  const a = build(7);
  const b = build(7);
  const c = build(8);
  try {
    const sa = a.snapshot();
    const sb = b.snapshot();
    const sc = c.snapshot();
    for (const n of NAMES) assert.deepEqual(Array.from(sa.get(n)!.data), Array.from(sb.get(n)!.data), n);
    assert.notDeepEqual(Array.from(sa.get('head.weight')!.data), Array.from(sc.get('head.weight')!.data));
    const w = sa.get('encoder.down.0.conv.weight')!.data;
    const bound = 1 / Math.sqrt(18);
    assert.ok(w.every((x) => Math.abs(x) <= bound), 'torchDefault bound');
    assert.ok(Math.max(...w) > 0.8 * bound && Math.min(...w) < -0.8 * bound, 'torchDefault spread');
    const h = sa.get('head.weight')!.data;
    assert.ok(h.every((x) => Math.abs(x) <= Math.sqrt(6 / 9)), 'xavier bound');
    assert.deepEqual(Array.from(sa.get('encoder.norm.weight')!.data), [1, 1, 1, 1]);
    assert.deepEqual(Array.from(sa.get('encoder.norm.bias')!.data), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(init.constant(2.5)(3, new Rng(0))), [2.5, 2.5, 2.5]);
    const u = init.uniform(0.1)(1000, new Rng(0));
    assert.ok(u.every((x) => x >= -0.1 && x < 0.1));
    const nrm = init.normal(2)(20000, new Rng(0));
    const sd = Math.sqrt(nrm.reduce((acc, x) => acc + x * x, 0) / nrm.length);
    assert.ok(Math.abs(sd - 2) < 0.05, `init.normal sd ${sd}`);
  } finally {
    a.dispose();
    b.dispose();
    c.dispose();
  }
});

test('numParams counts all parameters, or those under a prefix', () => {
  const s = build(0);
  try {
    assert.equal(s.numParams(), 2 * (72 + 4) + 4 + 4 + 20);
    assert.equal(s.numParams('encoder.down.'), 2 * 76);
    assert.equal(s.numParams('head.'), 20);
    assert.equal(s.numParams('nothing.'), 0);
  } finally {
    s.dispose();
  }
});

test('snapshot/load round trip restores every value; snapshot is a copy', () => {
  const a = build(1);
  const b = build(2);
  try {
    const snap = a.snapshot();
    b.load(snap, { source: 'a' });
    const got = b.snapshot();
    for (const n of NAMES) {
      assert.deepEqual(got.get(n)!.shape, snap.get(n)!.shape);
      assert.deepEqual(Array.from(got.get(n)!.data), Array.from(snap.get(n)!.data), n);
    }
    // Mutating a snapshot does not touch the parameter it came from.
    const before0 = Array.from(a.get('head.weight').dataSync());
    snap.get('head.weight')!.data.fill(123);
    assert.deepEqual(Array.from(a.get('head.weight').dataSync()), before0);
    // Load keeps the variable objects (models hold references to them).
    const v = b.get('head.weight');
    b.load(a.snapshot());
    assert.equal(b.get('head.weight'), v);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('snapshot is a copy on the cpu backend too (its dataSync returns the storage itself)', async () => {
  await tf.setBackend('cpu');
  try {
    const s = build(3);
    const snap = s.snapshot();
    const orig = Array.from(s.get('head.weight').dataSync());
    snap.get('head.weight')!.data.fill(-1);
    assert.deepEqual(Array.from(s.get('head.weight').dataSync()), orig);
    s.dispose();
  } finally {
    await tf.setBackend('wasm');
  }
});

test('load errors name the tensor (missing, extra, wrong shape, wrong length) and change nothing', () => {
  const s = build(4);
  try {
    const orig = s.snapshot();
    const good = build(5).snapshot();
    const check = (values: Map<string, NamedArray>, re: RegExp, opts?: { strict?: boolean; source?: string }): void => {
      assert.throws(() => s.load(values, opts), re);
      const now = s.snapshot();
      for (const n of NAMES) assert.deepEqual(Array.from(now.get(n)!.data), Array.from(orig.get(n)!.data), `${n} changed by a failed load`);
    };
    const missing = new Map(good);
    missing.delete('encoder.down.1.conv.bias');
    check(missing, /missing parameters \(ckpt\.safetensors\): encoder\.down\.1\.conv\.bias/, { source: 'ckpt.safetensors' });
    const extra = new Map(good);
    extra.set('decoder.extra.weight', { shape: [1], data: new Float32Array(1) });
    check(extra, /unexpected parameters.*decoder\.extra\.weight/);
    // The shape error comes after earlier, valid entries: none of them may be applied.
    const badShape = new Map(good);
    badShape.set('head.weight', { shape: [5, 4], data: new Float32Array(20) });
    check(badShape, /parameter 'head\.weight'.*\[5,4\].*\[4,5\]/);
    const badRank = new Map(good);
    badRank.set('encoder.norm.bias', { shape: [4, 1], data: new Float32Array(4) });
    check(badRank, /'encoder\.norm\.bias'/);
    const badLen = new Map(good);
    badLen.set('head.weight', { shape: [4, 5], data: new Float32Array(19) });
    check(badLen, /'head\.weight'.*19 values/);
    // Non-strict: missing and extra names are ignored, the rest is loaded; shapes still checked.
    const partial = new Map<string, NamedArray>([
      ['head.weight', good.get('head.weight')!],
      ['not.in.model', { shape: [2], data: new Float32Array(2) }],
    ]);
    s.load(partial, { strict: false });
    assert.deepEqual(Array.from(s.get('head.weight').dataSync()), Array.from(good.get('head.weight')!.data));
    assert.deepEqual(Array.from(s.get('encoder.down.0.conv.bias').dataSync()), Array.from(orig.get('encoder.down.0.conv.bias')!.data));
    assert.throws(() => s.load(new Map([['head.weight', { shape: [20], data: new Float32Array(20) }]]), { strict: false }), /'head\.weight'/);
  } finally {
    s.dispose();
  }
});

test('no tensor leaks: build + snapshot + load + dispose leaves the tensor count and bytes unchanged', () => {
  const before0 = tf.memory().numTensors;
  const bytes0 = tf.memory().numBytes;
  const s = build(9);
  assert.equal(tf.memory().numTensors, before0 + NAMES.length);
  const other = build(10);
  const snap = other.snapshot();
  other.dispose();
  s.load(snap);
  s.load(snap, { strict: false });
  assert.equal(tf.memory().numTensors, before0 + NAMES.length);
  s.dispose();
  assert.equal(tf.memory().numTensors, before0);
  assert.equal(tf.memory().numBytes, bytes0);
});
