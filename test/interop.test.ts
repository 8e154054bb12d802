/**
 * lib/interop (issue 14): checkpoints of the public LVDM code in and out.
 *
 * Fixtures (test/fixtures/interop, made by test/python/make_interop_fixtures.py from the public
 * code's own modules with every parameter random): a Lightning checkpoint of the public
 * FrameInterpPredUNet (mask channel + label_emb for s, raw and EMA weights) with its first-stage
 * autoencoder (temporal stride 2), an autoencoder state dict as safetensors (temporal stride 1), the
 * public-format YAML configs, and inputs/outputs computed by PyTorch.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { decodeNpy, encodeNpz, readNpy } from '../lib/io/npy';
import { decodeSafetensors, encodeSafetensors, loadSafetensors } from '../lib/io/safetensors';
import { loadLvdm } from '../lib/lvdm/weights';
import { loadAutoencoder } from '../lib/autoencoder/io';
import { exportPublic, importPublic } from '../lib/interop/convert';
import { readPublicConfig, unetToPublic } from '../lib/interop/public-config';
import { UNetConfig } from '../lib/config/schema';
import { openTorchFile, encodeTorchStateDict, stateDictOf } from '../lib/interop/torch-file';
import { ZipReader, writeZip } from '../lib/interop/zip';
import { unpickle } from '../lib/interop/pickle';
import { permute } from '../lib/interop/layout';
import { sample } from '../lib/diffusion/samplers';
import { ROOT, runLvdm, tempDir } from './helpers';

const FIX = path.join(ROOT, 'test', 'fixtures', 'interop');
const CKPT = path.join(FIX, 'lvdm_small.ckpt');
const YAML = path.join(FIX, 'lvdm_small.yaml');
const AE_ST = path.join(FIX, 'ae_small.safetensors');
const AE_YAML = path.join(FIX, 'ae_small.yaml');
const TOL = 1e-4;

let dir = '';
let imported = '';
let importedEma = '';
let importedAe = '';

/** A fixture array [B, C, T, H, W] (PyTorch layout) as [B, T, H, W, C]. */
function channelsLast(name: string): tf.Tensor5D {
  const a = readNpy(path.join(FIX, `${name}.npy`));
  return tf.tidy(() => tf.transpose(tf.tensor5d(a.data as Float32Array, a.shape as [number, number, number, number, number]), [0, 2, 3, 4, 1]));
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function unetOutput(file: string, mutate?: (m: ReturnType<typeof loadLvdm>) => void): number {
  const m = loadLvdm(file);
  try {
    mutate?.(m);
    return tf.tidy(() => {
      const x = channelsLast('unet_x');
      const mask = readNpy(path.join(FIX, 'unet_mask.npy'));
      const t = Int32Array.from(readNpy(path.join(FIX, 'unet_t.npy')).data as Float32Array);
      const s = Int32Array.from(readNpy(path.join(FIX, 'unet_s.npy')).data as Float32Array);
      const out = m.unet.apply(x, t, { mask: tf.tensor(mask.data as Float32Array, mask.shape), s: tf.tensor1d(s, 'int32') });
      const ref = channelsLast(m.state.ema ? 'unet_out_ema' : 'unet_out');
      return maxAbsDiff(out, ref);
    });
  } finally {
    m.dispose();
  }
}

function aeErrors(file: string, tag: 'ae_a' | 'ae_b'): { mean: number; logvar: number; dec: number } {
  const ae = loadAutoencoder(file);
  try {
    const x = channelsLast(`${tag}_x`);
    const p = ae.ae.encode(x);
    x.dispose();
    const r = tf.tidy(() => {
      const dec = ae.ae.decode(channelsLast(`${tag}_z`));
      return { mean: maxAbsDiff(p.mean, channelsLast(`${tag}_mean`)), logvar: maxAbsDiff(p.logvar, channelsLast(`${tag}_logvar`)), dec: maxAbsDiff(dec, channelsLast(`${tag}_dec`)) };
    });
    tf.dispose([p.mean, p.logvar]);
    return r;
  } finally {
    ae.dispose();
  }
}

before(async () => {
  await initBackend({ quiet: true });
  dir = tempDir('lvdm-interop-');
  imported = path.join(dir, 'raw');
  importedEma = path.join(dir, 'ema');
  importedAe = path.join(dir, 'ae');
  importPublic({ ckpt: CKPT, config: YAML, out: imported });
  importPublic({ ckpt: CKPT, config: YAML, out: importedEma, ema: true });
  importPublic({ ckpt: AE_ST, config: AE_YAML, out: importedAe });
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the public config is translated with the behaviour switches its weights need', () => {
  const spec = readPublicConfig(YAML);
  assert.equal(spec.kind, 'lvdm');
  const u = spec.config.unet!;
  assert.equal(u.relative_key, 'public');
  assert.equal(u.norm_scope, 'clip');
  assert.equal(u.mask_channel, true);
  assert.equal(u.in_channels, 4); // 5 public input channels = 4 latent + mask
  assert.equal(u.s_embed, 'table');
  assert.equal(u.s_levels, 251);
  assert.equal(u.num_heads, 2);
  assert.equal(spec.config.autoencoder!.model.decoder, 'tats');
  assert.deepEqual(spec.config.diffusion!.sampling.spacing, 'leading');
  assert.equal(spec.config.diffusion!.sampling.eta, 1);
  assert.equal(spec.config.diffusion!.sampling.steps, 50);
  assert.deepEqual(spec.latent, { scale: 0.33422927, shift: 1.4606637 });
  assert.equal(spec.config.diffusion!.schedule.linear_end, 0.0155);
  // A model trained here keeps the corrected behaviour.
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, fs.readFileSync(YAML, 'utf8').replace('padding_t: 0', 'padding_t: 1'));
  assert.throws(() => readPublicConfig(bad), /key 'model\.params\.unet_config\.params\.padding_t': must be 0/);
});

