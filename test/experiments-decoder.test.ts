/**
 * The runner's 'decoder' stage end to end on a tiny experiment (lib/autoencoder/noise-finetune.ts
 * through `lvdm run`): its autoencoder file keeps the encoder and the latent statistics
 * byte for byte and changes the decoder; its eval.json has the held-out decoded PSNR per latent
 * noise level before and after; the sweep's samples and floors read it (sweep.decoder).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { planExperiment, readDone } from '../lib/experiments/plan';
import { collectResults, reportInputFor } from '../lib/experiments/execute';
import { isDecoderParam, EVAL_SIGMAS, type DecoderEval } from '../lib/autoencoder/noise-finetune';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { runLvdm, tempDir } from './helpers';

const TINY = `name: tiny-decoder
seed: 0
data: { source: synthetic-shapes, frames: 8, size: 16 }
stages:
  ae:
    kind: autoencoder
    data: { num_videos: 8, held_out: 2 }
    autoencoder:
      model: { channels: [8], temporal_factor: 2, spatial_factor: 2, latent_channels: 2, norm_groups: 4 }
      optim: { lr: 1.0e-3, warmup_steps: 0 }
      train: { steps: 3, batch_size: 1, ckpt_every: 3, log_every: 1 }
      latent_stats_clips: 2
  dec:
    kind: decoder
    autoencoder: ae
    data: { num_videos: 8, held_out: 2 }
    finetune:
      sigma_max: 0.6
      optim: { lr: 1.0e-3 }
      train: { steps: 4, batch_size: 2, ckpt_every: 2, log_every: 1 }
  lvdm:
    kind: short
    autoencoder: ae
    data: { num_videos: 4, held_out: 2 }
    unet: { in_channels: 2, out_channels: 2, model_channels: 16, channel_mult: [1], attention_resolutions: [], head_channels: 16, norm_groups: 8, temporal_length: 4 }
    diffusion:
      optim: { lr: 1.0e-3, warmup_steps: 0 }
      train: { steps: 2, batch_size: 2, ckpt_every: 2, log_every: 1 }
      latents: { windows_per_video: 1, batch_size: 2 }
sweep:
  models:
    short: { model: lvdm }
  decoder: dec
  grids:
    short: { mode: short, frames: 8, steps: 2, seed: 1 }
  n: 2
  max_batch: 2
  gifs: 0
evaluate:
  window: 8
  n_real: 4
`;

test("lvdm run with a 'decoder' stage: encoder and latent statistics kept, decoder changed, eval.json, the sweep decodes with it", async () => {
  const dir = tempDir();
  const file = path.join(dir, 'tiny.yaml');
  fs.writeFileSync(file, TINY);
  const out = path.join(dir, 'run');
  const r = await runLvdm(['run', file, '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const plan = planExperiment(file, { out });
  const dirOf = (id: string) => path.join(out, plan.tasks.find((t) => t.id === id)!.outDir);
  assert.equal(readDone(dirOf('dec'))?.kind, 'decoder');

  const ae = loadCheckpoint(path.join(dirOf('ae'), 'autoencoder.safetensors'));
  const dec = loadCheckpoint(path.join(dirOf('dec'), 'autoencoder.safetensors'));
  // Every network tensor (the training loss's logvar is not part of the network).
  const network = [...ae.tensors.keys()].filter((k) => !k.startsWith('model.loss.'));
  assert.deepEqual([...dec.tensors.keys()].sort(), network.sort());
  let decoderChanged = 0;
  for (const name of network) {
    const t = ae.tensors.get(name)!;
    const same = Buffer.from(dec.tensors.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer));
    const param = name.replace(/^model\./, '');
    if (!isDecoderParam(param)) assert.ok(same, `${name}: not a decoder tensor, but it changed`);
    else if (!same) decoderChanged++;
  }
  assert.ok(decoderChanged > 0, 'no decoder tensor changed');
  assert.deepEqual(dec.meta.state.latent, ae.meta.state.latent, 'the latent statistics are the autoencoder’s');

  const ev = JSON.parse(fs.readFileSync(path.join(dirOf('dec'), 'eval.json'), 'utf8')) as DecoderEval;
  assert.equal(ev.steps, 4);
  assert.deepEqual(ev.held_out.sigmas, EVAL_SIGMAS);
  assert.equal(ev.held_out.clips, 2);
  for (const v of [...ev.held_out.psnr, ...ev.held_out.psnr_before]) assert.ok(Number.isFinite(v) && v > 0, `PSNR ${v}`);
  assert.equal(fs.readFileSync(path.join(dirOf('dec'), 'metrics.jsonl'), 'utf8').trim().split('\n').length, 4);

  // The sweep's sample and floor tasks read the fine-tuned decoder, and finished.
  for (const t of plan.tasks.filter((x) => x.kind === 'sample' || x.kind === 'real')) assert.deepEqual((t.config.inputs as Record<string, string>).autoencoder, 'dec', t.id);
  const rows = collectResults(plan);
  assert.equal(rows.length, 1);
  assert.ok(Number.isFinite(rows[0].fvd), `FVD_proxy ${rows[0].fvd}`);
  // The report's loss curves: the decoder stage's mean L1 gets its own panel, not the autoencoder NLL's axis.
  assert.deepEqual(
    reportInputFor(plan).curves!.map((c) => [c.stage, c.group]),
    [
      ['ae', 'autoencoder'],
      ['dec', 'decoder'],
      ['lvdm', 'diffusion'],
    ],
  );
  fs.rmSync(dir, { recursive: true, force: true });
});
