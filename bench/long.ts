/**
 * Long-video generation memory and speed (issue 6): peak RSS stays flat as the generated length
 * grows from 256 to 2048 frames, and seconds per generated frame.
 *
 * Each length runs in a fresh child process (peak RSS is per process): a tiny hierarchical setup
 * (random-weight prediction + interpolation UNets at latent 4x4x4, a random-weight autoencoder
 * ft 4 / fs 8 at 32x32), DDIM 2 steps, perturbation s = 100 and guidance w = 0.1, streaming into
 * .npz chunks of 64 frames (then merged into videos.npz) and MP4 (ffmpeg runs in its own process).
 * One more run at 1,024 frames keeps the latent journal (lib/hierarchical/journal.ts, what makes a
 * killed run resumable): its cost per frame against the run without it, and its size on disk.
 * Run alone: node --import tsx bench/long.ts [--quick]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BenchModule, BenchResult } from './types';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { ParamStore } from '../lib/nn/params';
import { AutoencoderModelConfig, LongVideoConfig, UNetConfig } from '../lib/config/schema';
import { LVDM_SCHEDULE, NoiseSchedule } from '../lib/diffusion';
import { UNet3D } from '../lib/models/unet3d';
import { VideoAutoencoder } from '../lib/autoencoder/model';
import { LatentJournal, LongModel, Mp4Sink, NpzChunkSink, generateLong, mergeChunks } from '../lib/hierarchical';

const N_VIDEOS = 2;

function tinyModel(spec: LongVideoConfig, seed: number): { model: LongModel; store: ParamStore } {
  const cfg = UNetConfig.parse({
    in_channels: 4,
    out_channels: 4,
    model_channels: 16,
    channel_mult: [1, 2],
    num_res_blocks: 1,
    attention_resolutions: [2],
    head_channels: 16,
    temporal_length: 5,
    norm_groups: 8,
    mask_channel: true,
    s_embed: 'table',
    s_levels: 252,
  });
  const store = new ParamStore(new Rng(seed));
  const net = new UNet3D(store, cfg);
  const rng = new Rng(seed + 1);
  for (const [name, v] of store.entries()) if (/proj_out|out_layers\.3|^out\.2/.test(name)) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size, 0, 0.02), v.shape)));
  const schedule = NoiseSchedule.fromConfig(LVDM_SCHEDULE);
  return { model: { eps: net.asEpsModel(), schedule, spec, latent: [4, 4, 4], source: `bench-${spec.role}` }, store };
}

/** One measurement, in this process: returns what the parent prints. */
async function child(frames: number, withJournal: boolean): Promise<Record<string, number>> {
  await initBackend({ quiet: true });
  const pred = tinyModel(LongVideoConfig.parse({ role: 'prediction', window: 4, latent_stride: 4, cond_frames: 1, p_cond: 0.5, s_max: 250 }), 1);
  const interp = tinyModel(LongVideoConfig.parse({ role: 'interpolation', window: 5, p_cond: 0.9, s_max: 250 }), 2);
  const aeStore = new ParamStore(new Rng(3));
  const ae = new VideoAutoencoder(aeStore, AutoencoderModelConfig.parse({ channels: [8, 16, 32], temporal_factor: 4, spatial_factor: 8, latent_channels: 4, enc_res_blocks: 1, dec_res_blocks: 1, norm_groups: 8 }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-bench-long-'));
  const rssBefore = process.resourceUsage().maxRSS / 1024;
  const chunks = new NpzChunkSink(dir, 64);
  const journal = withJournal ? new LatentJournal(path.join(dir, 'journal'), { bench: frames }) : undefined;
  try {
    const r = await generateLong({
      mode: 'hierarchical',
      pred: pred.model,
      interp: interp.model,
      codec: ae,
      norm: { shift: 0, scale: 1 },
      frames,
      ft: 4,
      n: N_VIDEOS,
      seed: 0,
      sampling: { sampler: 'ddim', steps: 2, eta: 0, s: 100, w: 0.1 },
      maxBatch: 16,
      decodeWindowLatents: 4,
      decodeOverlapLatents: 1,
      sinks: [chunks, new Mp4Sink(dir, N_VIDEOS, { fps: 8, scale: 1, crf: 30 })],
      journal,
    });
    const journalDir = path.join(dir, 'journal');
    const journalMb = withJournal ? fs.readdirSync(journalDir).reduce((a, f) => a + fs.statSync(path.join(journalDir, f)).size, 0) / 1e6 : 0;
    const m0 = Date.now();
    await mergeChunks(chunks.written.map((c) => c.file), path.join(dir, 'videos.npz'));
    const mergeSeconds = (Date.now() - m0) / 1000;
    // Collect garbage first (the child runs with --expose-gc) so the heap figure is what is retained.
    (globalThis as { gc?: () => void }).gc?.();
    return {
      frames: r.frames,
      seconds: r.seconds,
      decode_seconds: r.decodeSeconds,
      merge_seconds: mergeSeconds,
      s_per_frame: r.secondsPerFrame,
      journal_mb: journalMb,
      rss_before_mb: rssBefore,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
      // Live tensors / bytes and JS heap after the run: equal across lengths when nothing accumulates.
      tensors_after: tf.memory().numTensors,
      tf_mb_after: tf.memory().numBytes / 1e6,
      heap_mb_after_gc: process.memoryUsage().heapUsed / 1e6,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    pred.store.dispose();
    interp.store.dispose();
    aeStore.dispose();
  }
}

export const run: BenchModule = async (opts) => {
  const lengths = opts.quick ? [256, 1024] : [256, 512, 1024, 2048];
  const results: BenchResult[] = [];
  const runs: [number, boolean][] = [...lengths.map((f): [number, boolean] => [f, false]), [1024, true]];
  for (const [frames, withJournal] of runs) {
    const args = ['--expose-gc', '--import', 'tsx', __filename, '--child', String(frames), ...(withJournal ? ['--journal'] : [])];
    const p = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (p.status !== 0) throw new Error(`bench/long child (${frames} frames) failed: ${p.stderr.slice(-2000)}`);
    const line = p.stdout.trim().split('\n').pop() ?? '';
    const m = JSON.parse(line) as Record<string, number>;
    const plain = results.find((r) => r.name === `long-hierarchical-${frames}f`);
    results.push({
      name: `long-hierarchical-${frames}f${withJournal ? '-journal' : ''}`,
      timings_ms: { generate_ms: m.seconds * 1000, decode_ms: m.decode_seconds * 1000, merge_npz_ms: m.merge_seconds * 1000 },
      extra: {
        frames: m.frames,
        videos: N_VIDEOS,
        s_per_frame: m.s_per_frame,
        peak_rss_mb: m.peak_rss_mb,
        rss_after_setup_mb: m.rss_before_mb,
        tensors_after: m.tensors_after,
        tf_mb_after: m.tf_mb_after,
        heap_mb_after_gc: m.heap_mb_after_gc,
        ...(withJournal ? { journal_mb: m.journal_mb, journal_cost_pct: plain ? (100 * (m.s_per_frame - Number(plain.extra!.s_per_frame))) / Number(plain.extra!.s_per_frame) : NaN } : {}),
      },
    });
  }
  const peaks = results.filter((r) => !r.name.endsWith('-journal')).map((r) => Number(r.extra!.peak_rss_mb));
  results[results.length - 1].note =
    `peak RSS ${Math.min(...peaks).toFixed(0)}-${Math.max(...peaks).toFixed(0)} MB over ${lengths[0]}-${lengths[lengths.length - 1]} frames ` +
    `(tiny random-weight UNets 16ch at latent 4x4x4, AE ft4/fs8 at 32x32, DDIM 2 steps, s 100, w 0.1, ${N_VIDEOS} videos)`;
  return results;
};

if (require.main === module) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    child(Number(process.argv[i + 1]), process.argv.includes('--journal'))
      .then((r) => console.log(JSON.stringify(r)))
      .catch((e: Error) => {
        process.stderr.write(`${e.stack}\n`);
        process.exit(1);
      });
  } else {
    run({ quick: process.argv.includes('--quick') })
      .then((rs) => {
        for (const r of rs) console.log(`${r.name.padEnd(28)} ${Object.entries({ ...r.timings_ms, ...r.extra }).map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toPrecision(4)) : v}`).join(' | ')}`);
        const last = rs[rs.length - 1];
        if (last.note) console.log(`(${last.note})`);
      })
      .catch((e: Error) => {
        process.stderr.write(`${e.stack}\n`);
        process.exit(1);
      });
  }
}
