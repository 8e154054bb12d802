/**
 * Window-level resume of long-video sampling (lib/hierarchical/journal.ts): a latent stream stopped
 * after some windows and continued from its journal yields exactly the latents of an uninterrupted
 * stream, sampling only the windows that were missing, in both modes, with perturbation, guidance
 * and stochastic DDIM; a journal of other settings or a torn commit is not continued; no tensor
 * leaks. Then `lvdm sample-long` killed with SIGKILL and rerun with --resume writes the videos of
 * an uninterrupted run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { LongVideoConfig } from '../lib/config/schema';
import { LVDM_SCHEDULE, NoiseSchedule } from '../lib/diffusion';
import { readNpz } from '../lib/io/npy';
import { LatentJournal, LongModel, StreamOptions, autoregressiveLatents, hierarchicalLatents } from '../lib/hierarchical';
import { JOURNAL_DIR } from '../lib/hierarchical/pipeline';
import { command as trainPred } from '../lib/cli/commands/train-pred';
import { command as sampleLongCmd } from '../lib/cli/commands/sample-long';
import { writeTinyAutoencoder } from './long-helpers';

const ROOT = path.join(__dirname, '..');
const ready = initBackend({ quiet: true });
const schedule = NoiseSchedule.fromConfig(LVDM_SCHEDULE);

/** A stand-in network whose output depends on every frame of the window (so conditions and noise reach every latent). */
const mixing = (x: tf.Tensor5D): tf.Tensor5D => tf.tidy(() => tf.add(tf.mul(tf.tanh(x), 0.6), tf.mul(tf.mean(x, 1, true), 0.3)) as tf.Tensor5D);

function model(over: Partial<LongVideoConfig>): LongModel {
  const spec = LongVideoConfig.parse({ role: 'prediction', window: 4, latent_stride: 1, cond_frames: 1, p_cond: 0.5, s_max: 250, ...over });
  return { eps: mixing, schedule, spec, latent: [2, 2, 2], source: `mixing-${spec.role}` };
}

const OPTS: StreamOptions = { frames: 61, ft: 2, n: 2, seed: 7, sampling: { sampler: 'ddim', steps: 3, eta: 1, s: 50, w: 0.3 }, maxBatch: 3 };

type Mode = 'autoregressive' | 'hierarchical';

function stream(mode: Mode, o: StreamOptions): AsyncGenerator<tf.Tensor5D> {
  if (mode === 'autoregressive') return autoregressiveLatents(model({ window: 4, cond_frames: 2 }), o).latents;
  return hierarchicalLatents(model({ window: 4, latent_stride: 3, cond_frames: 1 }), model({ role: 'interpolation', window: 4 }), o).latents;
}

