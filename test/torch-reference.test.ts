// experiments/torch-reference/to-lvdm.ts: the public UNet's weights (as train_image.py writes them)
// become an LVDM.ts model whose network computes what the public network computes. The fixture
// (test/fixtures/torch-reference) was made by the public code itself:
//   /usr/bin/python3 experiments/torch-reference/train_image.py --lvdm /tmp/lvdm-src \
//     --config test/fixtures/torch-reference/config.json --fixture test/fixtures/torch-reference
// (seeded random weights of a self-conditioned one-level public UNetModel, an input and its output).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { validateConfig } from '../lib/config/load';
import { loadLvdm, saveLvdmWeights } from '../lib/lvdm/weights';
import { lvdmSections } from '../lib/lvdm/trainer';
import { UNet3D } from '../lib/models/unet3d/unet';
import { ParamStore } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { loadSafetensors } from '../lib/io/safetensors';

const ROOT = path.resolve(__dirname, '..');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'torch-reference');
const ready = initBackend();

/** An LVDM.ts model file of the fixture's network (random weights), as a --like template. */
function likeFile(dir: string, modelChannels?: number): string {
  const raw = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8')) as { unet: Record<string, unknown> };
  if (modelChannels) raw.unet.model_channels = modelChannels;
  const config = validateConfig(raw, 'torch-reference fixture config');
  const store = new ParamStore(new Rng(3));
  new UNet3D(store, lvdmSections(config).unet);
  const file = path.join(dir, `like-${modelChannels ?? 'same'}.safetensors`);
  saveLvdmWeights(file, store.snapshot(), config, { autoencoder: '/nonexistent', latent: { shift: 0.1, scale: 0.5 }, latent_shape: [1, 8, 8, 4], clip: { frames: 2, height: 16, width: 16 }, ema: false }, 0);
  store.dispose();
  return file;
}

function toLvdm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'experiments', 'torch-reference', 'to-lvdm.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
}

test('to-lvdm: the converted model computes the public network output (self-conditioned input, public relative positions)', async () => {
  await ready;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-ref-'));
  const out = path.join(dir, 'lvdm.safetensors');
  const r = toLvdm(['--weights', path.join(FIXTURE, 'unet.safetensors'), '--like', likeFile(dir), '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const model = loadLvdm(out);
  assert.equal(model.config.unet!.relative_key, 'public');
  assert.equal(model.step, 7);
  assert.ok(model.state.ema);
  assert.deepEqual(model.state.latent, { shift: 0.1, scale: 0.5 });
  const p = loadSafetensors(path.join(FIXTURE, 'parity.safetensors')).tensors;
  const t5 = (k: string) => tf.tensor5d(p.get(k)!.data as Float32Array, p.get(k)!.shape as [number, number, number, number, number]);
  const x = t5('x');
  const sc = t5('self_cond');
  const before = tf.memory().numTensors;
  const got = model.unet.apply(x, Int32Array.from(p.get('t')!.data as Float32Array), { self_cond: sc });
  const want = p.get('out')!.data as Float32Array;
  const g = got.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(g[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert.ok(scale > 0.5, `the fixture's output is not trivial (${scale})`);
  assert.ok(diff < 1e-4, `max |LVDM.ts - public| = ${diff}`);
  // Without the self-conditioning input the network reads zeros there: another output.
  const plain = model.unet.apply(x, Int32Array.from([10, 700]));
  assert.ok(Math.abs(plain.dataSync()[0] - g[0]) > 1e-4);
  tf.dispose([got, plain]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, sc]);
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('to-lvdm: a --like model of another width is refused, naming the key and both shapes', async () => {
  await ready;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torch-ref-'));
  const r = toLvdm(['--weights', path.join(FIXTURE, 'unet.safetensors'), '--like', likeFile(dir, 64), '--out', path.join(dir, 'x.safetensors')]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unet\.safetensors: key '[^']+' has shape \[[\d,]+\], but the model built from the config expects \[[\d,]+\]/);
  assert.ok(!fs.existsSync(path.join(dir, 'x.safetensors')));
  fs.rmSync(dir, { recursive: true, force: true });
});
