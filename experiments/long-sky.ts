/**
 * The long-video experiment of issue 6 on synthetic sky (32x32), small enough for 2 CPU cores:
 *   1. autoencoder (experiments/long-sky-ae.yaml)
 *   2. three models on one latent cache: sparse prediction (keyframes), interpolation, and a
 *      consecutive-latent prediction model for the plain autoregressive baseline
 *   3. long videos (default 512 frames) per setting: autoregressive, hierarchical, hierarchical +
 *      perturbation + guidance (s, w per setting)
 *   4. real clips from held-out synthetic sky videos, and FVD per frame window with the
 *      project's synthetic-data feature extractor (synthetic-motion proxy: fvd_proxy).
 * Each stage skips work whose output exists, so a run can be continued (or only the metrics redone).
 *
 *   node --import tsx experiments/long-sky.ts [--out runs/long-sky] [--frames 512] [--n 12]
 *     [--steps 15] [--window 64] [--settings ar:0:0,hier:0:0,hier:100:0.1] [--stage all|ae|train|generate|metrics] [--quick]
 * Settings are mode:s:w[:seed] (mode ar or hier; seed 1 unless given).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../lib/backend';
import { loadConfig } from '../lib/config/load';
import { ExperimentConfig } from '../lib/config/schema';
import { writeJsonAtomic } from '../lib/io/atomic';
import * as tf from '@tensorflow/tfjs';
import { NpzStreamWriter, readNpz, writeNpz } from '../lib/io/npy';
import { floatToUint8 } from '../lib/io/image';
import { clipsToTensor, loadAutoencoder } from '../lib/autoencoder/io';
import { Rng } from '../lib/nn/rng';
import { trainAutoencoder, AE_WEIGHTS } from '../lib/autoencoder/pipeline';
import { LVDM_WEIGHTS } from '../lib/lvdm/weights';
import { trainLongModel } from '../lib/hierarchical/train';
import { LongMode, sampleLong } from '../lib/hierarchical/pipeline';
import { datasetFromConfig } from '../data/from-config';
import { computeMetrics } from '../metrics/evaluate';
import { loadProxyExtractor } from '../metrics/proxy/extractor';

interface Setting {
  name: string;
  mode: LongMode;
  s: number;
  w: number;
  seed: number;
}

function parseSettings(v: string): Setting[] {
  return v.split(',').map((item) => {
    const [m, s, w, seed] = item.split(':');
    const mode: LongMode = m === 'ar' ? 'autoregressive' : m === 'hier' ? 'hierarchical' : (() => { throw new Error(`--settings: mode '${m}' (expected ar or hier)`); })();
    // mode:s:w[:seed]; seed 1 unless given (other seeds measure seed-to-seed spread).
    return { name: `${m}-s${s}-w${w}${seed ? `-seed${seed}` : ''}`, mode, s: Number(s), w: Number(w), seed: seed ? Number(seed) : 1 };
  });
}

const log = (m: string): void => {
  process.stderr.write(`[long-sky ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

/** n real clips of `frames` frames from held-out videos (seeded starts), as one uint8 npz. */
async function writeRealClips(cfg: ExperimentConfig, file: string, n: number, frames: number, seed: number): Promise<void> {
  const data = { ...cfg.data, frames, held_out: n, video_length: Math.max(256, frames) };
  const ds = datasetFromConfig(data, 'heldout', cfg.seed + seed);
  const out = new NpzStreamWriter(file);
  out.beginArray('videos', 'uint8', [n, frames, ds.height, ds.width, 3]);
  const rng = new Rng(seed).fork('real-clips');
  for (let i = 0; i < n; i++) out.writeRows((await ds.get(i, rng.fork(`clip-${i}`))).video);
  out.endArray();
  out.close();
}

