import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { NLayerDiscriminator, adaptiveWeight, generatorAdvLoss, gradNorm, hingeDLoss } from '../lib/autoencoder/discriminator';
import { ParamStore, Scope } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';

before(async () => {
  await initBackend({ quiet: true });
});

function make(opts: { nLayers?: number; channels?: number }, seed = 1): { store: ParamStore; d: NLayerDiscriminator } {
  const store = new ParamStore(new Rng(seed));
  return { store, d: new NLayerDiscriminator(new Scope(store, 'disc'), opts) };
}

function randomFrames(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.uniformArray(n, -1, 1), shape);
}

test('logit map size: each conv4 s2 p1 halves, each conv4 s1 p1 removes one pixel', () => {
  // [H, W, nLayers, expected h, expected w], computed by hand
  const cases: [number, number, number, number, number][] = [
    [32, 32, 3, 2, 2], // 16, 8, 4 -> 3 -> 2
    [64, 64, 3, 6, 6], // 32, 16, 8 -> 7 -> 6
    [32, 32, 2, 6, 6], // 16, 8 -> 7 -> 6
    [16, 16, 1, 6, 6], // 8 -> 7 -> 6
    [48, 32, 3, 4, 2], // 24, 12, 6 -> 5 -> 4 | 2
    [33, 33, 3, 2, 2], // floor((33 - 2) / 2) + 1 = 16, 8, 4 -> 3 -> 2
  ];
  for (const [h, w, n, eh, ew] of cases) {
    assert.deepEqual(NLayerDiscriminator.outputSize(h, w, n), [eh, ew], `${h}x${w} n=${n}`);
    const { store, d } = make({ nLayers: n, channels: 4 });
    const x = randomFrames([2, h, w, 3], 7) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const y = d.apply(x);
    assert.deepEqual(y.shape, [2, eh, ew, 1], `${h}x${w} n=${n}`);
    y.dispose();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
    store.dispose();
  }
});

test('parameter names and count follow the taming NLayerDiscriminator formula', () => {
  const { store } = make({});
  assert.deepEqual(store.names(), [
    'disc.main.0.weight', 'disc.main.0.bias', // conv 3 -> 64 (bias)
    'disc.main.2.weight', 'disc.main.3.weight', 'disc.main.3.bias', // conv 64 -> 128, BN
    'disc.main.5.weight', 'disc.main.6.weight', 'disc.main.6.bias', // conv 128 -> 256, BN
    'disc.main.8.weight', 'disc.main.9.weight', 'disc.main.9.bias', // conv 256 -> 512 (s1), BN
    'disc.main.11.weight', 'disc.main.11.bias', // conv 512 -> 1 (bias)
  ]);
  assert.deepEqual(store.get('disc.main.0.weight').shape, [4, 4, 3, 64]);
  assert.deepEqual(store.get('disc.main.8.weight').shape, [4, 4, 256, 512]);
  assert.deepEqual(store.get('disc.main.11.weight').shape, [4, 4, 512, 1]);
  const count = (ndf: number, L: number, cin = 3): number => {
    const c = (n: number): number => ndf * Math.min(2 ** n, 8);
    let total = 16 * cin * ndf + ndf;
    for (let n = 1; n < L; n++) total += 16 * c(n - 1) * c(n) + 2 * c(n);
    total += 16 * c(L - 1) * c(L) + 2 * c(L);
    return total + 16 * c(L) + 1;
  };
  assert.equal(count(64, 3), 2765633);
  assert.equal(store.numParams(), count(64, 3));
  // Initialisation (taming weights_init): conv N(0, 0.02), BN weight N(1, 0.02), BN bias 0.
  const stats = (name: string): [number, number] => {
    const v = store.get(name).dataSync();
    let m = 0;
    for (const a of v) m += a;
    m /= v.length;
    let s = 0;
    for (const a of v) s += (a - m) ** 2;
    return [m, Math.sqrt(s / v.length)];
  };
  const [cm, cs] = stats('disc.main.8.weight');
  assert.ok(Math.abs(cm) < 1e-3 && Math.abs(cs - 0.02) < 1e-3, `conv init mean ${cm} std ${cs}`);
  const [bm, bs] = stats('disc.main.9.weight');
  assert.ok(Math.abs(bm - 1) < 5e-3 && Math.abs(bs - 0.02) < 5e-3, `BN weight init mean ${bm} std ${bs}`);
  assert.ok(store.get('disc.main.9.bias').dataSync().every((v) => v === 0));
  store.dispose();
  for (const [ndf, L] of [[8, 1], [8, 2], [4, 5]]) {
    const m = make({ nLayers: L, channels: ndf });
    assert.equal(m.store.numParams(), count(ndf, L), `ndf ${ndf} L ${L}`);
    assert.equal(m.store.names().length, 4 + 3 * L, `names for L ${L}`);
    m.store.dispose();
  }
});

type Getter = (name: string) => { data: ArrayLike<number>; shape: number[] };
const fromStore =
  (store: ParamStore): Getter =>
  (name) => ({ data: store.get(name).dataSync(), shape: store.get(name).shape });

