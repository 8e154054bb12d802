import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, precisionUnsupported } from '../lib/backend';
import { ParamStore } from '../lib/nn/params';
import { Rng } from '../lib/nn/rng';
import { ExperimentConfig } from '../lib/config/schema';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { saveAutoencoderWeights } from '../lib/autoencoder/io';
import { readNpz } from '../lib/io/npy';
import { readJsonl } from '../lib/io/atomic';
import { command as trainLvdm } from '../lib/cli/commands/train-lvdm';
import { loadSafetensors } from '../lib/io/safetensors';
import { command as sampleCmd } from '../lib/cli/commands/sample';

test('train-lvdm then sample: end to end on a tiny autoencoder (resume, outputs, npz)', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-cli-'));
  const base = {
    name: 'lvdm-cli-test',
    seed: 3,
    data: { source: 'synthetic-shapes', frames: 4, size: 8, num_videos: 4, held_out: 1 },
    autoencoder: {
      model: { channels: [8], temporal_factor: 2, spatial_factor: 2, latent_channels: 2, norm_groups: 4, enc_res_blocks: 1, dec_res_blocks: 1 },
      train: { steps: 1, batch_size: 1 },
    },
  };
  // An (untrained) autoencoder export with latent stats, as train-ae writes it.
  const aeCfg = ExperimentConfig.parse(base);
  const store = new ParamStore(new Rng(1));
  new VideoAutoencoder(store, aeCfg.autoencoder!.model);
  const aeFile = path.join(dir, 'autoencoder.safetensors');
  saveAutoencoderWeights(aeFile, store, aeCfg, { shift: 0.1, scale: 2, mean: -0.1, std: 0.5, count: 10 }, 1);
  store.dispose();

  const yaml = path.join(dir, 'cfg.yaml');
  const cfg = {
    ...base,
    unet: { in_channels: 2, out_channels: 2, model_channels: 8, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [2], head_channels: 8, temporal_length: 2, norm_groups: 4 },
    diffusion: { train: { steps: 3, batch_size: 2, ckpt_every: 2, log_every: 1, ema_decay: 0.9, snapshots: true }, sampling: { steps: 3, batch_size: 2 } },
  };
  fs.writeFileSync(yaml, JSON.stringify(cfg)); // JSON is valid YAML
  const out = path.join(dir, 'run');
  const cache = path.join(dir, 'cache');
  const common = { config: yaml, ae: aeFile, out, quiet: true, 'cache-dir': cache };
  assert.equal(await trainLvdm.run({ ...common, preview: '2' }, []), 0);
  for (const f of ['lvdm.safetensors', 'checkpoint-last.safetensors', 'metrics.jsonl', 'config.json', 'preview/grid.png']) assert.ok(fs.existsSync(path.join(out, f)), f);
  assert.equal(fs.readdirSync(cache).length, 1);
  assert.deepEqual(readJsonl(path.join(out, 'metrics.jsonl')).map((r) => (r as { step: number }).step), [1, 2, 3]);
  // An existing run is not overwritten; --resume continues it to a larger step count (cache reused).
  await assert.rejects(trainLvdm.run({ ...common, preview: '0' }, []), /already holds a run/);
  assert.equal(await trainLvdm.run({ ...common, preview: '0', resume: true, set: ['diffusion.train.steps=4'] }, []), 0);
  assert.deepEqual(readJsonl(path.join(out, 'metrics.jsonl')).map((r) => (r as { step: number }).step), [1, 2, 3, 4]);
  // train.snapshots: the sampling weights at every checkpoint; the last one is lvdm.safetensors's.
  assert.deepEqual(fs.readdirSync(path.join(out, 'snapshots')).sort(), ['lvdm-2.safetensors', 'lvdm-3.safetensors', 'lvdm-4.safetensors']);
  const tensorsOf = (f: string): Map<string, Float32Array> => {
    const st = loadSafetensors(path.join(out, f));
    return new Map([...st.tensors].map(([k, t]) => [k, Float32Array.from(t.data as ArrayLike<number>)]));
  };
  const finalW = tensorsOf('lvdm.safetensors');
  const last = tensorsOf('snapshots/lvdm-4.safetensors');
  const early = tensorsOf('snapshots/lvdm-2.safetensors');
  assert.deepEqual([...last.keys()].sort(), [...finalW.keys()].sort());
  for (const [k, v] of finalW) assert.deepEqual(last.get(k), v, k);
  assert.ok([...finalW].some(([k, v]) => v.some((x, i) => x !== early.get(k)![i])), 'the step-2 snapshot differs from the final weights');

  const samples = path.join(dir, 'samples');
  const args = { ckpt: path.join(out, 'lvdm.safetensors'), out: samples, n: '3', frames: '3', steps: '2', eta: '0', seed: '5', npz: true, quiet: true };
  assert.equal(await sampleCmd.run(args, []), 0);
  const npz = readNpz(path.join(samples, 'samples.npz')).get('videos');
  assert.ok(npz);
  assert.deepEqual(npz.shape, [3, 3, 8, 8, 3]);
  for (const f of ['sample_000.mp4', 'sample_002.gif', 'grid.png', 'samples.json']) assert.ok(fs.existsSync(path.join(samples, f)), f);
  // --precision bf16: the same sampling with the convolutions in bfloat16 (recorded; close to, not equal to, fp32).
  // Elsewhere (another backend, a CPU without bf16 units) it is refused with the reason.
  const samplesBf16 = path.join(dir, 'samples-bf16');
  if (precisionUnsupported('bf16') !== '') await assert.rejects(sampleCmd.run({ ...args, out: samplesBf16, precision: 'bf16' }, []), /--precision: precision 'bf16' needs/);
  else {
    assert.equal(await sampleCmd.run({ ...args, out: samplesBf16, precision: 'bf16' }, []), 0);
    const json = (d: string): { precision: string } => JSON.parse(fs.readFileSync(path.join(d, 'samples.json'), 'utf8'));
    assert.equal(json(samples).precision, 'fp32');
    assert.equal(json(samplesBf16).precision, 'bf16');
    const lo = readNpz(path.join(samplesBf16, 'samples.npz')).get('videos')!;
    let differ = 0;
    let worst = 0;
    for (let i = 0; i < npz.data.length; i++) {
      const d = Math.abs(Number(lo.data[i]) - Number(npz.data[i]));
      if (d > 0) differ++;
      worst = Math.max(worst, d);
    }
    assert.ok(differ > 0 && worst < 64, `bf16 samples: ${differ} pixels differ from fp32, by at most ${worst}`);
  }
  await assert.rejects(sampleCmd.run({ ...args, out: path.join(dir, 'x'), precision: 'fp16' }, []), /--precision: expected one of fp32\|bf16, got 'fp16'/);
  await assert.rejects(sampleCmd.run(args, []), /not empty/);
  await assert.rejects(sampleCmd.run({ ...args, force: true, eta: '2' }, []), /--eta: expected a number in \[0, 1\]/);
  await assert.rejects(sampleCmd.run({ ...args, force: true, ckpt: aeFile }, []), /expected a latent diffusion model/);
});