test('UNet with mask channel and s table: imported outputs match PyTorch (raw and EMA weights)', () => {
  const before0 = tf.memory().numTensors;
  const raw = unetOutput(path.join(imported, 'lvdm.safetensors'));
  const ema = unetOutput(path.join(importedEma, 'lvdm.safetensors'));
  assert.ok(raw <= TOL, `raw weights: max abs ${raw}`);
  assert.ok(ema <= TOL, `EMA weights: max abs ${ema}`);
  // The switches matter: the corrected relative-key orientation or per-frame norms do not reproduce the public outputs.
  const shaw = unetOutput(path.join(imported, 'lvdm.safetensors'), (m) => m.unet.setKeyOrientation('shaw'));
  assert.ok(shaw > 1e-2, `relative_key switch should matter, got ${shaw}`);
  assert.equal(tf.memory().numTensors, before0);
  const rec = JSON.parse(fs.readFileSync(path.join(imported, 'import.json'), 'utf8')) as { keys_ignored: string[] };
  assert.ok(rec.keys_ignored.includes('betas') && rec.keys_ignored.some((k) => k.startsWith('model_ema.')));
});

test("DDIM with the public sampler's settings reproduces the public DDIMSampler (5 steps, eta 0)", async () => {
  const m = loadLvdm(path.join(imported, 'lvdm.safetensors'));
  const before0 = tf.memory().numTensors;
  try {
    const sp = m.config.diffusion!.sampling;
    assert.equal(sp.spacing, 'leading');
    assert.equal(sp.final_alpha, 'alpha0');
    const xT = channelsLast('ddim_xT');
    const mask = readNpy(path.join(FIX, 'unet_mask.npy'));
    const s = Int32Array.from(readNpy(path.join(FIX, 'unet_s.npy')).data as Float32Array);
    const cond = { mask: tf.tensor(mask.data as Float32Array, mask.shape), s: tf.tensor1d(s, 'int32') };
    const out = await sample(m.unet.asEpsModel(), m.schedule, xT.shape, { kind: 'ddim', steps: 5, eta: 0, spacing: sp.spacing, finalAlpha: sp.final_alpha, xT, cond });
    const ref = channelsLast('ddim_out');
    const err = maxAbsDiff(out, ref);
    assert.ok(err <= TOL, `DDIM max abs ${err}`);
    // With this project's default last step (abar_prev = 1) the result differs.
    const plain = await sample(m.unet.asEpsModel(), m.schedule, xT.shape, { kind: 'ddim', steps: 5, eta: 0, spacing: 'leading', xT, cond });
    assert.ok(maxAbsDiff(plain, ref) > 1e-3);
    tf.dispose([xT, cond.mask, cond.s, out, ref, plain]);
    assert.equal(tf.memory().numTensors, before0);
  } finally {
    m.dispose();
  }
});

