/**
 * Long-video generation (issue 6): exact frame counts for many lengths in both modes, the order of
 * the generated latents (an oracle model that continues a ramp), windowed decoding with latent
 * overlap, streaming outputs (npz chunks, merged videos.npz, MP4), and the CLI end to end on a tiny
 * configuration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { ParamStore } from '../lib/nn/params';
import { AutoencoderModelConfig, LongVideoConfig } from '../lib/config/schema';
import { LVDM_SCHEDULE, NoiseSchedule } from '../lib/diffusion';
import { Cond, EpsModel, Timesteps } from '../lib/diffusion/types';
import { readNpz } from '../lib/io/npy';
import { LatentCodec, loadLvdm, unconditionalCond } from '../lib/lvdm';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { countFrames, openVideoSource } from '../metrics/videos';
import {
  LongModel,
  MemorySink,
  Mp4Sink,
  NpzChunkSink,
  StreamOptions,
  WindowSampling,
  autoregressiveLatents,
  decodeLatentStream,
  generateLong,
  hierarchicalLatents,
  longSections,
  mergeChunks,
  planAutoregressive,
  planHierarchical,
  uncondFor,
} from '../lib/hierarchical';
import { command as trainPred } from '../lib/cli/commands/train-pred';
import { command as trainInterp } from '../lib/cli/commands/train-interp';
import { command as sampleLongCmd } from '../lib/cli/commands/sample-long';
import { writeTinyAutoencoder } from './long-helpers';

const ready = initBackend({ quiet: true });
const schedule = NoiseSchedule.fromConfig(LVDM_SCHEDULE);

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lvdm-long-${tag}-`));
}

/**
 * An EpsModel whose DDIM x_0 estimate is a chosen target: eps = (x - sqrt(abar_t) x0*) / sqrt(1 - abar_t).
 * Targets continue a ramp: latent i of the dense video has value offset + i (offset 0, or a
 * per-video value derived from x_T when `offsets`). Prediction windows (spacing S)
 * continue from the last condition latent, interpolation windows interpolate linearly between
 * their first and last latents; unconditional windows start the ramp at 0.
 */
function rampOracle(spec: LongVideoConfig, offsets: boolean): EpsModel {
  return (x: tf.Tensor5D, t: Timesteps, cond?: Cond) => {
    const [b, W] = x.shape;
    const per = x.size / (b * W);
    const xv = x.dataSync();
    const mask = cond!.mask.dataSync();
    const tv = t instanceof Int32Array ? t : Int32Array.from(t.dataSync());
    const out = new Float32Array(x.size);
    const S = spec.latent_stride;
    for (let i = 0; i < b; i++) {
      const row = mask.subarray(i * W, (i + 1) * W);
      const at = (j: number): number => xv[(i * W + j) * per];
      const target = new Float64Array(W);
      const uncond = row.every((m) => m === 0);
      // Unconditional windows start each video's ramp at its own offset (from x_T; one DDIM step sees x_T).
      const offset = offsets ? 10 * Math.round(at(0) * 100) : 0;
      for (let j = 0; j < W; j++) {
        if (spec.role === 'prediction') {
          const k = spec.cond_frames;
          target[j] = uncond ? offset + S * j : j < k ? at(j) : at(k - 1) + S * (j - k + 1);
        } else {
          target[j] = uncond ? 0 : at(0) + ((at(W - 1) - at(0)) * j) / (W - 1);
        }
      }
      const ab = schedule.alphasCumprod[tv[i]];
      for (let j = 0; j < W; j++)
        for (let q = 0; q < per; q++) {
          const k = (i * W + j) * per + q;
          out[k] = (xv[k] - Math.sqrt(ab) * target[j]) / Math.sqrt(1 - ab);
        }
    }
    return tf.tensor5d(out, x.shape);
  };
}

function longModel(over: Partial<LongVideoConfig>, offsets = false): LongModel {
  const spec = LongVideoConfig.parse({ role: 'prediction', window: 4, latent_stride: 1, cond_frames: 1, p_cond: 0.5, s_max: null, ...over });
  return { eps: rampOracle(spec, offsets), schedule, spec, latent: [2, 2, 1], source: `oracle-${spec.role}` };
}

