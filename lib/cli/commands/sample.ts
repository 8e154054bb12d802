/** `lvdm sample --ckpt lvdm.safetensors --n 16 --frames F --steps 50 --eta 0 --seed S --out DIR`. */
import * as fs from 'node:fs';
import { Command } from '../types';
import { flag, int, num, requireStr, str } from '../args';
import { initBackend, withPrecision, type Precision } from '../../backend';
import { loadAutoencoder } from '../../autoencoder/io';
import { writeJsonAtomic } from '../../io/atomic';
import { generateVideos, writeSampleOutputs } from '../../lvdm/generate';
import { loadLvdm, resolveAutoencoder, type LoadedLvdm } from '../../lvdm/weights';
import { datasetFromConfig } from '../../../data/from-config';
import * as path from 'node:path';

export const command: Command = {
  name: 'sample',
  summary: 'generate short videos with a trained latent diffusion model (MP4, GIF, PNG grid, optional .npz)',
  description: `Writes sample_XXX.mp4 and sample_XXX.gif per video (enlarged for viewing), grid.png (one row
per video, one column per frame), samples.json and, with --npz, samples.npz holding the raw uint8
array 'videos' [N, T, H, W, 3] for the metrics. Sample i starts from noise seeded by (--seed, i).

Text-to-video models (configs with a 'text' section) take --prompt "..." or --prompts FILE (one
prompt per line) and make --n videos per prompt (default 1) with classifier-free guidance
eps = eps_u + s (eps_c - eps_u), s = --cfg (default 1: no guidance; up to 15), the unconditional
branch eps_u from the empty prompt or --negative-prompt. Video i of prompt p uses the noise of
sample p * n + i, so the same seed compares guidance scales on the same noise.

Class-conditional models (unet.num_classes) take --class NAME[,NAME...] (class names of the model's
data source, e.g. square,triangle on the shapes families, or label numbers) and make --n videos per
class (default 1), with the same --cfg guidance, the unconditional branch from the null label.

Autoguidance (Karras et al. 2024): --autoguide BAD.safetensors guides the model with a weaker one of
the same latents (an earlier snapshot, e.g. runs/X/store/short/<key>/snapshots/lvdm-500.safetensors,
or a smaller network): D = D_bad + s (D_good - D_bad), s = --autoguide-scale (default 2; 1 = none).
It needs no conditioning, so unconditional models can be guided; two forwards per step.

Noise-level experts (Balaji et al. 2022, eDiff-I): --low-noise LOW.safetensors denoises the
timesteps t < --switch-t (default 500) with another model of the same latents, --ckpt the rest
(e.g. a model that keeps the objects at high noise and one that draws their outlines below).

Epsilon scaling (Ning et al. 2024): --eps-scale L divides the predicted noise by lambda_t = L + K t
(K = --eps-scale-slope, default 0), against the exposure bias of sampling (L slightly above 1,
e.g. 1.005-1.02; 1 = none).

Example:
  lvdm sample --ckpt runs/lvdm/lvdm.safetensors --n 16 --frames 8 --steps 50 --eta 0 --seed 1 --out runs/samples
  lvdm sample --ckpt runs/t2v/lvdm.safetensors --prompt "two red squares move left" --cfg 7.5 --n 4 --out runs/t2v-samples
  lvdm sample --ckpt runs/shapes-class/store/short/<key>/lvdm.safetensors --class disc,square,triangle --cfg 4 --n 4 --out runs/class-samples
  lvdm sample --ckpt runs/x/lvdm.safetensors --autoguide runs/x/snapshots/lvdm-500.safetensors --autoguide-scale 2 --out runs/ag`,
  options: {
    ckpt: { type: 'string', help: 'lvdm.safetensors (or a train-lvdm checkpoint-last.safetensors: EMA weights are used)' },
    ae: { type: 'string', help: 'autoencoder weights (default: the one recorded with the model)' },
    out: { type: 'string', short: 'o', help: 'output folder (must be empty or new, unless --force)' },
    n: { type: 'string', help: 'number of videos (default 16); with prompts or --class: videos per prompt or class (default 1)' },
    prompt: { type: 'string', help: 'text-to-video: the prompt' },
    prompts: { type: 'string', help: 'text-to-video: a file with one prompt per line' },
    class: { type: 'string', help: 'class-conditional models: class names or label numbers, comma-separated (--n videos each)' },
    cfg: { type: 'string', help: 'text-to-video and class-conditional models: classifier-free guidance scale s >= 0 (default 1 = none)' },
    'negative-prompt': { type: 'string', help: 'text-to-video: prompt of the unconditional branch (default: empty)' },
    autoguide: { type: 'string', help: 'autoguidance: a weaker model of the same latents (e.g. an early snapshot) to guide with' },
    'autoguide-scale': { type: 'string', help: 'autoguidance scale s >= 0 of D_bad + s (D_good - D_bad) (default 2)' },
    'low-noise': { type: 'string', help: 'noise-level experts: a model of the same latents that denoises the timesteps below --switch-t' },
    'switch-t': { type: 'string', help: 'noise-level experts: the first timestep denoised by --ckpt again (default 500)' },
    'eps-scale': { type: 'string', help: 'epsilon scaling: divide the predicted noise by lambda_t = L + K t (L > 0; default none)' },
    'eps-scale-slope': { type: 'string', help: 'epsilon scaling: the slope K of lambda_t per timestep (default 0)' },
    frames: { type: 'string', help: 'frames per video (default: the training clip length)' },
    steps: { type: 'string', help: 'DDIM steps (default from the config, usually 50)' },
    eta: { type: 'string', help: 'DDIM eta in [0, 1] (0 = deterministic)' },
    sampler: { type: 'string', help: 'ddim | ddpm (ancestral, all T steps)' },
    seed: { type: 'string', help: 'random seed', default: '0' },
    batch: { type: 'string', help: 'videos per sampling batch' },
    fps: { type: 'string', help: 'frames per second of the MP4/GIF files' },
    precision: { type: 'string', help: "fp32 | bf16: the sampler's convolutions in bfloat16 (libtorch, a CPU with bf16 units; default from the config, else fp32)" },
    npz: { type: 'boolean', help: 'also write samples.npz (uint8 N x T x H x W x 3)' },
    force: { type: 'boolean', help: 'write into a non-empty --out' },
    quiet: { type: 'boolean', help: 'no progress output' },
  },
  async run(values) {
    const ckpt = requireStr(values, 'ckpt');
    const out = requireStr(values, 'out');
    if (fs.existsSync(out) && fs.readdirSync(out).length > 0 && !flag(values, 'force'))
      throw new Error(`${out}: output folder is not empty; pass --force to write into it`);
    const quiet = flag(values, 'quiet');
    await initBackend({ quiet });
    const model = loadLvdm(ckpt);
    const s = model.config.diffusion!.sampling;
    const sampler = (str(values, 'sampler') ?? s.sampler) as 'ddim' | 'ddpm';
    if (sampler !== 'ddim' && sampler !== 'ddpm') throw new Error(`--sampler: expected ddim or ddpm, got '${sampler}'`);
    const eta = num(values, 'eta', s.eta)!;
    if (!(eta >= 0 && eta <= 1)) throw new Error(`--eta: expected a number in [0, 1], got ${eta}`);
    const prompts = promptList(str(values, 'prompt'), str(values, 'prompts'), int(values, 'n', 1)!);
    const classSpec = str(values, 'class');
    if (classSpec !== undefined && prompts) throw new Error('--class and --prompt/--prompts: give one of them');
    const classNames = classSpec !== undefined ? classNamesOf(model) : undefined;
    const classes = classSpec !== undefined ? classLabelList(classSpec, int(values, 'n', 1)!, model, classNames) : undefined;
    const cfg = num(values, 'cfg');
    if (cfg !== undefined && !(cfg >= 0)) throw new Error(`--cfg: expected a guidance scale >= 0, got ${cfg}`);
    const agScale = num(values, 'autoguide-scale');
    const agFile = str(values, 'autoguide');
    if (agScale !== undefined && agFile === undefined) throw new Error('--autoguide-scale: needs --autoguide <weaker model.safetensors>');
    if (agScale !== undefined && !(agScale >= 0)) throw new Error(`--autoguide-scale: expected a scale >= 0, got ${agScale}`);
    if (agFile !== undefined && !fs.existsSync(agFile)) throw new Error(`--autoguide: file ${agFile} not found`);
    const autoguide = agFile !== undefined ? { model: loadLvdm(agFile), scale: agScale ?? 2 } : undefined;
    const switchT = int(values, 'switch-t');
    const lowFile = str(values, 'low-noise');
    if (switchT !== undefined && lowFile === undefined) throw new Error('--switch-t: needs --low-noise <model.safetensors>');
    if (switchT !== undefined && !(switchT >= 1 && switchT < model.schedule.T)) throw new Error(`--switch-t: expected a timestep in 1..${model.schedule.T - 1}, got ${switchT}`);
    if (lowFile !== undefined && !fs.existsSync(lowFile)) throw new Error(`--low-noise: file ${lowFile} not found`);
    const lowNoise = lowFile !== undefined ? { model: loadLvdm(lowFile), below: switchT ?? 500 } : undefined;
    const epsLambda = num(values, 'eps-scale');
    const epsSlope = num(values, 'eps-scale-slope');
    if (epsSlope !== undefined && epsLambda === undefined) throw new Error('--eps-scale-slope: needs --eps-scale L');
    if (epsLambda !== undefined && !(epsLambda > 0)) throw new Error(`--eps-scale: expected a number > 0, got ${epsLambda}`);
    const epsScale = epsLambda !== undefined ? { lambda: epsLambda, k: epsSlope ?? 0 } : undefined;
    const opts = {
      autoguide,
      lowNoise,
      epsScale,
      n: prompts ? prompts.length : classes ? classes.length : int(values, 'n', 16)!,
      prompts,
      classLabels: classes,
      cfg,
      negativePrompt: str(values, 'negative-prompt'),
      frames: int(values, 'frames'),
      batchSize: int(values, 'batch', s.batch_size)!,
      sampler,
      steps: int(values, 'steps', s.steps)!,
      eta,
      spacing: s.spacing,
      finalAlpha: s.final_alpha,
      seed: int(values, 'seed', 0)!,
      onProgress: quiet ? undefined : (done: number, total: number) => process.stderr.write(`[lvdm] sampled ${done}/${total}\n`),
    };
    const precision = (str(values, 'precision') ?? s.precision ?? 'fp32') as Precision;
    const ae = loadAutoencoder(resolveAutoencoder(model, str(values, 'ae')));
    try {
      const gen = await withPrecision(precision, () => generateVideos(model, ae.ae, opts), '--precision');
      const fps = int(values, 'fps', s.fps)!;
      const files = await writeSampleOutputs(out, gen, { fps, npz: flag(values, 'npz') });
      const summary = {
        ckpt,
        step: model.step,
        ema: model.state.ema,
        n: opts.n,
        frames: gen.frames,
        height: gen.height,
        width: gen.width,
        sampler,
        steps: sampler === 'ddim' ? opts.steps : model.schedule.T,
        eta: sampler === 'ddim' ? eta : null,
        seed: opts.seed,
        precision,
        ...(prompts ? { prompts, cfg: cfg ?? 1, negative_prompt: opts.negativePrompt ?? '' } : {}),
        ...(classes ? { class_labels: classes, classes: classes.map((c) => classNames?.[c] ?? String(c)), cfg: cfg ?? 1 } : {}),
        ...(autoguide ? { autoguide: { ckpt: agFile, step: autoguide.model.step, scale: autoguide.scale } } : {}),
        ...(lowNoise ? { low_noise: { ckpt: lowFile, step: lowNoise.model.step, below: lowNoise.below } } : {}),
        ...(epsScale ? { eps_scale: epsScale } : {}),
        sample_seconds: gen.sampleSeconds,
        decode_seconds: gen.decodeSeconds,
        files: files.map((f) => path.relative(out, f)),
      };
      writeJsonAtomic(path.join(out, 'samples.json'), summary);
      console.log(`${opts.n} videos of ${gen.frames}x${gen.height}x${gen.width} in ${(gen.sampleSeconds + gen.decodeSeconds).toFixed(1)} s -> ${out}`);
      return 0;
    } finally {
      model.dispose();
      autoguide?.model.dispose();
      lowNoise?.model.dispose();
      ae.dispose();
    }
  },
};