test('autoencoder encode (mean, logvar) and decode match PyTorch for temporal strides 2 and 1', () => {
  const before0 = tf.memory().numTensors;
  for (const [file, tag] of [
    [path.join(imported, 'autoencoder.safetensors'), 'ae_a'],
    [path.join(importedAe, 'autoencoder.safetensors'), 'ae_b'],
  ] as const) {
    const e = aeErrors(file, tag);
    assert.ok(e.mean <= TOL && e.logvar <= TOL && e.dec <= TOL, `${tag}: ${JSON.stringify(e)}`);
  }
  assert.equal(tf.memory().numTensors, before0);
});

/** The AE safetensors fixture with one change, written to a temp file. */
function mutatedAe(name: string, change: (t: Map<string, { shape: number[]; data: Float32Array }>) => void): string {
  const st = decodeSafetensors(fs.readFileSync(AE_ST), AE_ST);
  const t = new Map([...st.tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }]));
  change(t);
  const file = path.join(dir, `${name}.safetensors`);
  fs.writeFileSync(file, encodeSafetensors(t));
  return file;
}

test('a wrong name, a missing or extra key and a shape mismatch are errors naming the key', () => {
  const out = path.join(dir, 'err');
  const renamed = mutatedAe('renamed', (t) => {
    t.set('encoder.conv_first.conv.wieght', t.get('encoder.conv_first.conv.weight')!);
    t.delete('encoder.conv_first.conv.weight');
  });
  assert.throws(() => importPublic({ ckpt: renamed, config: AE_YAML, out }), /missing key 'encoder\.conv_first\.conv\.weight'/);
  const missing = mutatedAe('missing', (t) => t.delete('decoder.conv_out.conv.bias'));
  assert.throws(() => importPublic({ ckpt: missing, config: AE_YAML, out }), /missing key 'decoder\.conv_out\.conv\.bias'/);
  const extra = mutatedAe('extra', (t) => t.set('encoder.conv_blocks.0.extra.weight', { shape: [1], data: new Float32Array(1) }));
  assert.throws(() => importPublic({ ckpt: extra, config: AE_YAML, out }), /unexpected key 'encoder\.conv_blocks\.0\.extra\.weight'/);
  const shape = mutatedAe('shape', (t) => t.set('quant_conv.conv.bias', { shape: [7], data: new Float32Array(7) }));
  assert.throws(() => importPublic({ ckpt: shape, config: AE_YAML, out }), /key 'quant_conv\.conv\.bias' has shape \[7\], but the model built from the config expects \[8\]/);
  // A config that does not describe the checkpoint: shape errors name the first differing key.
  const wrongCfg = path.join(dir, 'wrong.yaml');
  fs.writeFileSync(wrongCfg, fs.readFileSync(AE_YAML, 'utf8').replace(/z_channels: 4/g, 'z_channels: 2').replace('embed_dim: 4', 'embed_dim: 2'));
  assert.throws(() => importPublic({ ckpt: AE_ST, config: wrongCfg, out }), /key 'encoder\.final_block\.2\.conv\.weight' has shape/);
  // --ema on a checkpoint without EMA weights.
  assert.throws(() => importPublic({ ckpt: AE_ST, config: YAML, out, ema: true }), /first_stage_model|model_ema/);
});