/** Decoding stand-in: latent frame i -> ft pixel frames of value z (uint8 z when 0 <= z <= 255), 2x2 pixels per latent. */
class RampCodec implements LatentCodec {
  constructor(readonly ft: number, readonly smooth = false) {}
  get factors(): readonly [number, number, number] {
    return [this.ft, 1, 1];
  }
  encode(): { mean: tf.Tensor5D; logvar: tf.Tensor5D } {
    throw new Error('not used');
  }
  latentShape(): [number, number, number, number] {
    throw new Error('not used');
  }
  decode(z: tf.Tensor5D): tf.Tensor5D {
    return tf.tidy(() => {
      const [b, t, h, w] = z.shape;
      let y = tf.slice(z, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1]); // [b, t, h, w, 1]
      if (this.smooth && t > 1) {
        // (z[i-1] + 2 z[i] + z[i+1]) / 4 with replicate padding: a decoder with a temporal receptive field of 1 latent.
        const pad = tf.concat([tf.slice(y, [0, 0, 0, 0, 0], [-1, 1, -1, -1, -1]), y, tf.slice(y, [0, t - 1, 0, 0, 0], [-1, 1, -1, -1, -1])], 1);
        y = tf.div(tf.add(tf.add(tf.slice(pad, [0, 0, 0, 0, 0], [-1, t, -1, -1, -1]), tf.mul(tf.slice(pad, [0, 1, 0, 0, 0], [-1, t, -1, -1, -1]), 2)), tf.slice(pad, [0, 2, 0, 0, 0], [-1, t, -1, -1, -1])), 4);
      }
      const rep = tf.reshape(tf.tile(tf.reshape(y, [b, t, 1, h, w, 1]), [1, 1, this.ft, 1, 1, 3]), [b, t * this.ft, h, w, 3]);
      return tf.sub(tf.mul(rep, 2 / 255), 1) as tf.Tensor5D;
    });
  }
}

const FAST: WindowSampling = { sampler: 'ddim', steps: 1, eta: 0, s: null, w: 0 };

function streamOpts(frames: number, ft: number, n = 2, sampling = FAST): StreamOptions {
  return { frames, ft, n, seed: 3, sampling, maxBatch: 64 };
}

async function collect(latents: AsyncGenerator<tf.Tensor5D>): Promise<{ values: number[][]; count: number }> {
  const values: number[][] = [];
  let count = 0;
  for await (const c of latents) {
    const [n, k, h, w, ch] = c.shape;
    const d = c.dataSync();
    for (let v = 0; v < n; v++) {
      values[v] = values[v] ?? [];
      for (let j = 0; j < k; j++) values[v].push(d[(v * k + j) * h * w * ch]);
    }
    count += k;
    c.dispose();
  }
  return { values, count };
}

test('plans: the paper numbers and exact latent counts', () => {
  // 1024 frames, ft 4, keyframes 4 latents apart, prediction window 4 with 1 condition.
  const h = planHierarchical(1024, 4, 4, 4, 1);
  assert.equal(h.latents, 256);
  assert.equal(h.keyframes, 65); // 16 (N - 1) + 4 = 1028 >= 1024
  assert.equal(h.pairs, 64); // every pair is interpolated
  assert.equal(h.denseLatents, 257);
  assert.equal(h.predCalls, 22);
  assert.equal(h.producedKeyframes, 4 + 21 * 3);
  const a = planAutoregressive(1024, 4, 5, 1);
  assert.equal(a.calls, 64);
  assert.equal(a.produced, 5 + 63 * 4);
  assert.deepEqual(planHierarchical(4, 4, 4, 4, 1).keyframes, 1);
  assert.deepEqual(planAutoregressive(3, 4, 5, 1).calls, 1);
  assert.throws(() => planAutoregressive(0, 4, 5, 1), /frames must be a positive integer/);
  assert.throws(() => planAutoregressive(10, 4, 5, 5), /cond frames must be in \[1, 4\]/);
});