/** Per video, every latent value in time order; stops (as a kill would) after `stopAfter` chunks. */
async function collect(latents: AsyncGenerator<tf.Tensor5D>, stopAfter = Infinity): Promise<number[][]> {
  const out: number[][] = [[], []];
  let chunks = 0;
  for await (const c of latents) {
    const [n, k] = c.shape;
    const d = c.dataSync();
    const per = d.length / (n * k);
    for (let v = 0; v < n; v++) out[v].push(...d.subarray(v * k * per, (v + 1) * k * per));
    c.dispose();
    if (++chunks >= stopAfter) break;
  }
  return out;
}

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lvdm-resume-${tag}-`));
}

for (const mode of ['autoregressive', 'hierarchical'] as const) {
  test(`${mode}: a stream stopped after some windows and continued from its journal equals the uninterrupted stream`, async () => {
    await ready;
    const before = tf.memory().numTensors;
    const dir = tmpDir(mode);
    const identity = { mode, test: 1 };
    let windows = 0;
    const counted: StreamOptions = { ...OPTS, onWindow: () => void windows++ };
    const full = await collect(stream(mode, counted));
    const all = windows;
    assert.ok(all >= 8, `${mode}: ${all} windows, enough to stop in the middle`);
    assert.equal(full[0].length, Math.ceil(61 / 2) * 8);
    assert.notDeepEqual(full[0], full[1], 'the two videos differ');

    // Stopped after 3 chunks: the journal holds the windows committed so far.
    windows = 0;
    const first = await collect(stream(mode, { ...counted, journal: new LatentJournal(dir, identity) }), 3);
    const sampledBefore = windows;
    assert.ok(first[0].length < full[0].length);
    assert.deepEqual(first[0], full[0].slice(0, first[0].length), 'the journaled run matches up to where it stopped');

    // Continued: replays the committed windows, samples only the rest, and ends with the same latents.
    windows = 0;
    const journal = new LatentJournal(dir, identity);
    assert.ok(journal.resumedCommits >= 2, `${journal.resumedCommits} commits to continue from`);
    const resumed = await collect(stream(mode, { ...counted, journal }));
    assert.deepEqual(resumed, full, `${mode}: the continued stream equals the uninterrupted one`);
    assert.ok(windows < all && windows >= all - sampledBefore, `${mode}: ${windows} windows sampled when continuing (${all} in all, ${sampledBefore} before the stop)`);

    // A finished journal continues to the end without sampling anything.
    windows = 0;
    assert.deepEqual(await collect(stream(mode, { ...counted, journal: new LatentJournal(dir, identity) })), full);
    assert.ok(windows <= 1, `${windows} windows sampled after a finished run`);

    // Other settings: the journal is discarded, with a message, and the run starts from window 0.
    const msgs: string[] = [];
    const other = new LatentJournal(dir, { ...identity, test: 2 }, (m) => msgs.push(m));
    assert.equal(other.resumedCommits, 0);
    assert.match(msgs.join('\n'), /written for other settings .* starting from the first window/);
    assert.deepEqual(fs.readdirSync(dir), []);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(tf.memory().numTensors, before, `${mode}: tensors leaked`);
  });
}

test('a commit torn by a kill (its window file written, state.json not) is not replayed', async () => {
  await ready;
  const before = tf.memory().numTensors;
  const dir = tmpDir('torn');
  const full = await collect(stream('autoregressive', OPTS));
  await collect(stream('autoregressive', { ...OPTS, journal: new LatentJournal(dir, 'x') }), 2);
  // A third window file with garbage latents, as if the process died before naming it in state.json.
  fs.copyFileSync(path.join(dir, 'window-0.npz'), path.join(dir, 'window-2.npz'));
  const j = new LatentJournal(dir, 'x');
  assert.equal(j.resumedCommits, 2);
  assert.deepEqual(await collect(stream('autoregressive', { ...OPTS, journal: j })), full);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(tf.memory().numTensors, before);
});

test('lvdm sample-long killed with SIGKILL, then --resume: the videos of an uninterrupted run', async () => {
  await ready;
  const dir = tmpDir('cli');
  const { file: aeFile, data } = writeTinyAutoencoder(dir);
  const unet = { in_channels: 2, out_channels: 2, model_channels: 8, channel_mult: [1], num_res_blocks: 1, attention_resolutions: [1], head_channels: 8, temporal_length: 3, norm_groups: 4, mask_channel: true, s_embed: 'table', s_levels: 252 };
  const cfg = path.join(dir, 'ar.json');
  const diffusion = { autoencoder: aeFile, loss: 'l1', optim: { kind: 'adamw', lr: 1e-3 }, train: { steps: 2, batch_size: 2, ema_decay: 0.9, log_every: 1 } };
  fs.writeFileSync(cfg, JSON.stringify({ name: 'ar', seed: 1, data, unet, diffusion, long: { role: 'prediction', window: 3, latent_stride: 1, cond_frames: 1, p_cond: 0.5, s_max: 250 } }));
  assert.equal(await trainPred.run({ config: cfg, out: path.join(dir, 'ar'), quiet: true, 'cache-dir': path.join(dir, 'cache') }, []), 0);
  const args = { pred: path.join(dir, 'ar', 'lvdm.safetensors'), mode: 'autoregressive', frames: '400', n: '2', steps: '4', eta: '1', s: '30', w: '0.2', seed: '3', 'no-mp4': true };
  const argv = (out: string): string[] => ['sample-long', ...Object.entries(args).flatMap(([k, v]) => (typeof v === 'string' ? [`--${k}`, v] : [`--${k}`])), '--out', out];

  // Uninterrupted, in this process.
  const a = path.join(dir, 'a');
  assert.equal(await sampleLongCmd.run({ ...args, out: a, quiet: true }, []), 0);
  assert.equal(fs.existsSync(path.join(a, JOURNAL_DIR)), false, 'the journal is removed when the run finishes');

  // The same command in a child process, killed once the journal holds at least 20 windows.
  const b = path.join(dir, 'b');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'lvdm.js'), ...argv(b)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const state = path.join(b, JOURNAL_DIR, 'state.json');
  const commits = (): number => {
    try {
      return (JSON.parse(fs.readFileSync(state, 'utf8')) as { commits: number }).commits;
    } catch {
      return 0;
    }
  };
  while (commits() < 20) {
    if (child.exitCode !== null) throw new Error(`sample-long ended before 20 windows were journaled:\n${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  await exited;
  assert.equal(fs.existsSync(path.join(b, 'long.json')), false, 'killed before it finished');
  await assert.rejects(sampleLongCmd.run({ ...args, out: b, quiet: true }, []), /not empty; pass --force .* or --resume to continue an interrupted run/);
  await assert.rejects(sampleLongCmd.run({ ...args, out: path.join(dir, 'c'), quiet: true, resume: true }, []), /--resume found no interrupted run to continue/);

  // Continued with --resume: the same videos, and fewer windows sampled.
  assert.equal(await sampleLongCmd.run({ ...args, out: b, quiet: true, resume: true }, []), 0);
  const summary = JSON.parse(fs.readFileSync(path.join(b, 'long.json'), 'utf8')) as { resumed_windows: number; resumed_seconds: number; plan: { calls: number } };
  assert.ok(summary.resumed_windows >= 20 && summary.resumed_windows < summary.plan.calls, `resumed after ${summary.resumed_windows} of ${summary.plan.calls} windows`);
  assert.ok(summary.resumed_seconds > 0, `the killed run's ${summary.resumed_seconds} s are recorded`);
  const va = readNpz(path.join(a, 'videos.npz')).get('videos')!;
  const vb = readNpz(path.join(b, 'videos.npz')).get('videos')!;
  assert.deepEqual(vb.shape, [2, 400, 8, 8, 3]);
  assert.ok(Buffer.from(va.data.buffer, va.data.byteOffset, va.data.byteLength).equals(Buffer.from(vb.data.buffer, vb.data.byteOffset, vb.data.byteLength)), 'the resumed videos equal the uninterrupted ones');
  fs.rmSync(dir, { recursive: true, force: true });
});