/** A torch-style zip whose data.pkl is `pkl`. */
function zipWithPickle(pkl: Uint8Array): Uint8Array {
  return writeZip([
    { name: 'archive/data.pkl', data: pkl },
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}

test('unsafe pickles are refused with an error naming the global; nothing is executed', () => {
  // cos\nsystem\n X'touch ...' \x85 R .  == os.system('touch <file>')
  const marker = path.join(dir, 'pwned');
  const arg = Buffer.from(`touch ${marker}`);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(arg.length);
  const evil = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cos\nsystem\n'), Buffer.from([0x58]), len, arg, Buffer.from([0x85, 0x52, 0x2e])]);
  assert.throws(() => openTorchFile(zipWithPickle(evil), 'evil.ckpt'), /evil\.ckpt.*refusing to load: the pickle references the global 'os\.system'/);
  assert.equal(fs.existsSync(marker), false);
  // STACK_GLOBAL form (protocol 4) of builtins.eval.
  const s = (x: string): Buffer => Buffer.concat([Buffer.from([0x8c, x.length]), Buffer.from(x)]);
  const evil2 = Buffer.concat([Buffer.from([0x80, 0x04]), s('builtins'), s('eval'), Buffer.from([0x93]), s('1'), Buffer.from([0x85, 0x52, 0x2e])]);
  assert.throws(() => unpickle(evil2), /refusing to load: the pickle references the global 'builtins\.eval'/);
  // Lightning metadata objects are inert records by default, refused on request.
  const meta = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('comegaconf.dictconfig\nDictConfig\n'), Buffer.from([0x29, 0x52, 0x2e])]);
  assert.deepEqual(unpickle(meta), { kind: 'object', type: 'omegaconf.dictconfig.DictConfig', args: [] });
  assert.throws(() => unpickle(meta, { metadata: 'refuse' }), /global 'omegaconf\.dictconfig\.DictConfig'/);
  // Unsupported opcodes are errors too (INST 'i' constructs objects).
  assert.throws(() => unpickle(Buffer.from('(ios\nsystem\n.')), /unsupported pickle opcode 0x69/);
});

test('torch checkpoint reader: strided views, f16 storages and the state dict of a Lightning file', () => {
  const f = openTorchFile(fs.readFileSync(CKPT), CKPT);
  const sd = stateDictOf(f.root, CKPT);
  const w = sd.get('model.diffusion_model.input_blocks.0.0.weight')!;
  assert.equal(w.storage.dtype, 'F16');
  assert.deepEqual(w.shape, [32, 5, 1, 3, 3]);
  // A transposed view reads as the transpose of the contiguous tensor.
  const data = f.read(w);
  const view = f.read({ ...w, shape: [5, 32, 1, 3, 3], stride: [w.stride[1], w.stride[0], w.stride[2], w.stride[3], w.stride[4]] });
  assert.deepEqual(Array.from(view), Array.from(permute({ shape: w.shape, data }, [1, 0, 2, 3, 4]).data));
  // Written by encodeTorchStateDict, read back exactly.
  const t = new Map([['a.weight', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 4, 5e-8, 6]) }]]);
  const g = openTorchFile(encodeTorchStateDict(t, { lightning: true }), 'mem');
  const a = stateDictOf(g.root, 'mem').get('a.weight')!;
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual(g.read(a), t.get('a.weight')!.data);
  // Deflated members (not what torch.save writes, but valid ZIP) are inflated and CRC-checked.
  const npz = encodeNpz(new Map([['a', { shape: [3], data: Float32Array.of(1, 2, 3) }]]), { compress: true });
  const z = new ZipReader(npz, 'mem.npz');
  assert.equal(z.entries.get('a.npy')!.method, 8);
  assert.deepEqual(decodeNpy(z.read('a.npy')).data, Float32Array.of(1, 2, 3));
  const stored = writeZip([{ name: 'x.bin', data: Uint8Array.of(9, 8, 7, 6) }]);
  const at = Buffer.from(stored).indexOf(Buffer.from([9, 8, 7, 6]));
  assert.equal(at % 64, 0); // data 64-byte aligned, as torch.save writes it
  stored[at + 1] ^= 0xff;
  assert.throws(() => new ZipReader(stored, 'flip.zip').read('x.bin'), /flip\.zip: CRC mismatch in entry 'x\.bin'/);
  assert.throws(() => new ZipReader(Uint8Array.from([1, 2, 3]), 'junk.bin'), /junk\.bin: not a ZIP archive/);
});

test('export -> re-import round trip is exact (.ckpt and .safetensors)', () => {
  const exp = path.join(dir, 'export');
  const r = exportPublic({ ckpt: path.join(imported, 'lvdm.safetensors'), out: path.join(exp, 'model.ckpt') });
  assert.equal(r.yaml, path.join(exp, 'model.yaml'));
  const back = path.join(dir, 'back');
  importPublic({ ckpt: r.file, config: r.yaml, out: back });
  for (const f of ['lvdm.safetensors', 'autoencoder.safetensors']) {
    const a = loadSafetensors(path.join(imported, f)).tensors;
    const b = loadSafetensors(path.join(back, f)).tensors;
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [k, v] of a) assert.deepEqual(b.get(k)!.data, v.data, `${f}: ${k}`);
  }
  const ae = exportPublic({ ckpt: path.join(importedAe, 'autoencoder.safetensors'), out: path.join(exp, 'ae.safetensors') });
  const aeBack = path.join(dir, 'ae-back');
  importPublic({ ckpt: ae.file, config: ae.yaml, out: aeBack });
  const a = loadSafetensors(path.join(importedAe, 'autoencoder.safetensors')).tensors;
  const b = loadSafetensors(path.join(aeBack, 'autoencoder.safetensors')).tensors;
  for (const [k, v] of a) assert.deepEqual(b.get(k)!.data, v.data, k);
});

