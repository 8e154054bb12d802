/**
 * Long-video generation end to end: latent stream (autoregressive or hierarchical) -> streaming
 * windowed decode -> frame sinks (MP4 per video, .npz chunks, merged videos.npz), plus the
 * `lvdm sample-long` glue that loads the models and the autoencoder from files.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../io/atomic';
import { getPrecision } from '../backend/precision';
import { displayScale } from '../autoencoder/outputs';
import { loadAutoencoder } from '../autoencoder/io';
import { LatentCodec, LatentNorm } from '../lvdm/latents';
import { LoadedLvdm, resolveAutoencoder } from '../lvdm/weights';
import { AutoregressivePlan, HierarchicalPlan } from './plan';
import { LongModel, StreamOptions, autoregressiveLatents, hierarchicalLatents } from './generate';
import { decodeLatentStream } from './decode';
import { FrameSink, Mp4Sink, NpzChunkSink, mergeChunks } from './sinks';
import { LatentJournal } from './journal';
import { WindowSampling } from './sample';
import { loadLongModel } from './train';

export type LongMode = 'autoregressive' | 'hierarchical';

export interface GenerateLongOptions extends StreamOptions {
  mode: LongMode;
  pred: LongModel;
  /** Required for mode 'hierarchical'. */
  interp?: LongModel;
  codec: LatentCodec;
  norm: LatentNorm;
  /** Decode windows, in LATENT frames (see decode.ts). */
  decodeWindowLatents: number;
  decodeOverlapLatents: number;
  sinks: FrameSink[];
}

export interface GenerateLongResult {
  plan: AutoregressivePlan | HierarchicalPlan;
  /** Frames written per video. */
  frames: number;
  height: number;
  width: number;
  seconds: number;
  decodeSeconds: number;
  /** Wall seconds per generated frame (all videos' frames counted). */
  secondsPerFrame: number;
  files: string[];
}

/** Generates o.n videos of exactly o.frames frames, streaming them into the sinks. */
export async function generateLong(o: GenerateLongOptions): Promise<GenerateLongResult> {
  const t0 = Date.now();
  let stream;
  if (o.mode === 'hierarchical') {
    if (!o.interp) throw new Error('hierarchical mode needs an interpolation model (--interp)');
    stream = hierarchicalLatents(o.pred, o.interp, o);
  } else if (o.mode === 'autoregressive') {
    stream = autoregressiveLatents(o.pred, o);
  } else {
    throw new Error(`unknown mode '${String(o.mode)}' (expected hierarchical or autoregressive)`);
  }
  let decodeMs = 0;
  const timedCodec: LatentCodec = {
    factors: o.codec.factors,
    encode: (x) => o.codec.encode(x),
    latentShape: (f, h, w) => o.codec.latentShape(f, h, w),
    decode: (z) => {
      const s = Date.now();
      const y = o.codec.decode(z);
      decodeMs += Date.now() - s;
      return y;
    },
  };
  let frames = 0;
  let height = 0;
  let width = 0;
  try {
    for await (const block of decodeLatentStream(stream.latents, timedCodec, { frames: o.frames, windowLatents: o.decodeWindowLatents, overlapLatents: o.decodeOverlapLatents, norm: o.norm })) {
      height = block.height;
      width = block.width;
      for (const s of o.sinks) await s.write(block);
      frames += block.count;
    }
    const files: string[] = [];
    for (const s of o.sinks) files.push(...(await s.close()));
    const seconds = (Date.now() - t0) / 1000;
    return { plan: stream.plan, frames, height, width, seconds, decodeSeconds: decodeMs / 1000, secondsPerFrame: seconds / (frames * o.n), files };
  } catch (e) {
    for (const s of o.sinks) s.abort();
    throw e;
  }
}

export interface SampleLongOptions {
  pred: string;
  interp?: string;
  autoencoder?: string;
  out: string;
  mode: LongMode;
  frames: number;
  n: number;
  seed: number;
  /** Perturbation strength s (null = clean; default: 0 for perturbation models, else null). */
  s?: number | null;
  w: number;
  sampler: 'ddim' | 'ddpm';
  steps: number;
  eta: number;
  maxBatch: number;
  decodeWindowLatents: number;
  decodeOverlapLatents: number;
  /** Pixel frames per .npz chunk (0 = no chunks). */
  chunkFrames: number;
  /** Also merge the chunks into videos.npz. */
  merge: boolean;
  mp4: boolean;
  fps: number;
  log?: (msg: string) => void;
  /** Called after each generated window (stage 'ar', 'key' or 'interp'; index 0-based). */
  onWindow?: (stage: string, index: number, total: number) => void;
  /**
   * Continue an interrupted run in `out` from its latent journal (`out/journal`, journal.ts) when
   * it was written with the same models and settings. Default false: any journal is discarded.
   */
  resume?: boolean;
}

/** The latent journal's folder in a sample-long output folder (removed when the run finishes). */
export const JOURNAL_DIR = 'journal';

function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function sameNorm(a: LoadedLvdm, b: LoadedLvdm): boolean {
  return Math.abs(a.state.latent.shift - b.state.latent.shift) < 1e-9 && Math.abs(a.state.latent.scale - b.state.latent.scale) < 1e-9;
}

