/**
 * lib/interop (issue 15): the public LVDM text-to-video checkpoint in.
 *
 * Fixtures (test/fixtures/interop/t2v, made by test/python/make_interop_t2v_fixtures.py from the
 * public code's own modules with every parameter random, stored as float16): a Lightning-style
 * checkpoint of the public text-to-video LatentDiffusion (openaimodel3d.UNetModel with the
 * SpatialTemporalTransformer middle block, LDM's 2D AutoencoderKL, a CLIP text tower in Hugging
 * Face's CLIPTextModel names under cond_stage_model.transformer), its public-format YAML, the
 * tokenizer folder (vocab.json, merges.txt, config.json), and PyTorch's outputs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { stringify } from 'yaml';
import { initBackend } from '../lib/backend';
import { readNpy } from '../lib/io/npy';
import { encodeSafetensors } from '../lib/io/safetensors';
import { loadLvdm } from '../lib/lvdm/weights';
import { loadAutoencoder } from '../lib/autoencoder/io';
import { exportPublic, importPublic, openStateDict } from '../lib/interop/convert';
import { readPublicConfig } from '../lib/interop/public-config';
import { ROOT, runLvdm, tempDir } from './helpers';

const FIX = path.join(ROOT, 'test', 'fixtures', 'interop', 't2v');
const CKPT = path.join(FIX, 't2v_small.ckpt');
const YAML = path.join(FIX, 't2v_small.yaml');
const CLIP = path.join(FIX, 'clip');
const PROMPTS = ['a red circle moves left', 'two squares move apart!!'];
const TOL = 1e-4;

let dir = '';
let imported = '';

function npy(name: string): { data: Float32Array; shape: number[] } {
  const a = readNpy(path.join(FIX, `t2v_${name}.npy`));
  return { data: a.data as Float32Array, shape: a.shape };
}

/** [B, C, T, H, W] (PyTorch video) -> [B, T, H, W, C]. */
function video(name: string): tf.Tensor5D {
  const a = npy(name);
  return tf.tidy(() => tf.transpose(tf.tensor5d(a.data, a.shape as [number, number, number, number, number]), [0, 2, 3, 4, 1]));
}

