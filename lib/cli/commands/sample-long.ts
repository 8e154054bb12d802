/**
 * `lvdm sample-long --pred C1 [--interp C2] --frames 1024 --mode hierarchical|autoregressive
 *  --s 100 --w 0.1 --n 8 --seed S --out DIR`: long videos, streamed to disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from '../types';
import { flag, int, num, requireStr, str } from '../args';
import { initBackend, withPrecision, type Precision } from '../../backend';
import { JOURNAL_DIR, LongMode, sampleLong } from '../../hierarchical/pipeline';
import { hasJournal } from '../../hierarchical/journal';

function parseS(v: string | undefined): number | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'none') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--s: expected an integer >= 0 or 'none', got '${v}'`);
  return n;
}

export const command: Command = {
  name: 'sample-long',
  summary: 'generate long videos (hierarchical or autoregressive) of exactly --frames frames, streamed to MP4 and .npz',
  description: `Modes:
  hierarchical    keyframes with --pred (a sparse prediction model: keyframes are its long.latent_stride
                  latents apart), then every consecutive keyframe pair filled by --interp (window =
                  stride + 1); the LVDM procedure.
  autoregressive  the baseline: --pred (consecutive latents, latent_stride 1) conditions on its last k
                  latents and generates the next window, repeatedly.
Exactly --frames frames are written per video (latents = ceil(frames / ft), decoded and trimmed).

--s  perturbation strength: the condition latents are replaced by q(z_cond, s), computed once per clip
     and written into the condition positions at every denoising step (0..long.s_max of the model;
     'none' for models trained without perturbation). Default: 0 (or none).
--w  unconditional guidance: eps = (1 + w) eps_c - w eps_u, eps_u from the all-zero mask (default 0).

Decoding runs in windows of --decode-window LATENT frames with --decode-overlap LATENT frames of
context on each side (each latent frame = ft pixel frames; the context's frames are discarded).

Outputs in --out: video_XXX.mp4 per video, chunks/frames_<a>-<b>.npz ('videos' uint8
[n, chunk, H, W, 3], one per --chunk-frames PIXEL frames; each is an 'lvdm metrics --fake' input),
videos.npz (all frames, for 'lvdm metrics --window W'), long.json (settings, plan, timings).
While it runs, --out/journal keeps every finished window's latents and the state to go on from:
the same command with --resume continues an interrupted run from its last finished window and
ends with the videos of an uninterrupted run (the journal is removed at the end).

Example:
  lvdm sample-long --pred runs/long-sky/pred/lvdm.safetensors --interp runs/long-sky/interp/lvdm.safetensors \\
    --frames 1024 --mode hierarchical --s 100 --w 0.1 --n 8 --seed 1 --out runs/long-sky/h1024`,
  options: {
    pred: { type: 'string', help: 'prediction model lvdm.safetensors (train-pred)' },
    interp: { type: 'string', help: 'interpolation model lvdm.safetensors (train-interp; hierarchical mode)' },
    ae: { type: 'string', help: 'autoencoder weights (default: the one recorded with --pred)' },
    out: { type: 'string', short: 'o', help: 'output folder (must be empty or new, unless --force)' },
    mode: { type: 'string', help: 'hierarchical | autoregressive', default: 'hierarchical' },
    frames: { type: 'string', help: 'pixel frames per video (exact)' },
    n: { type: 'string', help: 'number of videos', default: '8' },
    seed: { type: 'string', help: 'random seed', default: '0' },
    s: { type: 'string', help: "condition perturbation strength s (integer, or 'none')" },
    w: { type: 'string', help: 'unconditional guidance scale w >= 0', default: '0' },
    sampler: { type: 'string', help: 'ddim | ddpm', default: 'ddim' },
    steps: { type: 'string', help: 'DDIM steps per window', default: '50' },
    eta: { type: 'string', help: 'DDIM eta in [0, 1]', default: '0' },
    batch: { type: 'string', help: 'largest batch per network forward', default: '16' },
    'decode-window': { type: 'string', help: 'latent frames decoded per window', default: '16' },
    'decode-overlap': { type: 'string', help: 'latent frames of context on each side of a decode window', default: '2' },
    'chunk-frames': { type: 'string', help: 'pixel frames per .npz chunk (0 = no .npz output)', default: '128' },
    'no-merge': { type: 'boolean', help: 'do not merge the chunks into videos.npz' },
    'no-mp4': { type: 'boolean', help: 'no MP4 files' },
    fps: { type: 'string', help: 'frames per second of the MP4 files', default: '8' },
    precision: { type: 'string', help: "fp32 | bf16: the networks' convolutions in bfloat16 (libtorch, a CPU with bf16 units; default fp32)" },
    force: { type: 'boolean', help: 'write into a non-empty --out' },
    resume: { type: 'boolean', help: 'continue a run in --out that was interrupted (killed included) from its last finished window, with the same numbers' },
    quiet: { type: 'boolean', help: 'no progress output' },
  },
  async run(values) {
    const out = requireStr(values, 'out');
    const resume = flag(values, 'resume');
    if (resume && !hasJournal(path.join(out, JOURNAL_DIR))) throw new Error(`${out}: --resume found no interrupted run to continue (no ${JOURNAL_DIR}/state.json)`);
    if (!resume && fs.existsSync(out) && fs.readdirSync(out).length > 0 && !flag(values, 'force'))
      throw new Error(`${out}: output folder is not empty; pass --force to write into it, or --resume to continue an interrupted run`);
    const mode = (str(values, 'mode') ?? 'hierarchical') as LongMode;
    if (mode !== 'hierarchical' && mode !== 'autoregressive') throw new Error(`--mode: expected hierarchical or autoregressive, got '${mode}'`);
    const sampler = (str(values, 'sampler') ?? 'ddim') as 'ddim' | 'ddpm';
    if (sampler !== 'ddim' && sampler !== 'ddpm') throw new Error(`--sampler: expected ddim or ddpm, got '${sampler}'`);
    const frames = int(values, 'frames');
    if (frames === undefined || frames < 1) throw new Error('--frames: a positive number of frames is required');
    const eta = num(values, 'eta', 0)!;
    if (!(eta >= 0 && eta <= 1)) throw new Error(`--eta: expected a number in [0, 1], got ${eta}`);
    const quiet = flag(values, 'quiet');
    await initBackend({ quiet });
    const precision = (str(values, 'precision') ?? 'fp32') as Precision;
    const summary = await withPrecision(precision, () => sampleLong({
      pred: requireStr(values, 'pred'),
      interp: str(values, 'interp'),
      autoencoder: str(values, 'ae'),
      out,
      mode,
      frames,
      n: int(values, 'n', 8)!,
      seed: int(values, 'seed', 0)!,
      s: parseS(str(values, 's')),
      w: num(values, 'w', 0)!,
      sampler,
      steps: int(values, 'steps', 50)!,
      eta,
      maxBatch: int(values, 'batch', 16)!,
      decodeWindowLatents: int(values, 'decode-window', 16)!,
      decodeOverlapLatents: int(values, 'decode-overlap', 2)!,
      chunkFrames: int(values, 'chunk-frames', 128)!,
      merge: !flag(values, 'no-merge'),
      mp4: !flag(values, 'no-mp4'),
      fps: int(values, 'fps', 8)!,
      log: quiet ? undefined : (m: string) => process.stderr.write(`[lvdm] ${m}\n`),
      onWindow: quiet ? undefined : (stage: string, i: number, total: number) => process.stderr.write(`[lvdm] ${stage} window ${i + 1}/${total}\n`),
      resume,
    }), '--precision');
    console.log(
      `${String(summary.n)} videos of ${String(summary.frames)} frames (${mode}, s ${String(summary.s)}, w ${String(summary.w)}) in ` +
        `${Number(summary.seconds).toFixed(1)} s (${Number(summary.seconds_per_frame).toFixed(4)} s per frame) -> ${out}`,
    );
    return 0;
  },
};