/** `lvdm sample-long`: loads the models and the autoencoder, generates, writes long.json; returns it. */
export async function sampleLong(o: SampleLongOptions): Promise<Record<string, unknown>> {
  const log = o.log ?? (() => undefined);
  const pred = loadLongModel(o.pred);
  const interp = o.interp ? loadLongModel(o.interp) : null;
  try {
    if (o.mode === 'hierarchical' && !interp) throw new Error('--mode hierarchical needs --interp <interpolation lvdm.safetensors>');
    if (o.mode === 'autoregressive' && interp) log('note: --interp is ignored in autoregressive mode');
    if (interp && o.mode === 'hierarchical') {
      if (!sameNorm(pred.loaded, interp.loaded))
        throw new Error(`${o.pred} and ${o.interp}: trained on differently normalised latents (shift/scale ${JSON.stringify(pred.loaded.state.latent)} vs ${JSON.stringify(interp.loaded.state.latent)}); they must share one autoencoder`);
      if (!o.autoencoder && path.resolve(pred.loaded.state.autoencoder) !== path.resolve(interp.loaded.state.autoencoder))
        throw new Error(`${o.pred} and ${o.interp}: recorded autoencoders differ (${pred.loaded.state.autoencoder} vs ${interp.loaded.state.autoencoder}); pass --ae to choose one`);
    }
    const ae = loadAutoencoder(resolveAutoencoder(pred.loaded, o.autoencoder));
    try {
      const sFor = (m: LongModel): number | null => (o.s === undefined ? (m.spec.s_max === null ? null : 0) : o.s);
      const samplingFor = (m: LongModel): WindowSampling => ({ sampler: o.sampler, steps: o.steps, eta: o.eta, s: sFor(m), w: o.w });
      fs.mkdirSync(o.out, { recursive: true });
      const journalDir = path.join(o.out, JOURNAL_DIR);
      if (!o.resume) fs.rmSync(journalDir, { recursive: true, force: true });
      // Everything the latent stream depends on (the autoencoder only decodes it).
      const identity = {
        mode: o.mode, frames: o.frames, n: o.n, seed: o.seed, s: o.s ?? null, w: o.w, sampler: o.sampler, steps: o.steps, eta: o.eta, maxBatch: o.maxBatch,
        pred: sha256File(o.pred), interp: o.mode === 'hierarchical' && o.interp ? sha256File(o.interp) : null,
        // The convolutions' precision (lib/backend/precision.ts) when not float32: a resume in another precision starts afresh.
        ...(getPrecision() !== 'fp32' ? { precision: getPrecision() } : {}),
      };
      const journal = new LatentJournal(journalDir, identity, log);
      if (journal.resumedCommits > 0) log(`continuing from the latent journal: ${journal.resumedCommits} finished window(s) replayed`);
      const [ft, fs_] = ae.ae.factors;
      const [h, w] = pred.model.latent;
      const sinks: FrameSink[] = [];
      const chunkSink = o.chunkFrames > 0 ? new NpzChunkSink(o.out, o.chunkFrames) : null;
      if (chunkSink) sinks.push(chunkSink);
      if (o.mp4) sinks.push(new Mp4Sink(o.out, o.n, { fps: o.fps, scale: displayScale(h * fs_, w * fs_) }));
      const res = await generateLong({
        mode: o.mode,
        pred: pred.model,
        interp: interp?.model,
        codec: ae.ae,
        norm: pred.loaded.state.latent,
        frames: o.frames,
        ft,
        n: o.n,
        seed: o.seed,
        sampling: samplingFor(pred.model),
        interpSampling: interp ? samplingFor(interp.model) : undefined,
        maxBatch: o.maxBatch,
        decodeWindowLatents: o.decodeWindowLatents,
        decodeOverlapLatents: o.decodeOverlapLatents,
        sinks,
        journal,
        onWindow: o.onWindow,
      });
      const files = [...res.files];
      if (chunkSink && o.merge) {
        const merged = path.join(o.out, 'videos.npz');
        await mergeChunks(chunkSink.written.map((c) => c.file), merged);
        files.push(merged);
      }
      const summary = {
        mode: o.mode,
        pred: o.pred,
        interp: o.mode === 'hierarchical' ? o.interp : null,
        autoencoder: resolveAutoencoder(pred.loaded, o.autoencoder),
        frames_requested: o.frames,
        frames: res.frames,
        n: o.n,
        height: res.height,
        width: res.width,
        seed: o.seed,
        s: sFor(pred.model),
        s_interp: interp ? sFor(interp.model) : null,
        w: o.w,
        precision: getPrecision(),
        sampler: o.sampler,
        steps: o.sampler === 'ddim' ? o.steps : pred.model.schedule.T,
        eta: o.sampler === 'ddim' ? o.eta : null,
        decode: { window_latents: o.decodeWindowLatents, overlap_latents: o.decodeOverlapLatents, overlap_pixel_frames_per_side: o.decodeOverlapLatents * ft, temporal_factor: ft },
        npz_chunk_frames: o.chunkFrames,
        plan: res.plan,
        seconds: res.seconds,
        decode_seconds: res.decodeSeconds,
        seconds_per_frame: res.secondsPerFrame,
        resumed_windows: journal.resumedCommits,
        resumed_seconds: journal.resumedSeconds, // spent on those windows before the interruption (not in seconds)
        files: files.map((f) => path.relative(o.out, f)),
      };
      writeJsonAtomic(path.join(o.out, 'long.json'), summary);
      journal.remove();
      return summary;
    } finally {
      ae.dispose();
    }
  } finally {
    pred.loaded.dispose();
    interp?.loaded.dispose();
  }
}