/** Encodes (posterior mean) and decodes every clip of `src` with the autoencoder; writes uint8 clips. */
async function writeReconstructed(aeFile: string, src: string, file: string): Promise<void> {
  const loaded = loadAutoencoder(aeFile);
  try {
    const a = readNpz(src).get('videos')!;
    const [n, t, h, w] = a.shape;
    const per = t * h * w * 3;
    const out = new Uint8Array(n * per);
    for (let i = 0; i < n; i++) {
      const x = clipsToTensor([(a.data as Uint8Array).subarray(i * per, (i + 1) * per)], t, h, w);
      const p = loaded.ae.encode(x);
      const y = loaded.ae.decode(p.mean);
      out.set(floatToUint8(y.dataSync()), i * per);
      tf.dispose([x, p.mean, p.logvar, y]);
    }
    writeNpz(file, { videos: { shape: [n, t, h, w, 3], data: out } });
  } finally {
    loaded.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'runs/long-sky' },
      frames: { type: 'string', default: '512' },
      n: { type: 'string', default: '12' },
      steps: { type: 'string', default: '15' },
      window: { type: 'string', default: '64' },
      real: { type: 'string', default: '64' },
      settings: { type: 'string', default: 'ar:0:0,hier:0:0,hier:100:0.1' },
      stage: { type: 'string', default: 'all' },
      quick: { type: 'boolean' },
    },
    strict: true,
  });
  const out = values.out!;
  const stage = values.stage!;
  const quick = Boolean(values.quick);
  const frames = Number(values.frames);
  const n = Number(values.n);
  const steps = Number(values.steps);
  const window = Number(values.window);
  const settings = parseSettings(values.settings!);
  const run = (s: string): boolean => stage === 'all' || stage === s;
  await initBackend({ quiet: true });
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const resultsFile = path.join(out, 'results.json');
  const results: Record<string, unknown> = fs.existsSync(resultsFile) ? (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as Record<string, unknown>) : {};
  const save = (): void => writeJsonAtomic(resultsFile, { ...results, timings_s: { ...(results.timings_s as Record<string, number> | undefined), ...timings } });
  fs.mkdirSync(out, { recursive: true });
  const set = quick ? ['train.steps=3', 'train.ckpt_every=3'] : [];
  const aeCfg = loadConfig('experiments/long-sky-ae.yaml', quick ? ['autoencoder.train.steps=3', 'autoencoder.train.ckpt_every=3'] : []);
  const aeDir = path.join(out, 'autoencoder');
  const aeFile = path.join(aeDir, AE_WEIGHTS);
  if (run('ae') && !fs.existsSync(aeFile)) {
    const s = Date.now();
    const r = await trainAutoencoder({ config: aeCfg, outDir: aeDir, force: true, progress: false, log });
    timings.autoencoder = (Date.now() - s) / 1000;
    results.autoencoder = { steps: r.steps, held_out: r.heldOut, latent: r.latent, train_seconds: r.trainSeconds };
    log(`autoencoder: held-out PSNR ${r.heldOut.psnr.toFixed(2)} dB in ${r.trainSeconds.toFixed(0)} s`);
    save();
  }
  const roles: [string, 'prediction' | 'interpolation'][] = [
    ['pred', 'prediction'],
    ['interp', 'interpolation'],
    ['ar', 'prediction'],
  ];
  const weights = (name: string): string => path.join(out, name, LVDM_WEIGHTS);
  if (run('train')) {
    for (const [name, role] of roles) {
      if (fs.existsSync(weights(name))) continue;
      const cfg = loadConfig(`experiments/long-sky-${name}.yaml`, [...set.map((x) => `diffusion.${x}`), `diffusion.autoencoder=${aeFile}`]);
      const s = Date.now();
      const r = await trainLongModel({ config: cfg, role, outDir: path.join(out, name), force: true, progress: false, log });
      timings[`train_${name}`] = (Date.now() - s) / 1000;
      results[`model_${name}`] = { steps: r.steps, params: r.params, last_loss: r.lastLoss, train_seconds: r.trainSeconds };
      log(`${name}: ${r.steps} steps, last loss ${r.lastLoss.toFixed(4)}, ${r.trainSeconds.toFixed(0)} s`);
      save();
    }
  }
  if (run('generate')) {
    for (const st of settings) {
      const dir = path.join(out, 'gen', st.name);
      if (fs.existsSync(path.join(dir, 'long.json'))) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      const s = Date.now();
      const summary = await sampleLong({
        pred: weights(st.mode === 'hierarchical' ? 'pred' : 'ar'),
        interp: st.mode === 'hierarchical' ? weights('interp') : undefined,
        out: dir,
        mode: st.mode,
        frames,
        n,
        seed: st.seed,
        s: st.s,
        w: st.w,
        sampler: 'ddim',
        steps: quick ? 2 : steps,
        eta: 0,
        maxBatch: 32,
        decodeWindowLatents: 4,
        decodeOverlapLatents: 1,
        chunkFrames: window,
        merge: true,
        mp4: false,
        fps: 8,
      });
      timings[`generate_${st.name}`] = (Date.now() - s) / 1000;
      results[`generate_${st.name}`] = { seconds: summary.seconds, seconds_per_frame: summary.seconds_per_frame, plan: summary.plan };
      log(`${st.name}: ${n} x ${frames} frames in ${Number(summary.seconds).toFixed(0)} s`);
      save();
    }
  }
  if (run('metrics')) {
    const cfg = loadConfig('experiments/long-sky-pred.yaml', []);
    const nReal = Number(values.real);
    const realFile = path.join(out, `real-${window}.npz`);
    const floorFile = path.join(out, `real-floor-${window}.npz`);
    if (!fs.existsSync(realFile)) await writeRealClips(cfg, realFile, nReal, window, 1);
    if (!fs.existsSync(floorFile)) await writeRealClips(cfg, floorFile, n, window, 2);
    const extractor = loadProxyExtractor('synthetic-motion');
    const protocol = { name: 'custom', frames: window, stride: 1, numReal: nReal, numFake: n, realSelection: 'first' as const, seed: 0 };
    const metrics: Record<string, unknown> = {};
    try {
      // Floor: held-out real clips (as many as generated videos) against the real set.
      const floor = await computeMetrics({ real: realFile, fake: floorFile, covariance: 'unbiased', protocol, runs: 1, extractor, cacheDir: null, progress: false });
      metrics.real_vs_real = { fvd_proxy: floor.fvd_proxy, kvd_proxy: floor.kvd_proxy, n_fake: floor.n_fake, n_real: floor.n_real };
      // The autoencoder's share: the same held-out clips encoded (posterior mean) and decoded.
      const recFile = path.join(out, `real-floor-${window}-reconstructed.npz`);
      if (!fs.existsSync(recFile)) await writeReconstructed(aeFile, floorFile, recFile);
      const rec = await computeMetrics({ real: realFile, fake: recFile, covariance: 'unbiased', protocol, runs: 1, extractor, cacheDir: null, progress: false });
      metrics.autoencoder_reconstruction = { fvd_proxy: rec.fvd_proxy, kvd_proxy: rec.kvd_proxy, n_fake: rec.n_fake, n_real: rec.n_real };
      log(`floors: real vs real ${Number(floor.fvd_proxy).toFixed(1)}, autoencoder reconstructions ${Number(rec.fvd_proxy).toFixed(1)}`);
      for (const st of settings) {
        const fake = path.join(out, 'gen', st.name, 'videos.npz');
        if (!fs.existsSync(fake)) continue;
        const r = await computeMetrics({ real: realFile, fake, covariance: 'unbiased', protocol, runs: 1, extractor, window, cacheDir: null, progress: false });
        metrics[st.name] = { mode: st.mode, s: st.s, w: st.w, fvd_proxy_by_window: r.fvd_proxy_by_window, kvd_proxy_by_window: r.kvd_proxy_by_window, n_fake: r.n_fake, n_real: r.n_real };
        log(`${st.name}: fvd_proxy by ${window}-frame window ${(r.fvd_proxy_by_window as number[]).map((v) => v.toFixed(1)).join(' ')}`);
      }
    } finally {
      extractor.dispose();
    }
    results.metrics = { window, extractor: extractor.describe(), ...metrics };
    save();
  }
  timings.total = (Date.now() - t0) / 1000;
  results.settings = { frames, n, steps, window, settings, quick };
  save();
  log(`done in ${timings.total.toFixed(0)} s -> ${resultsFile}`);
}

main().catch((e: Error) => {
  process.stderr.write(`${process.env.LVDM_DEBUG ? e.stack : e.message}\n`);
  process.exit(1);
});
