// The libtorch backend on whole models: UNet3D and the video autoencoder (forward and every
// parameter gradient) against wasm; determinism; no leaks (tfjs tensors and native bytes) after
// training steps and a sampling run; gradients where tfjs's cpu kernels are wrong, by finite
// differences; the doctor self-check; thread selection and the missing-addon fallback.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_BACKEND, gradientSelfCheck, initBackend, nativeMemory } from '../lib/backend';
import { ParamStore } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { UNet3D } from '../lib/models/unet3d';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { AutoencoderTrainer } from '../lib/autoencoder/train';
import { AutoencoderModelConfig, ExperimentConfig, UNetConfig } from '../lib/config/schema';
import { LatentCache, LvdmTrainer } from '../lib/lvdm';
import { sample } from '../lib/diffusion';
import { SyntheticDataset } from '../data/synthetic';
import { finiteDiffCheck } from './backend-helpers';
import { nativeSnapshot, setupNative, worstDiff } from './native-helpers';

before(setupNative);

const ROOT = path.resolve(__dirname, '..');

const UNET = {
  in_channels: 2,
  out_channels: 2,
  model_channels: 8,
  channel_mult: [1, 2],
  num_res_blocks: 1,
  attention_resolutions: [2],
  head_channels: 4,
  temporal_length: 4,
  norm_groups: 4,
};

/** Model outputs and every parameter gradient of sum(r * out), as float64 arrays. */
function forwardAndGrads(store: ParamStore, apply: () => tf.Tensor, seed: number): Float64Array[] {
  const vars = store.trainable().map(([, v]) => v);
  const res: Float64Array[] = [];
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const y = apply();
      res.push(Float64Array.from(y.dataSync()));
      const r = tf.tensor(new Rng(seed).normalArray(y.size), y.shape);
      return tf.sum(tf.mul(y, r)) as tf.Scalar;
    }, vars);
    for (const v of vars) res.push(Float64Array.from(grads[v.name].dataSync()));
  });
  return res;
}

async function onBackend<T>(name: string, fn: () => T): Promise<T> {
  const prev = tf.getBackend();
  await initBackend({ prefer: name, quiet: true });
  try {
    return fn();
  } finally {
    await initBackend({ prefer: prev, quiet: true });
  }
}

function unetRun(): Float64Array[] {
  const store = new ParamStore(new Rng(7));
  const net = new UNet3D(store, UNetConfig.parse(UNET));
  // Live zero-initialised output layers, so every path carries gradient.
  const rng = new Rng(8);
  for (const [name, v] of store.entries()) if (/proj_out|out_layers\.3|^out\.2/.test(name)) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size, 0, 0.2), v.shape)));
  const x = tf.tensor5d(new Rng(9).normalArray(2 * 4 * 4 * 4 * 2), [2, 4, 4, 4, 2]);
  try {
    return forwardAndGrads(store, () => net.apply(x, new Int32Array([3, 700])), 10);
  } finally {
    x.dispose();
    store.dispose();
  }
}

function autoencoderRun(): Float64Array[] {
  const store = new ParamStore(new Rng(11));
  const cfg = AutoencoderModelConfig.parse({ channels: [8, 8], temporal_factor: 2, spatial_factor: 4, latent_channels: 3, norm_groups: 4, enc_res_blocks: 1, dec_res_blocks: 1 });
  const ae = new VideoAutoencoder(store, cfg);
  const x = tf.tensor5d(new Rng(12).normalArray(1 * 4 * 8 * 8 * 3), [1, 4, 8, 8, 3]);
  try {
    return forwardAndGrads(store, () => ae.decode(ae.encode(x).mean), 13);
  } finally {
    x.dispose();
    store.dispose();
  }
}

function assertClose(mine: Float64Array[], ref: Float64Array[], tol: number, what: string): void {
  assert.equal(mine.length, ref.length);
  let worst = 0;
  for (let i = 0; i < mine.length; i++) {
    const e = worstDiff(mine[i], ref[i]);
    assert.ok(e <= tol, `${what}: ${i === 0 ? 'output' : `gradient ${i}`} differs from wasm by ${e}`);
    worst = Math.max(worst, e);
  }
  assert.ok(mine.length > 10, `${what}: expected many parameter gradients, got ${mine.length - 1}`);
}

test('UNet3D forward and all parameter gradients agree with wasm', async () => {
  const ref = await onBackend('wasm', unetRun);
  const mine = unetRun();
  assertClose(mine, ref, 2e-4, 'UNet3D');
});