test('exported .ckpt loads with torch.load(weights_only=True) and equals the public state dict (needs python3-torch)', () => {
  const exp = path.join(dir, 'export-py');
  for (const [src, ema] of [
    [imported, false],
    [importedEma, true],
  ] as const) {
    const out = path.join(exp, `model${ema ? '-ema' : ''}.ckpt`);
    exportPublic({ ckpt: path.join(src, 'lvdm.safetensors'), out });
    const args = [path.join(ROOT, 'test', 'python', 'make_interop_fixtures.py'), 'compare-state', '--exported', out, '--fixture-ckpt', CKPT, ...(ema ? ['--ema'] : [])];
    const py = spawnSync('/usr/bin/python3', args, { encoding: 'utf8' });
    assert.equal(py.status, 0, `python3 (python3-torch) failed: ${py.stderr}\n${py.stdout}`);
    const rep = JSON.parse(py.stdout.trim().split('\n').pop()!) as { ok: boolean; max_abs: number };
    assert.ok(rep.ok, py.stdout);
    assert.equal(rep.max_abs, 0);
  }
});

test('a model with the corrected switches is not exported silently as public', () => {
  // Re-save the imported model with relative_key 'shaw' (what a model trained here has by default).
  const file = path.join(imported, 'lvdm.safetensors');
  const st = decodeSafetensors(fs.readFileSync(file), file);
  const meta = JSON.parse(st.metadata.lvdm) as { config: { unet: Record<string, unknown> } };
  meta.config.unet.relative_key = 'shaw';
  const shaw = path.join(dir, 'shaw.safetensors');
  fs.writeFileSync(shaw, encodeSafetensors(st.tensors as Map<string, { shape: number[]; data: Float32Array }>, { ...st.metadata, lvdm: JSON.stringify(meta) }));
  assert.throws(() => exportPublic({ ckpt: shaw, out: path.join(dir, 'x.ckpt') }), /unet\.relative_key 'shaw'.*--allow-behaviour-change/);
  const r = exportPublic({ ckpt: shaw, out: path.join(dir, 'x.ckpt'), allowBehaviourChange: true });
  assert.ok(fs.existsSync(r.file));
  // A v-prediction network cannot be read as the public code's eps network, even when allowed to differ.
  const vMeta = JSON.parse(st.metadata.lvdm) as { config: { diffusion: Record<string, unknown> } };
  vMeta.config.diffusion.prediction = 'v';
  const vFile = path.join(dir, 'v.safetensors');
  fs.writeFileSync(vFile, encodeSafetensors(st.tensors as Map<string, { shape: number[]; data: Float32Array }>, { ...st.metadata, lvdm: JSON.stringify(vMeta) }));
  assert.throws(() => exportPublic({ ckpt: vFile, out: path.join(dir, 'v.ckpt'), allowBehaviourChange: true }), /predicts eps.*this model predicts v/);
  // Inputs the public UNet does not read are refused by name (self-conditioning, class labels).
  const unet = { ...(meta.config.unet as object), relative_key: 'public' };
  assert.doesNotThrow(() => unetToPublic(UNetConfig.parse(unet), 32));
  assert.throws(() => unetToPublic(UNetConfig.parse({ ...unet, self_condition: true }), 32), /export: unet\.self_condition: the public UNet reads no x_0 estimate/);
  assert.throws(() => unetToPublic(UNetConfig.parse({ ...unet, num_classes: 7 }), 32), /export: unet\.num_classes: .* a class-conditional model has no public counterpart/);
});

