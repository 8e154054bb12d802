/**
 * A training run killed with SIGKILL and resumed ends with exactly the same parameters (and
 * optimiser/discriminator state) as an uninterrupted run of the same seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint } from '../lib/train/checkpoint';
import { runLvdm, tempDir } from './helpers';

const CONFIG = `
name: resume-test
seed: 11
data: { source: synthetic-shapes, frames: 4, size: 8, num_videos: 6, held_out: 1 }
autoencoder:
  model: { channels: [8], temporal_factor: 2, spatial_factor: 2, latent_channels: 2, norm_groups: 4, enc_res_blocks: 1, dec_res_blocks: 1 }
  loss: { pixel: l1, kl_weight: 1.0e-6, disc_weight: 0.5, disc_start: 5, disc_channels: 8, disc_layers: 1 }
  optim: { lr: 1.0e-3, betas: [0.5, 0.9], warmup_steps: 3, decay: cosine }
  train: { steps: 24, batch_size: 2, ckpt_every: 4, log_every: 2 }
  latent_stats_clips: 2
`;

function ckptStep(file: string): number | null {
  try {
    return loadCheckpoint(file).meta.step;
  } catch {
    return null;
  }
}

test('SIGKILL mid-run then --resume gives bit-identical parameters', { timeout: 300_000 }, async () => {
  const dir = tempDir();
  const cfg = path.join(dir, 'cfg.yaml');
  fs.writeFileSync(cfg, CONFIG);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');

  const full = await runLvdm(['train-ae', '--config', cfg, '--out', a, '--quiet']);
  assert.equal(full.code, 0, full.stderr);

  // Kill run b once it has written a checkpoint past the discriminator start.
  let killedAt: number | null = null;
  const killed = await runLvdm(['train-ae', '--config', cfg, '--out', b, '--quiet'], {
    onSpawn: (kill) => {
      const timer = setInterval(() => {
        const s = ckptStep(path.join(b, 'checkpoint-last.safetensors'));
        if (s !== null && s >= 8) {
          killedAt = s;
          kill();
          clearInterval(timer);
        }
      }, 5);
    },
  });
  assert.equal(killed.signal, 'SIGKILL', 'run b was killed, not finished');
  assert.ok(killedAt !== null && killedAt < 24, `killed after checkpoint step ${killedAt}`);

  // Without --resume or --force the folder is refused.
  const refused = await runLvdm(['train-ae', '--config', cfg, '--out', b, '--quiet']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /already holds a run.*--resume.*--force/);

  const resumed = await runLvdm(['train-ae', '--config', cfg, '--out', b, '--resume', '--quiet']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed .* at step \d+/);

  const ca = loadCheckpoint(path.join(a, 'checkpoint-last.safetensors'));
  const cb = loadCheckpoint(path.join(b, 'checkpoint-last.safetensors'));
  assert.equal(ca.meta.step, 24);
  assert.equal(cb.meta.step, 24);
  assert.deepEqual([...cb.tensors.keys()].sort(), [...ca.tensors.keys()].sort());
  assert.ok([...ca.tensors.keys()].some((k) => k.startsWith('disc_model.')), 'discriminator state is checkpointed');
  for (const [name, t] of ca.tensors) {
    const u = cb.tensors.get(name)!;
    assert.deepEqual(Buffer.from(u.data.buffer), Buffer.from(t.data.buffer), `tensor ${name} differs after resume`);
  }
  assert.deepEqual(cb.meta.state, ca.meta.state, 'RNG and loader state match');
  // The metrics log has each step once, with the same values.
  const rows = (f: string) =>
    fs
      .readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const r = JSON.parse(l) as Record<string, number>;
        delete r.wall_s;
        return r;
      });
  assert.deepEqual(rows(path.join(b, 'metrics.jsonl')), rows(path.join(a, 'metrics.jsonl')));
});