test('video autoencoder forward and all parameter gradients agree with wasm', async () => {
  const ref = await onBackend('wasm', autoencoderRun);
  const mine = autoencoderRun();
  assertClose(mine, ref, 2e-4, 'autoencoder');
});

function lvdmTrainer(seed: number): LvdmTrainer {
  const config = ExperimentConfig.parse({
    name: 'native-test',
    seed,
    data: { source: 'synthetic-shapes', frames: 4, size: 4 },
    unet: UNET,
    diffusion: { loss: 'l1', optim: { kind: 'adamw', lr: 1e-3, weight_decay: 0.01 }, train: { steps: 10, batch_size: 2, ema_decay: 0.9 } },
  });
  const per = 4 * 4 * 4 * 2;
  const latents = new LatentCache(new Rng(1).normalArray(4 * per), new Float32Array(4 * per).fill(-30), 4, [4, 4, 4, 2], { shift: 0, scale: 1 });
  return new LvdmTrainer({ config, latents });
}

function paramBytes(store: ParamStore): Float32Array[] {
  return store.entries().map(([, v]) => v.dataSync() as Float32Array);
}

test('same seed, same numbers: two UNet training runs are bit-identical', async () => {
  const run = async (): Promise<{ losses: number[]; params: Float32Array[] }> => {
    const tr = lvdmTrainer(5);
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) losses.push((await tr.trainStep(s)).loss);
    const params = paramBytes(tr.store);
    tr.dispose();
    return { losses, params };
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a.losses, b.losses);
  assert.ok(a.losses.every((l) => Number.isFinite(l)));
  a.params.forEach((p, i) => assert.deepEqual(p, b.params[i], `parameter ${i} differs between identical runs`));
});

test('no leaks: tensors and native bytes return to start after training steps and a DDIM run', async () => {
  const tr = lvdmTrainer(6);
  await tr.trainStep(0); // creates the optimiser moments and EMA copies (persistent state)
  const s0 = nativeSnapshot();
  await tr.trainStep(1);
  await tr.trainStep(2);
  assert.deepEqual(nativeSnapshot(), s0, 'after UNet training steps');
  const mask = tf.zeros([2, 4]);
  const s1 = nativeSnapshot();
  const y = await sample(tr.unet.asEpsModel(), tr.schedule, [2, 4, 4, 4, 2], { kind: 'ddim', steps: 4, eta: 0, rng: new Rng(3) });
  assert.ok(worstDiff(Float64Array.from(y.dataSync()), new Float64Array(y.size)) > 0, 'samples are not all zero');
  y.dispose();
  assert.deepEqual(nativeSnapshot(), s1, 'after a DDIM sampling run');
  mask.dispose();
  tr.dispose();

  // Autoencoder with the PatchGAN discriminator active from the first step.
  const config = ExperimentConfig.parse({
    name: 'native-ae',
    seed: 1,
    data: { source: 'synthetic-shapes', frames: 4, size: 16, num_videos: 2, video_length: 4, held_out: 1 },
    autoencoder: {
      model: { channels: [8], temporal_factor: 2, spatial_factor: 2, latent_channels: 3, norm_groups: 4, enc_res_blocks: 1, dec_res_blocks: 1 },
      loss: { pixel: 'l1', disc_start: 0 },
      train: { steps: 4, batch_size: 2 },
    },
  });
  const dataset = new SyntheticDataset({ family: 'shapes', size: 2, frames: 4, height: 16, width: 16, seed: 1, videoLength: 4 });
  const ae = new AutoencoderTrainer({ config, dataset, log: () => {} });
  await ae.trainStep(0);
  const s2 = nativeSnapshot();
  await ae.trainStep(1);
  assert.deepEqual(nativeSnapshot(), s2, 'after an autoencoder training step');
  ae.dispose();
  assert.ok(s2.bytes > 0);
});

test('gradients where tfjs cpu is wrong (same avg pools, half-pixel resizes) pass finite differences', () => {
  const rng = new Rng(21);
  const x4 = tf.tensor4d(rng.normalArray(2 * 7 * 9 * 3), [2, 7, 9, 3]);
  const x5 = tf.tensor5d(rng.normalArray(6 * 8 * 7 * 2), [1, 6, 8, 7, 2]);
  const checks: [string, number][] = [
    ['avgPool same', finiteDiffCheck((x) => tf.avgPool(x as tf.Tensor4D, 3, 2, 'same'), [x4], rng)],
    ['avgPool3d same', finiteDiffCheck((x) => tf.avgPool3d(x as tf.Tensor5D, 3, 2, 'same'), [x5], rng)],
    ['resizeBilinear half-pixel', finiteDiffCheck((x) => tf.image.resizeBilinear(x as tf.Tensor4D, [5, 13], false, true), [x4], rng)],
    ['resizeNearest half-pixel, batch 2', finiteDiffCheck((x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [14, 5], false, true), [x4], rng)],
  ];
  tf.dispose([x4, x5]);
  for (const [name, err] of checks) assert.ok(err < 1e-4, `${name}: finite-difference error ${err}`);
});