/** Straightforward float64 NHWC reference: zero-pad 1, conv k4, batch-stat BN (biased var, eps 1e-5), LReLU 0.2. */
function referenceForward(param: Getter, nLayers: number, x: ArrayLike<number>, shape: number[]): { data: Float64Array; shape: number[] } {
  let [n, h, w, c] = shape;
  let cur = Float64Array.from(x);
  const conv = (name: string, stride: number, bias: boolean): void => {
    const { data: wt, shape: ws } = param(`${name}.weight`); // [4, 4, Ci, Co]
    const [, , ci, co] = ws;
    const b = bias ? param(`${name}.bias`).data : null;
    const ho = Math.floor((h + 2 - 4) / stride) + 1;
    const wo = Math.floor((w + 2 - 4) / stride) + 1;
    const out = new Float64Array(n * ho * wo * co);
    for (let bi = 0; bi < n; bi++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++)
          for (let o = 0; o < co; o++) {
            let s = b ? b[o] : 0;
            for (let ky = 0; ky < 4; ky++)
              for (let kx = 0; kx < 4; kx++) {
                const iy = oy * stride + ky - 1;
                const ix = ox * stride + kx - 1;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                for (let i = 0; i < ci; i++) s += cur[((bi * h + iy) * w + ix) * c + i] * wt[((ky * 4 + kx) * ci + i) * co + o];
              }
            out[((bi * ho + oy) * wo + ox) * co + o] = s;
          }
    cur = out;
    h = ho;
    w = wo;
    c = co;
  };
  const bn = (name: string): void => {
    const g = param(`${name}.weight`).data;
    const be = param(`${name}.bias`).data;
    const m = n * h * w;
    for (let o = 0; o < c; o++) {
      let mean = 0;
      for (let p = 0; p < m; p++) mean += cur[p * c + o];
      mean /= m;
      let v = 0;
      for (let p = 0; p < m; p++) v += (cur[p * c + o] - mean) ** 2;
      v /= m;
      for (let p = 0; p < m; p++) cur[p * c + o] = ((cur[p * c + o] - mean) / Math.sqrt(v + 1e-5)) * g[o] + be[o];
    }
  };
  const lrelu = (): void => {
    for (let i = 0; i < cur.length; i++) if (cur[i] < 0) cur[i] *= 0.2;
  };
  let idx = 0;
  conv(`disc.main.${idx}`, 2, true);
  lrelu();
  idx += 2;
  for (let l = 1; l < nLayers; l++) {
    conv(`disc.main.${idx}`, 2, false);
    bn(`disc.main.${idx + 1}`);
    lrelu();
    idx += 3;
  }
  conv(`disc.main.${idx}`, 1, false);
  bn(`disc.main.${idx + 1}`);
  lrelu();
  conv(`disc.main.${idx + 3}`, 1, true);
  return { data: cur, shape: [n, h, w, c] };
}

test('forward matches a straightforward loop implementation (padding, strides, BN, LReLU)', () => {
  for (const L of [1, 2, 3]) {
    const { store, d } = make({ nLayers: L, channels: 4 }, 10 + L);
    // Perturb BN affine parameters so they matter.
    const rng = new Rng(99);
    for (const [name, v] of store.entries()) if (/main\.(3|6|9|4|7)\./.test(name) && v.shape.length === 1) v.assign(tf.tensor(rng.uniformArray(v.size, 0.5, 1.5), v.shape));
    const shape = [3, 20, 24, 3];
    const x = randomFrames(shape, 5) as tf.Tensor4D;
    const y = d.apply(x);
    const ref = referenceForward(fromStore(store), L, x.dataSync(), shape);
    assert.deepEqual(y.shape, ref.shape);
    const got = y.dataSync();
    let maxErr = 0;
    let maxRef = 0;
    for (let i = 0; i < got.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(got[i] - ref.data[i]));
      maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
    }
    assert.ok(maxErr <= 1e-4 * Math.max(1, maxRef), `L=${L}: max abs err ${maxErr} (max |ref| ${maxRef})`);
    tf.dispose([x, y]);
    store.dispose();
  }
});

test('videos are judged per frame with time folded into the batch', () => {
  const { store, d } = make({ nLayers: 2, channels: 4 });
  const v = randomFrames([2, 3, 16, 16, 3], 3) as tf.Tensor5D;
  const before = tf.memory().numTensors;
  const y = d.applyVideo(v);
  assert.equal(tf.memory().numTensors, before + 1);
  assert.deepEqual(y.shape, [2, 3, 2, 2, 1]);
  const flat = d.apply(tf.reshape(v, [6, 16, 16, 3]) as tf.Tensor4D);
  assert.deepEqual(Array.from(y.dataSync()), Array.from(flat.dataSync()));
  assert.throws(() => d.apply(tf.zeros([1, 16, 16, 1]) as tf.Tensor4D), /\[N, H, W, 3\]/);
  tf.dispose([v, y, flat]);
  store.dispose();
});