/** --prompt / --prompts FILE -> one prompt per video (each repeated `perPrompt` times), or undefined. */
function promptList(prompt: string | undefined, file: string | undefined, perPrompt: number): string[] | undefined {
  if (prompt !== undefined && file !== undefined) throw new Error('--prompt and --prompts: give one of them');
  if (!Number.isInteger(perPrompt) || perPrompt < 1) throw new Error(`--n: expected a positive integer, got ${perPrompt}`);
  let list: string[];
  if (prompt !== undefined) list = [prompt];
  else if (file !== undefined) {
    if (!fs.existsSync(file)) throw new Error(`--prompts: file ${file} not found`);
    list = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
    if (list.length === 0) throw new Error(`--prompts: ${file} has no prompts (one per line)`);
  } else return undefined;
  return list.flatMap((p) => new Array<string>(perPrompt).fill(p));
}

/** Class names of a model's data source (undefined when it has none or cannot be opened here). */
function classNamesOf(model: LoadedLvdm): readonly string[] | undefined {
  try {
    return datasetFromConfig(model.config.data, 'train', model.config.seed).classNames;
  } catch {
    return undefined;
  }
}

/** --class a,b,... -> one label per video (each class repeated `perClass` times): names of the model's data source's classes, or label numbers. */
function classLabelList(spec: string, perClass: number, model: LoadedLvdm, names: readonly string[] | undefined): number[] {
  if (!Number.isInteger(perClass) || perClass < 1) throw new Error(`--n: expected a positive integer, got ${perClass}`);
  const k = model.unet.cfg.num_classes;
  if (k === undefined) throw new Error(`--class: ${model.source} is not class-conditional (unet.num_classes is unset)`);
  const known = names ? `${names.map((n, i) => `${i} ${n}`).join(', ')}` : `label numbers 0..${k - 1}`;
  const labels = spec.split(',').map((item) => {
    const name = item.trim();
    const label = /^\d+$/.test(name) ? Number(name) : (names?.indexOf(name) ?? -1);
    if (!(label >= 0 && label < k)) throw new Error(`--class: '${name}' is not a class of this model (${known})`);
    return label;
  });
  return labels.flatMap((l) => new Array<number>(perClass).fill(l));
}