test('the doctor self-check passes on the native backend', async () => {
  const r = await gradientSelfCheck();
  assert.equal(tf.getBackend(), NATIVE_BACKEND);
  assert.ok(r.ok, JSON.stringify(r.checks.filter((c) => !c.ok)));
});

function child(env: Record<string, string>, code: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('threads: LVDM_THREADS sets them and is printed with the backend; bad values are rejected', () => {
  const code = "require('./lib/backend').initBackend().then(() => {}, (e) => { console.error(e.message); process.exit(3); })";
  const one = child({ LVDM_BACKEND: 'native', LVDM_THREADS: '1' }, code);
  assert.equal(one.status, 0, one.out);
  assert.match(one.out, /^\[lvdm\] backend: libtorch \(tfjs [\d.]+, libtorch 1\.13\.\d+, blas OpenBLAS [\d.]+.*, 1 thread\)$/m);
  const def = child({ LVDM_BACKEND: 'libtorch', LVDM_THREADS: '' }, code);
  assert.match(def.out, /backend: libtorch .*, 2 threads\)/);
  const bad = child({ LVDM_BACKEND: 'native', LVDM_THREADS: 'lots' }, code);
  assert.equal(bad.status, 3);
  assert.match(bad.out, /env LVDM_THREADS: expected an integer thread count in 1\.\.256, got 'lots'/);
});

test('without the addon, selection falls back to wasm and doctor says why', () => {
  const env = { LVDM_NATIVE_ADDON: path.join(ROOT, 'native', 'no-such-dir', 'lvdm_torch.node'), LVDM_BACKEND: '' };
  const auto = child(env, "require('./lib/backend').initBackend().then(() => {})");
  assert.equal(auto.status, 0, auto.out);
  assert.match(auto.out, /^\[lvdm\] backend: wasm /m);
  const forced = child({ ...env, LVDM_BACKEND: 'native' }, "require('./lib/backend').initBackend().catch((e) => { console.error(e.message); process.exit(3); })");
  assert.equal(forced.status, 3);
  assert.match(forced.out, /backend 'native' unavailable: native\/no-such-dir\/lvdm_torch\.node missing: not built \(run: bash native\/build\.sh\)/);
});

test('worker threads each get their own native tensor table and run concurrently', async () => {
  // The job queue runs tasks on worker_threads: each thread loads the addon again and must not
  // share (or race on) the main thread's handles.
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const a = require(workerData.addon);
    const x = a.fromData(new Float32Array(4096).fill(workerData.k), [64, 64], 0);
    let sum = 0;
    for (let i = 0; i < 200; i++) {
      const r = a.run('BatchMatMul', new Float64Array([2, x, x, 0, 0]));
      const s = a.run('Sum', new Float64Array([1, r[1], 2, 0, 1, 0]));
      sum = new Float32Array(a.toData(s[1]))[0];
      a.dispose(r[1]);
      a.dispose(s[1]);
    }
    const held = a.memory();
    a.dispose(x);
    parentPort.postMessage({ sum, held, after: a.memory() });`;
  const before = nativeMemory();
  const addon = path.join(ROOT, 'native', 'build', 'lvdm_torch.node');
  const results = await Promise.all(
    [1, 2].map(
      (k) =>
        new Promise<{ sum: number; held: { handles: number }; after: { bytes: number; handles: number } }>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { addon, k } });
          w.once('message', (m) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  // sum over a 64x64 matrix product of constant-k matrices: 64 * 64 * (64 k^2).
  assert.deepEqual(results.map((r) => r.sum), [64 * 64 * 64, 64 * 64 * 64 * 4]);
  assert.deepEqual(results.map((r) => r.held.handles), [1, 1], 'each thread sees only its own tensors');
  assert.deepEqual(results.map((r) => r.after), [{ bytes: 0, handles: 0, storages: 0 }, { bytes: 0, handles: 0, storages: 0 }]);
  assert.deepEqual(nativeMemory(), before, 'the main thread table is untouched');
});