test('lvdm import / export / sample on the command line', async () => {
  const out = path.join(dir, 'cli');
  const imp = await runLvdm(['import', CKPT, '--config', YAML, '--out', out, '--ema', '--json']);
  assert.equal(imp.code, 0, imp.stderr);
  const rep = JSON.parse(imp.stdout) as { kind: string; ema: boolean };
  assert.equal(rep.kind, 'lvdm');
  assert.equal(rep.ema, true);
  const bad = await runLvdm(['import', path.join(dir, 'nope.ckpt'), '--config', YAML, '--out', out]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /nope\.ckpt: file not found/);
  const exp = await runLvdm(['export', '--ckpt', path.join(out, 'lvdm.safetensors'), '--out', path.join(out, 'exported.ckpt')]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.ok(fs.existsSync(path.join(out, 'exported.yaml')));
  // Sampling with the public scripts' settings (recorded in the imported config).
  const samples = path.join(out, 'samples');
  const s = await runLvdm(['sample', '--ckpt', path.join(out, 'lvdm.safetensors'), '--n', '1', '--steps', '2', '--seed', '1', '--out', samples, '--quiet']);
  assert.equal(s.code, 0, s.stderr);
  const info = JSON.parse(fs.readFileSync(path.join(samples, 'samples.json'), 'utf8')) as { frames: number; height: number; eta: number };
  assert.equal(info.frames, 10);
  assert.equal(info.height, 16);
  assert.equal(info.eta, 1);
  // Noise-level experts on the command line: the model with itself below t = 500 samples as it
  // does alone; the switch is recorded; a switch without a model, a switch out of range and a
  // missing file are refused by name.
  const ckpt = path.join(out, 'lvdm.safetensors');
  const plainNpz = path.join(out, 'plain');
  const expertNpz = path.join(out, 'experts');
  const args = ['sample', '--ckpt', ckpt, '--n', '1', '--steps', '2', '--seed', '1', '--npz', '--quiet'];
  assert.equal((await runLvdm([...args, '--out', plainNpz])).code, 0);
  const ex = await runLvdm([...args, '--out', expertNpz, '--low-noise', ckpt, '--switch-t', '500']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.deepEqual(fs.readFileSync(path.join(expertNpz, 'samples.npz')), fs.readFileSync(path.join(plainNpz, 'samples.npz')));
  const exInfo = JSON.parse(fs.readFileSync(path.join(expertNpz, 'samples.json'), 'utf8')) as { low_noise: { ckpt: string; below: number } };
  assert.deepEqual(exInfo.low_noise.below, 500);
  assert.equal(exInfo.low_noise.ckpt, ckpt);
  const noModel = await runLvdm([...args, '--out', path.join(out, 'x1'), '--switch-t', '500']);
  assert.match(noModel.stderr, /--switch-t: needs --low-noise <model\.safetensors>/);
  const outOfRange = await runLvdm([...args, '--out', path.join(out, 'x2'), '--low-noise', ckpt, '--switch-t', '0']);
  assert.match(outOfRange.stderr, /--switch-t: expected a timestep in 1\.\.999, got 0/);
  const missing = await runLvdm([...args, '--out', path.join(out, 'x3'), '--low-noise', path.join(out, 'nope.safetensors')]);
  assert.match(missing.stderr, /--low-noise: file .*nope\.safetensors not found/);
  for (const r of [noModel, outOfRange, missing]) assert.notEqual(r.code, 0);
  // Epsilon scaling on the command line: lambda 1 samples as the model alone and is recorded;
  // a slope without lambda and a lambda <= 0 are refused by name.
  const scaledNpz = path.join(out, 'eps-scaled');
  const sc = await runLvdm([...args, '--out', scaledNpz, '--eps-scale', '1']);
  assert.equal(sc.code, 0, sc.stderr);
  assert.deepEqual(fs.readFileSync(path.join(scaledNpz, 'samples.npz')), fs.readFileSync(path.join(plainNpz, 'samples.npz')));
  assert.deepEqual((JSON.parse(fs.readFileSync(path.join(scaledNpz, 'samples.json'), 'utf8')) as { eps_scale: unknown }).eps_scale, { lambda: 1, k: 0 });
  const slopeOnly = await runLvdm([...args, '--out', path.join(out, 'x4'), '--eps-scale-slope', '0.001']);
  assert.match(slopeOnly.stderr, /--eps-scale-slope: needs --eps-scale L/);
  const zero = await runLvdm([...args, '--out', path.join(out, 'x5'), '--eps-scale', '0']);
  assert.match(zero.stderr, /--eps-scale: expected a number > 0, got 0/);
  for (const r of [slopeOnly, zero]) assert.notEqual(r.code, 0);
});
