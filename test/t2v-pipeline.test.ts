/**
 * Text-to-video end to end: the captioned synthetic family (captions agree with the pixels), a tiny
 * model trained through `lvdm train-lvdm` (captions through the latent cache, resume), `lvdm sample
 * --prompt / --prompts --cfg --negative-prompt`, the prompt-following classifier and score.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ParamStore } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { ExperimentConfig } from '../lib/config/schema';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { saveAutoencoderWeights } from '../lib/autoencoder/io';
import { readNpz } from '../lib/io/npy';
import { command as trainLvdm } from '../lib/cli/commands/train-lvdm';
import { command as sampleCmd } from '../lib/cli/commands/sample';
import { SyntheticDataset, captionedAttributes } from '../data/synthetic';
import { CAPTION_COLOURS, CAPTION_COUNTS, CAPTION_DIRECTIONS, CAPTION_SHAPES, allCaptions, captionOf, captionWords } from '../data/captioned';
import { CaptionClassifier, captionedClips } from '../lib/t2v/classifier';
import { dominantColour, promptFollowing } from '../lib/t2v/score';
import { ClipTokenizer, buildWordVocab } from '../lib/text/tokenizer';
import { tempDir } from './helpers';

test('synthetic-captioned: captions are compositional and agree with colour and motion in the pixels', async () => {
  const size = 32;
  const frames = 8;
  const ds = new SyntheticDataset({ family: 'captioned', size: 40, frames, height: size, width: size, videoLength: frames, seed: 5 });
  assert.equal(allCaptions().length, 96);
  assert.equal(new Set(allCaptions().map((c) => c.caption)).size, 96);
  const tok = new ClipTokenizer(buildWordVocab(captionWords()));
  for (const { caption } of allCaptions()) assert.equal(tok.encode(caption).length, 5, caption);
  for (let i = 0; i < ds.size; i++) {
    const clip = await ds.get(i, new Rng(1));
    const a = captionedAttributes(5, i);
    assert.equal(clip.caption, captionOf(a));
    const again = await ds.get(i, new Rng(99));
    assert.deepEqual(again.video, clip.video, 'clips start at frame 0 when video_length = frames');
    // Foreground = pixels close to the caption's colour; its centroid moves in the caption's direction.
    const rgb = CAPTION_COLOURS[a.colour].rgb;
    const centroid = (f: number): [number, number, number] => {
      let sx = 0;
      let sy = 0;
      let k = 0;
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const o = ((f * size + y) * size + x) * 3;
          if (Math.abs(clip.video[o] - rgb[0]) + Math.abs(clip.video[o + 1] - rgb[1]) + Math.abs(clip.video[o + 2] - rgb[2]) < 30) {
            sx += x;
            sy += y;
            k += 1;
          }
        }
      return [sx / k, sy / k, k];
    };
    const [x0, y0, k0] = centroid(0);
    const [x1, y1] = centroid(frames - 1);
    assert.ok(k0 > 10 * CAPTION_COUNTS[a.count], `${clip.caption}: ${k0} foreground pixels`);
    const d = CAPTION_DIRECTIONS[a.direction];
    assert.ok((x1 - x0) * d.dx + (y1 - y0) * d.dy > 4, `${clip.caption}: centroid moved (${(x1 - x0).toFixed(1)}, ${(y1 - y0).toFixed(1)})`);
    assert.ok(Math.abs((x1 - x0) * d.dy) + Math.abs((y1 - y0) * d.dx) < 1, `${clip.caption}: no sideways motion`);
  }
  assert.equal(CAPTION_SHAPES.length * CAPTION_COLOURS.length * CAPTION_DIRECTIONS.length * CAPTION_COUNTS.length, 96);
});

test('prompt-following classifier: trains without leaking tensors, predicts attributes, score per attribute', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const c = CaptionClassifier.fromProxy(1);
  c.train({ steps: 2, batch: 4, lr: 1e-3, seed: 1, dataSeed: 3, frames: 4, size: 32 });
  const clips = captionedClips(4, [0, 1, 2], 4, 32);
  const pred = c.predict(clips.videos, 4, 32, 32);
  assert.equal(pred.length, 3);
  const s = promptFollowing(clips.attributes, clips.attributes);
  assert.deepEqual(s.accuracy, { colour: 1, shape: 1, direction: 1, count: 1 });
  const wrong = clips.attributes.map((a) => ({ ...a, colour: (a.colour + 1) % 4 }));
  const s2 = promptFollowing(wrong, clips.attributes);
  assert.equal(s2.accuracy.colour, 0);
  assert.equal(s2.accuracy.shape, 1);
  assert.equal(s2.all, 0);
  // The colour probe reads the caption colour of real clips; a grey clip has none.
  for (let i = 0; i < 3; i++) assert.equal(dominantColour(clips.videos[i]), clips.attributes[i].colour);
  assert.equal(dominantColour(new Uint8Array(4 * 4 * 3).fill(100)), -1);
  const dir = tempDir();
  try {
    c.save(path.join(dir, 'c.safetensors'));
    const c2 = CaptionClassifier.load(path.join(dir, 'c.safetensors'));
    assert.deepEqual(c2.predict(clips.videos, 4, 32, 32), pred);
    c2.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  c.dispose();
  assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
});

test('text-to-video end to end: train-lvdm with captions (resume), sample --prompt/--prompts --cfg --negative-prompt', async () => {
  await initBackend({ quiet: true });
  const dir = tempDir('lvdm-t2v-');
  try {
    const base = {
      name: 't2v-test',
      seed: 2,
      data: { source: 'synthetic-captioned', frames: 2, size: 8, num_videos: 6, held_out: 2, video_length: 2 },
      autoencoder: {
        model: { channels: [8], temporal_factor: 1, spatial_factor: 2, latent_channels: 2, norm_groups: 4, enc_res_blocks: 1, dec_res_blocks: 1, frame_wise: true },
        train: { steps: 1, batch_size: 1 },
      },
    };
    const store = new ParamStore(new Rng(1));
    const aeCfg = ExperimentConfig.parse(base);
    new VideoAutoencoder(store, aeCfg.autoencoder!.model);
    const aeFile = path.join(dir, 'autoencoder.safetensors');
    saveAutoencoderWeights(aeFile, store, aeCfg, { shift: 0, scale: 1, mean: 0, std: 1, count: 4 }, 1);
    store.dispose();
    const cfg = {
      ...base,
      unet: { in_channels: 2, out_channels: 2, model_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [2], head_channels: 8, temporal_length: 2, norm_groups: 4, context_dim: 8, ff_mult: 2 },
      text: { words: captionWords(), width: 8, layers: 1, heads: 2, context_length: 8, p_uncond: 0.5 },
      diffusion: { train: { steps: 2, batch_size: 2, ckpt_every: 1, log_every: 1, ema_decay: 0.9 }, sampling: { steps: 2, batch_size: 2 } },
    };
    const yaml = path.join(dir, 'cfg.yaml');
    fs.writeFileSync(yaml, JSON.stringify(cfg));
    const out = path.join(dir, 'run');
    const common = { config: yaml, ae: aeFile, out, quiet: true, 'cache-dir': path.join(dir, 'cache') };
    assert.equal(await trainLvdm.run({ ...common, preview: '2' }, []), 0);
    assert.ok(fs.existsSync(path.join(out, 'preview', 'grid.png')));
    // Resume reads the captions back from the latent cache file.
    assert.equal(await trainLvdm.run({ ...common, preview: '0', resume: true, set: ['diffusion.train.steps=3'] }, []), 0);
    const ckpt = path.join(out, 'lvdm.safetensors');
    const s1 = path.join(dir, 's1');
    assert.equal(await sampleCmd.run({ ckpt, out: s1, prompt: 'two red squares move left', n: '2', cfg: '7.5', 'negative-prompt': 'a blue circle moves up', steps: '2', npz: true, quiet: true }, []), 0);
    const meta = JSON.parse(fs.readFileSync(path.join(s1, 'samples.json'), 'utf8')) as { prompts: string[]; cfg: number; negative_prompt: string };
    assert.deepEqual(meta.prompts, ['two red squares move left', 'two red squares move left']);
    assert.equal(meta.cfg, 7.5);
    assert.equal(meta.negative_prompt, 'a blue circle moves up');
    assert.deepEqual(readNpz(path.join(s1, 'samples.npz')).get('videos')!.shape, [2, 2, 8, 8, 3]);
    // s = 0 is the unconditional branch alone: the same videos as the empty prompt without guidance.
    const u0 = path.join(dir, 'u0');
    const u1 = path.join(dir, 'u1');
    assert.equal(await sampleCmd.run({ ckpt, out: u0, prompt: 'two red squares move left', cfg: '0', steps: '2', npz: true, quiet: true }, []), 0);
    assert.equal(await sampleCmd.run({ ckpt, out: u1, prompt: '', steps: '2', npz: true, quiet: true }, []), 0);
    assert.deepEqual(readNpz(path.join(u0, 'samples.npz')).get('videos')!.data, readNpz(path.join(u1, 'samples.npz')).get('videos')!.data);
    const promptsFile = path.join(dir, 'prompts.txt');
    fs.writeFileSync(promptsFile, 'a red circle moves left\n\n  two green triangles move up  \n');
    const s2 = path.join(dir, 's2');
    assert.equal(await sampleCmd.run({ ckpt, out: s2, prompts: promptsFile, steps: '2', quiet: true }, []), 0);
    const meta2 = JSON.parse(fs.readFileSync(path.join(s2, 'samples.json'), 'utf8')) as { prompts: string[]; n: number; cfg: number };
    assert.deepEqual(meta2.prompts, ['a red circle moves left', 'two green triangles move up']);
    assert.equal(meta2.cfg, 1);
    await assert.rejects(sampleCmd.run({ ckpt, out: path.join(dir, 's3'), steps: '2', quiet: true }, []), /text-to-video model needs prompts/);
    await assert.rejects(sampleCmd.run({ ckpt, out: path.join(dir, 's3'), prompt: 'x', prompts: promptsFile, quiet: true }, []), /--prompt and --prompts: give one of them/);
    await assert.rejects(sampleCmd.run({ ckpt, out: path.join(dir, 's3'), prompt: 'x', cfg: '-1', quiet: true }, []), /--cfg: expected a guidance scale >= 0/);
    // A config whose unet has no cross-attention is rejected up front.
    fs.writeFileSync(yaml, JSON.stringify({ ...cfg, unet: { ...cfg.unet, context_dim: undefined } }));
    await assert.rejects(trainLvdm.run({ ...common, out: path.join(dir, 'bad'), preview: '0' }, []), /unet\.context_dim must equal text\.width \(8\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
