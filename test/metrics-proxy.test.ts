import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadSafetensors, saveSafetensors } from '../lib/io/safetensors';
import { Rng } from '../lib/nn/rng';
import { renderSyntheticFrames, SyntheticFamily } from '../data/synthetic';
import { frechetDistance } from '../metrics/frechet';
import { FeatureMatrix } from '../metrics/features';
import { PROXY_EXTRACTORS, ProxyExtractor, loadMotionNet, loadProxyExtractor } from '../metrics/proxy/extractor';
import { PROXY_CLASSES } from '../metrics/proxy/model';
import { drawSample } from '../metrics/proxy/train';

const WEIGHTS = PROXY_EXTRACTORS['synthetic-motion'].file;

async function proxyFeatures(ex: ProxyExtractor, family: SyntheticFamily, seed: number, n: number, mode: 'normal' | 'shuffled'): Promise<FeatureMatrix> {
  const t = 16;
  const size = 48;
  const fsz = size * size * 3;
  const rng = new Rng(seed);
  const clips = new Uint8Array(n * t * fsz);
  for (let i = 0; i < n; i++) {
    const v = renderSyntheticFrames({ family, seed, index: i, height: size, width: size }, 0, t);
    const perm = mode === 'shuffled' ? rng.permutation(t) : Array.from({ length: t }, (_, k) => k);
    perm.forEach((src, dst) => clips.set(v.subarray(src * fsz, (src + 1) * fsz), (i * t + dst) * fsz));
  }
  const f = await ex.extract(clips, n, t, size, size);
  return { n, d: ex.featureDim, data: Float64Array.from(f) };
}

test('the shipped synthetic-motion weights load, carry their training record, and classify held-out clips', async () => {
  await initBackend({ quiet: true });
  assert.ok(fs.existsSync(WEIGHTS), `${WEIGHTS} is shipped with the repository`);
  const { metadata, sha256, store } = loadMotionNet(WEIGHTS);
  store.dispose();
  assert.match(sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(JSON.parse(metadata.classes) as string[], [...PROXY_CLASSES]);
  assert.match(metadata.train_command, /metrics\/proxy\/train\.ts/);
  assert.ok(Number(metadata.heldout_accuracy) > 0.6, `held-out accuracy ${metadata.heldout_accuracy}`);
});

test('proxy FVD separates distributions: same family far below shuffled frames and another family', async () => {
  await initBackend({ quiet: true });
  const ex = loadProxyExtractor('synthetic-motion', { batchSize: 16 });
  const before = tf.memory().numTensors;
  const a = await proxyFeatures(ex, 'ucf', 1000, 48, 'normal');
  const same = frechetDistance(a, await proxyFeatures(ex, 'ucf', 2000, 48, 'normal')).fd;
  const shuffled = frechetDistance(a, await proxyFeatures(ex, 'ucf', 2000, 48, 'shuffled')).fd;
  const other = frechetDistance(a, await proxyFeatures(ex, 'taichi', 2000, 48, 'normal')).fd;
  assert.equal(tf.memory().numTensors, before);
  ex.dispose();
  assert.ok(10 * same < shuffled, `same distribution ${same} vs shuffled frames ${shuffled}`);
  assert.ok(10 * same < other, `same distribution ${same} vs another family ${other}`);
});

test('training samples are deterministic given the seed, labelled consistently, shuffled ones permute real frames', () => {
  const a = new Rng(4);
  const b = new Rng(4);
  const seen = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const x = drawSample(a, 101);
    const y = drawSample(b, 101);
    assert.equal(x.label, y.label);
    assert.ok(Buffer.from(x.clip).equals(Buffer.from(y.clip)));
    assert.ok(x.label >= 0 && x.label < PROXY_CLASSES.length);
    seen.add(x.label);
  }
  assert.ok(seen.has(PROXY_CLASSES.indexOf('shuffled')) && seen.size > 5);
});

test('a proxy weight file with a missing or mis-shaped tensor is an error naming it', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-proxy-'));
  const { tensors, metadata } = loadSafetensors(WEIGHTS);
  const drop = new Map([...tensors].filter(([k]) => k !== 'c3.bias').map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  saveSafetensors(path.join(dir, 'a.safetensors'), drop, metadata);
  assert.throws(() => loadMotionNet(path.join(dir, 'a.safetensors')), /missing parameters \(.*a\.safetensors\): c3\.bias/);
  const bad = new Map([...tensors].map(([k, v]) => [k, k === 'head.weight' ? { shape: [4, 4], data: new Float32Array(16) } : { shape: v.shape, data: v.data }]));
  saveSafetensors(path.join(dir, 'b.safetensors'), bad, metadata);
  assert.throws(() => loadMotionNet(path.join(dir, 'b.safetensors')), /parameter 'head\.weight' .*shape \[4,4\] does not match/);
  assert.throws(() => loadMotionNet(path.join(dir, 'none.safetensors')), /proxy weights not found; reproduce them with/);
  fs.rmSync(dir, { recursive: true });
});