test('hinge losses on hand-computed values', () => {
  const real = tf.tensor1d([2, 0.5, -1]);
  const fake = tf.tensor1d([-2, 0, 0.3]);
  // relu(1 - real) = [0, 0.5, 2] -> 5/6; relu(1 + fake) = [0, 1, 1.3] -> 2.3/3; half the sum = 0.8
  const d = hingeDLoss(real, fake);
  assert.ok(Math.abs(d.dataSync()[0] - 0.8) < 1e-6, `hinge ${d.dataSync()[0]}`);
  const g = generatorAdvLoss(fake);
  assert.ok(Math.abs(g.dataSync()[0] - 1.7 / 3) < 1e-6, `gen ${g.dataSync()[0]}`);
  // perfect discriminator: real >= 1, fake <= -1 -> 0
  const z = hingeDLoss(tf.tensor2d([[1, 3]]), tf.tensor2d([[-1, -5]]));
  assert.equal(z.dataSync()[0], 0);
  tf.dispose([real, fake, d, g, z]);
});

test('adaptive weight = clamp(||g_nll|| / (||g_adv|| + 1e-4), 0, 1e4) * discWeight', () => {
  assert.ok(Math.abs(adaptiveWeight(2, 1, 0.5) - (2 / 1.0001) * 0.5) < 1e-12);
  assert.equal(adaptiveWeight(1e6, 1e-8, 1), 1e4);
  assert.equal(adaptiveWeight(1e6, 0, 0.5), 5e3);
  assert.equal(adaptiveWeight(0, 3, 0.5), 0);
  const t = tf.tensor2d([[3, 0], [0, 4]]);
  assert.ok(Math.abs(gradNorm(t) - 5) < 1e-6);
  t.dispose();
});

test('weight and input gradients match float64 finite differences of the loop reference', () => {
  const L = 2;
  const { store, d } = make({ nLayers: L, channels: 4 }, 21);
  const shape = [2, 16, 16, 3];
  const real = randomFrames(shape, 31) as tf.Tensor4D;
  const fake = randomFrames(shape, 32) as tf.Tensor4D;
  const realD = Float64Array.from(real.dataSync());
  const fakeD = Float64Array.from(fake.dataSync());
  // loss = sum D(real)^2 + sum D(fake)^2 (two separate batches, as the GAN loss calls it)
  const loss = (): tf.Scalar => tf.tidy(() => tf.add(tf.sum(tf.square(d.apply(real))), tf.sum(tf.square(d.apply(fake)))) as tf.Scalar);
  const refLoss = (param: Getter, xr: ArrayLike<number> = realD): number => {
    let s = 0;
    for (const x of [xr, fakeD]) for (const v of referenceForward(param, L, x, shape).data) s += v * v;
    return s;
  };
  const base = fromStore(store);
  const h = 1e-6;
  const names = ['disc.main.0.weight', 'disc.main.0.bias', 'disc.main.2.weight', 'disc.main.3.weight', 'disc.main.3.bias', 'disc.main.5.weight', 'disc.main.8.weight', 'disc.main.8.bias'];
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(loss, names.map((n) => store.get(n)));
  assert.ok(Math.abs(value.dataSync()[0] - refLoss(base)) < 1e-4 * refLoss(base), 'loss value');
  for (const name of names) {
    const g = grads[store.get(name).name].dataSync();
    const orig = Float64Array.from(store.get(name).dataSync());
    for (const idx of [0, 96 % orig.length, Math.floor(orig.length / 2), orig.length - 1]) {
      const perturbed = (delta: number): Getter => (n) => {
        if (n !== name) return base(n);
        const p = orig.slice();
        p[idx] += delta;
        return { data: p, shape: store.get(n).shape };
      };
      const numeric = (refLoss(perturbed(h)) - refLoss(perturbed(-h))) / (2 * h);
      const err = Math.abs(numeric - g[idx]);
      assert.ok(err <= 1e-3 * Math.abs(numeric) + 1e-4, `${name}[${idx}]: tfjs ${g[idx]} vs float64 FD ${numeric}`);
    }
  }
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before);
  // w.r.t. the input frames (the generator's path)
  const gx = tf.grad((x: tf.Tensor) => tf.add(tf.sum(tf.square(d.apply(x as tf.Tensor4D))), tf.sum(tf.square(d.apply(fake)))))(real);
  const gxd = gx.dataSync();
  for (const idx of [0, 700, realD.length - 1]) {
    const at = (delta: number): number => {
      const p = realD.slice();
      p[idx] += delta;
      return refLoss(base, p);
    };
    const numeric = (at(h) - at(-h)) / (2 * h);
    assert.ok(Math.abs(numeric - gxd[idx]) <= 1e-3 * Math.abs(numeric) + 1e-4, `input[${idx}]: tfjs ${gxd[idx]} vs float64 FD ${numeric}`);
  }
  tf.dispose([gx, real, fake]);
  store.dispose();
});