test('latent streams: dense latents come out in order (ramp 0..L-1) in both modes', async () => {
  await ready;
  const before = tf.memory().numTensors;
  const cases: [number, number][] = [
    [1, 4],
    [17, 4],
    [130, 4],
    [61, 2],
  ];
  for (const [frames, ft] of cases) {
    const L = Math.ceil(frames / ft);
    const pred = longModel({ window: 4, latent_stride: 4, cond_frames: 1 }, true);
    const interp = longModel({ role: 'interpolation', window: 5 }, true);
    const hs = hierarchicalLatents(pred, interp, streamOpts(frames, ft, 3));
    const hv = await collect(hs.latents);
    const ar = autoregressiveLatents(longModel({ window: 5, cond_frames: 2 }, true), streamOpts(frames, ft, 3));
    const av = await collect(ar.latents);
    for (const [name, r] of [['hierarchical', hv], ['autoregressive', av]] as const) {
      assert.equal(r.count, L, `${name} ${frames} frames`);
      // Each video continues its own ramp (videos have distinct offsets, so mixing them up would show).
      for (const vals of r.values) vals.forEach((v, i) => assert.ok(Math.abs(v - vals[0] - i) < 0.05, `${name} ${frames}: latent ${i} = ${v} (start ${vals[0]})`));
      assert.equal(new Set(r.values.map((vals) => Math.round(vals[0]))).size, r.values.length, `${name} ${frames}: videos start at distinct offsets ${r.values.map((vals) => vals[0])}`);
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

test('exact frame counts for many requested lengths, both modes, with and without perturbation/guidance', async () => {
  await ready;
  const before = tf.memory().numTensors;
  const perturbed: WindowSampling = { sampler: 'ddim', steps: 1, eta: 0, s: 100, w: 0.5 };
  const configs = [
    { ft: 4, pred: { window: 4, latent_stride: 4, cond_frames: 1 }, interp: { window: 5 }, ar: { window: 5, cond_frames: 1 }, max: 2049, sampling: FAST, sMax: null },
    { ft: 2, pred: { window: 5, latent_stride: 3, cond_frames: 2 }, interp: { window: 4 }, ar: { window: 4, cond_frames: 3 }, max: 1025, sampling: perturbed, sMax: 250 },
  ];
  const lengths = [1, 2, 3, 4, 5, 7, 16, 17, 63, 64, 65, 100, 255, 256, 257, 511, 512, 513, 1000, 1024, 1025, 2048, 2049];
  for (const c of configs) {
    const pred = longModel({ ...c.pred, s_max: c.sMax });
    const interp = longModel({ role: 'interpolation', ...c.interp, s_max: c.sMax });
    const ar = longModel({ ...c.ar, s_max: c.sMax });
    for (const frames of lengths.filter((f) => f <= c.max)) {
      for (const mode of ['hierarchical', 'autoregressive'] as const) {
        const sink = new MemorySink();
        const r = await generateLong({
          ...streamOpts(frames, c.ft, 1, c.sampling),
          mode,
          pred: mode === 'hierarchical' ? pred : ar,
          interp,
          codec: new RampCodec(c.ft),
          norm: { shift: 0, scale: 1 },
          decodeWindowLatents: 7,
          decodeOverlapLatents: 2,
          sinks: [sink],
        });
        assert.equal(sink.frames, frames, `${mode}, ft ${c.ft}: ${frames} requested, ${sink.frames} written`);
        assert.equal(r.frames, frames);
      }
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

test('decoded frames follow the latents in order through overlapping decode windows', async () => {
  await ready;
  const frames = 150; // ft 2 -> 75 latents
  const sink = new MemorySink(true);
  await generateLong({
    ...streamOpts(frames, 2, 1),
    mode: 'hierarchical',
    pred: longModel({ window: 4, latent_stride: 4 }),
    interp: longModel({ role: 'interpolation', window: 5 }),
    codec: new RampCodec(2),
    norm: { shift: 0, scale: 1 },
    decodeWindowLatents: 4,
    decodeOverlapLatents: 1,
    sinks: [sink],
  });
  const all = Buffer.concat(sink.kept);
  const fsz = 2 * 2 * 3;
  assert.equal(all.length, frames * fsz);
  for (let f = 0; f < frames; f++) assert.equal(all[f * fsz], Math.floor(f / 2), `frame ${f}`);
});

/** Decodes 'latents' [1, L, ...] in one go and through the streaming decoder. */
async function windowedVsWhole(codec: LatentCodec, z: tf.Tensor5D, window: number, overlap: number): Promise<number> {
  const [ft] = codec.factors;
  const frames = z.shape[1] * ft;
  async function* chunks(): AsyncGenerator<tf.Tensor5D> {
    for (let i = 0; i < z.shape[1]; i += 3) yield tf.slice(z, [0, i, 0, 0, 0], [-1, Math.min(3, z.shape[1] - i), -1, -1, -1]);
  }
  const parts: Uint8Array[] = [];
  const whole = tf.tidy(() => tf.clipByValue(codec.decode(z), -1, 1).dataSync());
  for await (const b of decodeLatentStream(chunks(), codec, { frames, windowLatents: window, overlapLatents: overlap, norm: { shift: 0, scale: 1 } })) parts.push(b.data);
  const got = Buffer.concat(parts);
  let err = 0;
  for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - Math.round(((whole[i] + 1) * 255) / 2)));
  return err;
}

test('windowed decode: overlap counted in latent frames hides seams (exact with enough context)', async () => {
  await ready;
  // A decoder with a 1-latent temporal receptive field: overlap >= 1 equals the whole decode.
  const z = tf.tensor5d(Float32Array.from({ length: 13 * 4 }, (_, i) => (Math.floor(i / 4) * 37) % 200), [1, 13, 2, 2, 1]);
  const smooth = new RampCodec(3, true);
  assert.equal(await windowedVsWhole(smooth, z, 4, 1), 0);
  assert.equal(await windowedVsWhole(smooth, z, 5, 3), 0);
  assert.ok((await windowedVsWhole(smooth, z, 4, 0)) > 5, 'no overlap: seams at window borders');
  // The real autoencoder (random weights): overlap reduces the windowed-decode error.
  const store = new ParamStore(new Rng(1));
  const ae = new VideoAutoencoder(store, AutoencoderModelConfig.parse({ channels: [8, 8], temporal_factor: 2, spatial_factor: 4, latent_channels: 2, enc_res_blocks: 1, dec_res_blocks: 1, norm_groups: 4 }));
  const zl = tf.tensor5d(new Rng(2).normalArray(16 * 2 * 2 * 2), [1, 16, 2, 2, 2]);
  const e0 = await windowedVsWhole(ae, zl, 4, 0);
  const e3 = await windowedVsWhole(ae, zl, 4, 3);
  assert.ok(e3 < e0, `overlap 3 latents: max error ${e3} vs ${e0} without overlap`);
  tf.dispose([z, zl]);
  store.dispose();
});

test('streaming outputs: npz chunks, merged videos.npz and MP4 hold exactly the generated frames', async () => {
  await ready;
  const dir = tmpDir('sinks');
  const frames = 37;
  const mem = new MemorySink(true);
  const chunks = new NpzChunkSink(dir, 10);
  const mp4 = new Mp4Sink(dir, 2, { fps: 8, scale: 2 });
  await generateLong({
    ...streamOpts(frames, 2, 2),
    mode: 'autoregressive',
    pred: longModel({ window: 4 }),
    codec: new RampCodec(2),
    norm: { shift: 0, scale: 1 },
    decodeWindowLatents: 3,
    decodeOverlapLatents: 1,
    sinks: [mem, chunks, mp4],
  });
  assert.deepEqual(
    chunks.written.map((c) => [path.basename(c.file), c.start, c.count]),
    [
      ['frames_000000-000009.npz', 0, 10],
      ['frames_000010-000019.npz', 10, 10],
      ['frames_000020-000029.npz', 20, 10],
      ['frames_000030-000036.npz', 30, 7],
    ],
  );
  // Reference layout: per video, all frames in order.
  const fsz = 2 * 2 * 3;
  const blocks = mem.kept;
  const perVideo = [0, 1].map((v) => {
    const out = new Uint8Array(frames * fsz);
    let o = 0;
    for (const b of blocks) {
      const cnt = b.length / (2 * fsz);
      out.set(b.subarray(v * cnt * fsz, (v + 1) * cnt * fsz), o);
      o += cnt * fsz;
    }
    return out;
  });
  for (const c of chunks.written) {
    const a = readNpz(c.file).get('videos')!;
    assert.deepEqual(a.shape, [2, c.count, 2, 2, 3]);
    for (let v = 0; v < 2; v++) assert.deepEqual(a.data.subarray(v * c.count * fsz, (v + 1) * c.count * fsz), perVideo[v].subarray(c.start * fsz, (c.start + c.count) * fsz));
  }
  const merged = path.join(dir, 'videos.npz');
  assert.equal(await mergeChunks(chunks.written.map((c) => c.file), merged), frames);
  const m = readNpz(merged).get('videos')!;
  assert.deepEqual(m.shape, [2, frames, 2, 2, 3]);
  assert.deepEqual(m.data.subarray(0, frames * fsz), perVideo[0]);
  assert.deepEqual(m.data.subarray(frames * fsz), perVideo[1]);
  const src = openVideoSource(merged);
  assert.equal(await src.frameCount(1), frames);
  src.close();
  for (const v of [0, 1]) assert.equal(await countFrames(path.join(dir, `video_00${v}.mp4`)), frames);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('CLI: train-pred / train-interp / sample-long end to end on a tiny configuration', async () => {
  await ready;
  const dir = tmpDir('cli');
  const { file: aeFile, data } = writeTinyAutoencoder(dir);
  const unet = { in_channels: 2, out_channels: 2, model_channels: 8, channel_mult: [1], num_res_blocks: 1, attention_resolutions: [1], head_channels: 8, temporal_length: 4, norm_groups: 4, mask_channel: true, s_embed: 'table', s_levels: 252 };
  const diffusion = { autoencoder: aeFile, loss: 'l1', optim: { kind: 'adamw', lr: 1e-3 }, train: { steps: 2, batch_size: 2, ema_decay: 0.9, log_every: 1 } };
  const write = (name: string, long: Record<string, unknown>): string => {
    const f = path.join(dir, `${name}.json`);
    fs.writeFileSync(f, JSON.stringify({ name, seed: 1, data, unet, diffusion, long }));
    return f;
  };
  const cache = path.join(dir, 'cache');
  const quiet = { quiet: true, 'cache-dir': cache };
  const sparse = write('pred', { role: 'prediction', window: 3, latent_stride: 2, cond_frames: 1, p_cond: 0.5, s_max: 250 });
  const dense = write('ar', { role: 'prediction', window: 3, latent_stride: 1, cond_frames: 1, p_cond: 0.5, s_max: 250 });
  const interp = write('interp', { role: 'interpolation', window: 3, p_cond: 0.9, s_max: 250 });
  assert.equal(await trainPred.run({ config: sparse, out: path.join(dir, 'pred'), ...quiet }, []), 0);
  assert.equal(await trainPred.run({ config: dense, out: path.join(dir, 'ar'), ...quiet }, []), 0);
  assert.equal(await trainInterp.run({ config: interp, out: path.join(dir, 'interp'), ...quiet }, []), 0);
  await assert.rejects(trainInterp.run({ config: sparse, out: path.join(dir, 'x'), ...quiet }, []), /long.role is 'prediction' but this command trains the interpolation model/);
  const w = (m: string): string => path.join(dir, m, 'lvdm.safetensors');
  // Short unconditional sampling (`lvdm sample`) of a trained long-video model uses the training's unconditional case.
  const loaded = loadLvdm(w('pred'));
  const uc = unconditionalCond(loaded, 2, 3)!;
  const mine = uncondFor(longSections(loaded.config).long, 2, 3);
  assert.deepEqual(Array.from(uc.mask.dataSync()), Array.from(mine.mask.dataSync()));
  assert.deepEqual(Array.from(uc.s.dataSync()), Array.from(mine.s.dataSync()));
  tf.dispose([...Object.values(uc), ...Object.values(mine)]);
  loaded.dispose();
  const common = { n: '2', steps: '2', seed: '5', 'chunk-frames': '16', quiet: true };
  const hOut = path.join(dir, 'h');
  assert.equal(await sampleLongCmd.run({ pred: w('pred'), interp: w('interp'), mode: 'hierarchical', frames: '37', s: '50', w: '0.3', out: hOut, ...common }, []), 0);
  const summary = JSON.parse(fs.readFileSync(path.join(hOut, 'long.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(summary.frames, 37);
  assert.equal(summary.s, 50);
  assert.equal(summary.w, 0.3);
  const vids = readNpz(path.join(hOut, 'videos.npz')).get('videos')!;
  assert.deepEqual(vids.shape, [2, 37, 8, 8, 3]);
  assert.equal(await countFrames(path.join(hOut, 'video_001.mp4')), 37);
  assert.deepEqual(fs.readdirSync(path.join(hOut, 'chunks')), ['frames_000000-000015.npz', 'frames_000016-000031.npz', 'frames_000032-000036.npz']);
  const aOut = path.join(dir, 'a');
  assert.equal(await sampleLongCmd.run({ pred: w('ar'), mode: 'autoregressive', frames: '21', out: aOut, 'no-mp4': true, ...common }, []), 0);
  assert.deepEqual(readNpz(path.join(aOut, 'videos.npz')).get('videos')!.shape, [2, 21, 8, 8, 3]);
  assert.equal(fs.readdirSync(aOut).filter((f) => f.endsWith('.mp4')).length, 0);
  // Wrong model for the mode, and mismatched hierarchy, are errors naming the file and the key.
  await assert.rejects(sampleLongCmd.run({ pred: w('pred'), mode: 'autoregressive', frames: '8', out: path.join(dir, 'e1'), ...common }, []), /latent_stride 1/);
  await assert.rejects(sampleLongCmd.run({ pred: w('ar'), interp: w('interp'), mode: 'hierarchical', frames: '8', out: path.join(dir, 'e2'), ...common }, []), /interpolation window \(3 latents\) must be the keyframe spacing \+ 1 = 2/);
  await assert.rejects(sampleLongCmd.run({ pred: w('pred'), interp: w('interp'), frames: '8', s: '300', out: path.join(dir, 'e3'), ...common }, []), /s must be an integer in \[0, 250\]/);
  await assert.rejects(sampleLongCmd.run({ pred: w('pred'), interp: w('interp'), frames: '8', out: hOut, ...common }, []), /not empty/);
  fs.rmSync(dir, { recursive: true, force: true });
});