/** [N, C, H, W] frames (the 2D autoencoder's batch) -> one video [1, N, H, W, C]. */
function frames(name: string): tf.Tensor5D {
  const a = npy(name);
  const [n, c, h, w] = a.shape;
  return tf.tidy(() => tf.reshape(tf.transpose(tf.tensor4d(a.data, [n, c, h, w]), [0, 2, 3, 1]), [1, n, h, w, c]));
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** The fixture checkpoint's tensors, changed, as a safetensors file. */
function mutated(name: string, change: (t: Map<string, { shape: number[]; data: Float32Array }>) => void): string {
  const t = new Map([...openStateDict(CKPT).tensors].map(([k, v]) => [k, { shape: v.shape, data: v.read() }]));
  change(t);
  const file = path.join(dir, `${name}.safetensors`);
  fs.writeFileSync(file, encodeSafetensors(t));
  return file;
}

before(async () => {
  await initBackend({ quiet: true });
  dir = tempDir('lvdm-interop-t2v-');
  imported = path.join(dir, 'imported');
  importPublic({ ckpt: CKPT, config: YAML, out: imported, clip: CLIP });
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the public text2video.yaml translates to the public layout switches', () => {
  // configs/lvdm_short/text2video.yaml of YingqingHe/LVDM (its model section, values as published).
  const full = {
    model: {
      target: 'lvdm.models.ddpm3d.LatentDiffusion',
      params: {
        linear_start: 0.00085, linear_end: 0.012, num_timesteps_cond: 1, log_every_t: 200, timesteps: 1000, first_stage_key: 'video', cond_stage_key: 'caption',
        image_size: [32, 32], video_length: 16, channels: 4, cond_stage_trainable: false, conditioning_key: 'crossattn', scale_by_std: false, scale_factor: 0.18215, use_ema: false,
        unet_config: {
          target: 'lvdm.models.modules.openaimodel3d.UNetModel',
          params: {
            image_size: 32, in_channels: 4, out_channels: 4, model_channels: 320, attention_resolutions: [4, 2, 1], num_res_blocks: 2, channel_mult: [1, 2, 4, 4], num_heads: 8,
            transformer_depth: 1, context_dim: 768, use_checkpoint: true, legacy: false, kernel_size_t: 1, padding_t: 0, use_temporal_transformer: true, temporal_length: 16, use_relative_position: true,
          },
        },
        first_stage_config: {
          target: 'lvdm.models.autoencoder.AutoencoderKL',
          params: {
            embed_dim: 4, monitor: 'val/rec_loss',
            ddconfig: { double_z: true, z_channels: 4, resolution: 256, in_channels: 3, out_ch: 3, ch: 128, ch_mult: [1, 2, 4, 4], num_res_blocks: 2, attn_resolutions: [], dropout: 0.0 },
            lossconfig: { target: 'torch.nn.Identity' },
          },
        },
        cond_stage_config: { target: 'lvdm.models.modules.condition_modules.FrozenCLIPEmbedder' },
      },
    },
  };
  const file = path.join(dir, 'text2video.yaml');
  fs.writeFileSync(file, stringify(full));
  assert.throws(() => readPublicConfig(file), /text-to-video needs the CLIP tokenizer of 'openai\/clip-vit-large-patch14': pass --clip DIR/);
  // A tokenizer folder without config.json means ViT-L/14.
  const vitl = path.join(dir, 'vit-l');
  fs.mkdirSync(vitl);
  for (const f of ['vocab.json', 'merges.txt']) fs.copyFileSync(path.join(CLIP, f), path.join(vitl, f));
  const spec = readPublicConfig(file, undefined, { clip: vitl });
  const u = spec.config.unet!;
  assert.equal(u.attention_block, 'st_transformer');
  assert.equal(u.context_dim, 768);
  assert.equal(u.ff_mult, 4);
  assert.equal(u.transformer_depth, 1);
  assert.equal(u.num_heads, 8);
  assert.equal(u.relative_key, 'shaw');
  assert.equal(u.norm_scope, 'clip');
  assert.equal(u.scale_shift_norm, false);
  assert.deepEqual(u.attention_resolutions, [4, 2, 1]);
  const a = spec.config.autoencoder!.model;
  assert.equal(a.arch, 'ldm');
  assert.equal(a.frame_wise, true);
  assert.deepEqual([a.base_channels, a.channels, a.spatial_factor, a.temporal_factor, a.enc_res_blocks, a.dec_res_blocks], [128, [256, 512, 512], 8, 1, 2, 3]);
  const t = spec.config.text!;
  assert.deepEqual([t.width, t.layers, t.heads, t.mlp_ratio, t.context_length, t.mask_padding, t.pad, t.train], [768, 12, 12, 4, 77, false, 'end', false]);
  assert.deepEqual(spec.latent, { scale: 0.18215, shift: 0 });
  assert.equal(spec.latentFrames, 16);
  assert.deepEqual([spec.config.data.frames, spec.config.data.size], [16, 256]);
  assert.equal(spec.config.diffusion!.schedule.linear_end, 0.012);
  // A context width that differs from the text encoder's is refused, naming the key.
  const bad = path.join(dir, 'bad-t2v.yaml');
  const wrong = structuredClone(full);
  wrong.model.params.unet_config.params.context_dim = 512;
  fs.writeFileSync(bad, stringify(wrong));
  assert.throws(() => readPublicConfig(bad, undefined, { clip: vitl }), /key 'model\.params\.unet_config\.params\.context_dim': must equal the CLIP text width 768/);
});

test('the imported CLIP text tower, UNet and 2D autoencoder match PyTorch', () => {
  const before0 = tf.memory().numTensors;
  const m = loadLvdm(path.join(imported, 'lvdm.safetensors'));
  try {
    assert.ok(m.text, 'the imported model has a text encoder');
    const ids = npy('ids');
    const tok = m.text.tokenize(PROMPTS);
    assert.deepEqual(Array.from(tok.tokens.dataSync()), Array.from(ids.data));
    const ctx = m.text.encodeCond(tok);
    tf.dispose(Object.values(tok));
    const e = tf.tidy(() => {
      assert.equal(ctx.context_mask, undefined); // LDM attends to every padded token
      const ref = tf.tensor3d(npy('context').data, [2, 77, 32]);
      const clip = maxAbsDiff(ctx.context, ref);
      const t = Int32Array.from(npy('unet_t').data);
      const eps = m.unet.apply(video('unet_x'), t, { context: ref });
      const unet = maxAbsDiff(eps, video('unet_out'));
      // End to end: prompts -> tokens -> CLIP -> UNet.
      const chained = maxAbsDiff(m.unet.apply(video('unet_x'), t, { context: ctx.context as tf.Tensor3D }), video('unet_out'));
      return { clip, unet, chained };
    });
    tf.dispose(Object.values(ctx));
    assert.ok(e.clip <= TOL && e.unet <= TOL && e.chained <= TOL, JSON.stringify(e));
  } finally {
    m.dispose();
  }
  const ae = loadAutoencoder(path.join(imported, 'autoencoder.safetensors'));
  try {
    assert.equal(ae.config.autoencoder!.model.arch, 'ldm');
    const x = frames('ae_x');
    const p = ae.ae.encode(x);
    x.dispose();
    const e = tf.tidy(() => ({
      mean: maxAbsDiff(p.mean, frames('ae_mean')),
      logvar: maxAbsDiff(p.logvar, frames('ae_logvar')),
      dec: maxAbsDiff(ae.ae.decode(frames('ae_z')), frames('ae_dec')),
    }));
    tf.dispose([p.mean, p.logvar]);
    assert.ok(e.mean <= TOL && e.logvar <= TOL && e.dec <= TOL, JSON.stringify(e));
  } finally {
    ae.dispose();
  }
  assert.equal(tf.memory().numTensors, before0);
});

test('import records the switches and the tokenizer; missing and unexpected keys are errors naming them', () => {
  const report = JSON.parse(fs.readFileSync(path.join(imported, 'import.json'), 'utf8')) as { switches: Record<string, unknown>; keys_ignored: string[] };
  assert.equal(report.switches['unet.attention_block'], 'st_transformer');
  assert.equal(report.switches['autoencoder.model.arch'], 'ldm');
  assert.ok(report.keys_ignored.includes('cond_stage_model.transformer.text_model.embeddings.position_ids'));
  const out = path.join(dir, 'err');
  const opts = { config: YAML, out, clip: CLIP };
  const unetKey = 'model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight';
  assert.throws(() => importPublic({ ...opts, ckpt: mutated('no-unet-key', (t) => t.delete(unetKey)) }), /missing key 'middle_block\.1\.transformer_blocks\.0\.attn2\.to_k\.weight'/);
  const textKey = 'cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc2.bias';
  assert.throws(() => importPublic({ ...opts, ckpt: mutated('no-text-key', (t) => t.delete(textKey)) }), /missing key 'cond_stage_model\.transformer\.text_model\.encoder\.layers\.1\.mlp\.fc2\.bias'/);
  assert.throws(() => importPublic({ ...opts, ckpt: mutated('no-ae-key', (t) => t.delete('first_stage_model.decoder.mid.attn_1.q.bias')) }), /missing key 'decoder\.mid\.attn_1\.q\.bias'/);
  const extra = mutated('extra', (t) => t.set('cond_stage_model.transformer.text_projection.weight', { shape: [1], data: new Float32Array(1) }));
  assert.throws(() => importPublic({ ...opts, ckpt: extra }), /unexpected key 'cond_stage_model\.transformer\.text_projection\.weight'/);
  const shape = mutated('shape', (t) => t.set('model.diffusion_model.middle_block.1.proj_in.weight', { shape: [32, 32], data: new Float32Array(1024) }));
  assert.throws(() => importPublic({ ...opts, ckpt: shape }), /key 'model\.diffusion_model\.middle_block\.1\.proj_in\.weight' has shape \[32,32\], but the model built from the config expects \[32,32,1,1,1\]/);
});

test('lvdm import --clip, then lvdm sample --prompt with guidance on the imported model', async () => {
  const out = path.join(dir, 'cli');
  const imp = await runLvdm(['import', CKPT, '--config', YAML, '--clip', CLIP, '--out', out]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, /unet\.attention_block: "st_transformer"/);
  const samples = path.join(dir, 'samples');
  const r = await runLvdm(['sample', '--ckpt', path.join(out, 'lvdm.safetensors'), '--prompt', PROMPTS[0], '--negative-prompt', 'blue', '--cfg', '7.5', '--steps', '2', '--eta', '0', '--out', samples, '--npz']);
  assert.equal(r.code, 0, r.stderr);
  const written = fs.readdirSync(samples);
  assert.ok(written.includes('samples.npz'), written.join(', '));
});

test('export writes the public checkpoint back: the same keys, shapes and values, and it re-imports', () => {
  const file = path.join(dir, 'export', 't2v.ckpt');
  const rep = exportPublic({ ckpt: path.join(imported, 'lvdm.safetensors'), out: file });
  const got = openStateDict(file).tensors;
  const ref = openStateDict(CKPT).tensors;
  assert.deepEqual([...got.keys()].sort(), [...ref.keys()].sort());
  for (const [k, t] of ref) {
    const g = got.get(k)!;
    assert.deepEqual(g.shape, t.shape, k);
    const a = g.read();
    const b = t.read();
    assert.ok(a.every((v, i) => v === b[i]), `${k} differs`);
  }
  const yaml = fs.readFileSync(rep.yaml, 'utf8');
  assert.match(yaml, /conditioning_key: crossattn/);
  assert.match(yaml, /use_temporal_transformer: true/);
  assert.match(yaml, /target: lvdm\.models\.autoencoder\.AutoencoderKL/);
  const again = path.join(dir, 'reimported');
  importPublic({ ckpt: file, config: rep.yaml, out: again, clip: CLIP });
  const w1 = openStateDict(path.join(imported, 'lvdm.safetensors')).tensors;
  const w2 = openStateDict(path.join(again, 'lvdm.safetensors')).tensors;
  assert.deepEqual([...w2.keys()].sort(), [...w1.keys()].sort());
  for (const [k, t] of w1) assert.ok(w2.get(k)!.read().every((v, i) => v === t.read()[i]), `${k} differs after re-import`);
});
