// lib/backend: backend selection (initBackend / backendName), errors, and the doctor self-check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { backendName, gradientSelfCheck, initBackend, registerWasmKernels } from '../lib/backend';

test('initBackend selects the libtorch backend here (set-up builds it), is idempotent, and reports versions', async () => {
  const a = await initBackend({ quiet: true });
  assert.equal(a.name, 'libtorch', `expected the native backend (is native/build/lvdm_torch.node built? bash native/build.sh)`);
  assert.equal(backendName(), 'libtorch');
  assert.equal(tf.getBackend(), 'libtorch');
  assert.equal(a.versions.tfjs, tf.version.tfjs);
  assert.match(a.versions.libtorch, /^1\.13\.\d+$/);
  assert.match(a.versions.blas, /^OpenBLAS /);
  // Set-up installs OpenBLAS's OpenMP build and native/build.sh links it ahead of libtorch, so BLAS
  // shares libtorch's OpenMP threads instead of spinning a pool of its own beside them.
  if (fs.existsSync('/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3')) assert.match(a.versions.blas, /USE_OPENMP/, `expected the OpenMP OpenBLAS build, got '${a.versions.blas}'`);
  assert.ok((a.threads ?? 0) >= 1);
  const b = await initBackend({ quiet: true });
  assert.equal(b, a, 'second call returns the same info object');
  const w = await initBackend({ prefer: 'wasm', quiet: true });
  assert.match(w.versions['tfjs-backend-wasm'], /^\d+\.\d+\.\d+$/);
  registerWasmKernels(); // idempotent: no throw, no duplicate registration
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined);
});

test('initBackend honours prefer, and names unknown or missing backends', async () => {
  await assert.rejects(initBackend({ prefer: 'bogus', quiet: true }), /unknown backend 'bogus'.*tensorflow\|node-gpu\|node\|native\|libtorch\|wasm\|cpu/);
  await assert.rejects(initBackend({ prefer: 'node', quiet: true }), /@tensorflow\/tfjs-node is not installed/);
  const c = await initBackend({ prefer: 'cpu', quiet: true });
  assert.equal(c.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  const w = await initBackend({ prefer: 'wasm', quiet: true });
  assert.equal(w.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

test('LVDM_BACKEND forces a backend and rejects bad values', async () => {
  const saved = process.env.LVDM_BACKEND;
  try {
    process.env.LVDM_BACKEND = 'cpu';
    await tf.setBackend('wasm'); // make the cached choice stale so initBackend chooses again
    await initBackend({ prefer: 'cpu', quiet: true });
    assert.equal(tf.getBackend(), 'cpu');
    process.env.LVDM_BACKEND = 'quantum';
    await tf.setBackend('wasm');
    await assert.rejects(initBackend({ quiet: true }), /LVDM_BACKEND: unknown backend 'quantum'/);
  } finally {
    if (saved === undefined) delete process.env.LVDM_BACKEND;
    else process.env.LVDM_BACKEND = saved;
  }
  const w = await initBackend({ prefer: 'wasm', quiet: true });
  assert.equal(w.name, 'wasm');
});

test('initBackend prints one line unless quiet', async () => {
  await tf.setBackend('cpu');
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => {
    lines.push(a.join(' '));
  };
  try {
    await initBackend({ prefer: 'wasm' });
  } finally {
    console.log = orig;
  }
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^\[lvdm\] backend: wasm \(tfjs \d+\.\d+\.\d+, tfjs-backend-wasm \d+\.\d+\.\d+/);
});

test('gradientSelfCheck passes on wasm, names its checks, and leaks nothing', async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  const before = tf.memory().numTensors;
  const r = await gradientSelfCheck();
  assert.equal(tf.getBackend(), 'wasm', 'self-check restores the backend');
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.checks.length >= 8);
  for (const c of r.checks) assert.ok(c.ok, `${c.name}: ${c.maxRelErr}`);
  assert.ok(r.ok);
  assert.ok(r.checks.some((c) => /Conv2DBackpropFilter/.test(c.name)));
});
