/**
 * Notebook profiles: `LVDM_PROFILE=smoke|mini|paper` sizes every notebook, so one notebook runs in
 * CI in seconds (smoke), on a laptop in minutes (mini, the default) and at the experiment files'
 * own sizes (paper). A profile resolves, per notebook, to an experiment file, `--set` overrides of
 * it, a few sizes that are not config keys (sample counts, video lengths) and an output folder.
 */
import * as path from 'node:path';

export const PROFILES = ['smoke', 'mini', 'paper'] as const;
export type ProfileName = (typeof PROFILES)[number];

export const NOTEBOOKS = ['quickstart', 'autoencoder', 'short-video', 'long-video', 'ablation-ucf101', 'ablation-sky', 'ablation-taichi', 'metrics', 'text-to-video', 'shapes'] as const;
export type NotebookId = (typeof NOTEBOOKS)[number];

/** The profile named by LVDM_PROFILE (default 'mini'); anything else is an error naming the choices. */
export function profileName(env: Record<string, string | undefined> = process.env): ProfileName {
  const v = env.LVDM_PROFILE;
  if (v === undefined || v === '') return 'mini';
  if ((PROFILES as readonly string[]).includes(v)) return v as ProfileName;
  throw new Error(`LVDM_PROFILE='${v}': expected one of ${PROFILES.join(', ')}`);
}

export interface NotebookSettings {
  notebook: NotebookId;
  profile: ProfileName;
  /** The experiment file the notebook runs (relative to the project root). */
  config: string;
  /** `key.path=value` overrides of it for this profile. */
  set: string[];
  /** Sizes that are not config keys: sample counts, video lengths, clip counts. */
  params: Record<string, number>;
  /** This profile's output root: $LVDM_NOTEBOOK_RUNS (default runs/notebooks) / <profile>. */
  runsDir: string;
  /** This notebook's output folder: <runsDir>/<notebook> (experiment notebooks: <runsDir>/<family>-<experiment>). */
  outDir: string;
}

type Entry = Omit<NotebookSettings, 'notebook' | 'profile' | 'runsDir' | 'outDir'>;

/** The demo pipeline (autoencoder + short-video LDM) shrunk to a few steps of tiny batches. */
const SHORT_SMOKE = [
  'data.num_videos=16',
  'data.held_out=2',
  'autoencoder.train.steps=6',
  'autoencoder.train.batch_size=2',
  'autoencoder.train.ckpt_every=6',
  'autoencoder.train.log_every=2',
  'autoencoder.latent_stats_clips=4',
  'diffusion.train.steps=6',
  'diffusion.train.batch_size=2',
  'diffusion.train.ckpt_every=6',
  'diffusion.train.log_every=2',
  'diffusion.latents.max_clips=8',
  'diffusion.latents.batch_size=4',
  'diffusion.sampling.steps=4',
  'diffusion.sampling.n=2',
  'diffusion.sampling.batch_size=2',
];

const SHORT: Record<ProfileName, Entry> = {
  smoke: { config: 'experiments/demo.yaml', set: SHORT_SMOKE, params: { reconstructions: 2 } },
  mini: { config: 'experiments/demo.yaml', set: [], params: { reconstructions: 4 } },
  paper: { config: 'experiments/lvdm-sky.yaml', set: [], params: { reconstructions: 8 } },
};

const METRICS: Record<ProfileName, Entry> = {
  smoke: { config: 'experiments/demo.yaml', set: ['data.size=32', 'data.frames=8'], params: { clips: 12, frames: 8, counts: 2 } },
  mini: { config: 'experiments/demo.yaml', set: ['data.size=32', 'data.frames=16'], params: { clips: 128, frames: 16, counts: 4 } },
  paper: { config: 'experiments/demo.yaml', set: ['data.size=64', 'data.frames=16'], params: { clips: 2048, frames: 16, counts: 6 } },
};

/** Text-to-video (09): experiments/t2v-captioned.yaml; smoke trains a few steps on 16 videos, mini a shortened run. */
const T2V_SMOKE = [...SHORT_SMOKE, 'autoencoder.optim.warmup_steps=0', 'diffusion.optim.warmup_steps=0'];

const T2V: Record<ProfileName, Entry> = {
  smoke: { config: 'experiments/t2v-captioned.yaml', set: T2V_SMOKE, params: { steps: 4 } },
  mini: { config: 'experiments/t2v-captioned.yaml', set: ['data.num_videos=500', 'autoencoder.train.steps=150', 'diffusion.train.steps=300'], params: { steps: 15 } },
  paper: { config: 'experiments/t2v-captioned.yaml', set: [], params: { steps: 25 } },
};

/**
 * Synthetic shapes (10): experiments/shapes.yaml with its shipped models; smoke samples a few short
 * clips only, mini runs the file's sweep (the demo), paper the ablation protocol.
 */
const SHAPES: Record<ProfileName, Entry> = {
  smoke: { config: 'experiments/shapes.yaml', set: ['sweep.grids.ablation=null', 'sweep.grids.baseline=null', 'sweep.grids.short.steps=4', 'sweep.n=4', 'evaluate.n_real=16'], params: {} },
  mini: { config: 'experiments/shapes.yaml', set: [], params: {} },
  paper: { config: 'experiments/shapes-ablation.yaml', set: [], params: {} },
};

/**
 * Ucf's shipped short model (10, after shapes): experiments/ucf-synthetic-fs2-class.yaml, the
 * class-conditional short model (12 actions) on the motion-weighted autoencoder's latents, whose
 * autoencoder, robust-latent decoder and short model are shipped in models/; every profile samples
 * its 16-frame clips for the held-out clips' actions, unguided (w = 0) and with classifier-free
 * guidance w = 3 (s = 4; the file's best setting), seed 1, and scores them against the floors
 * (smoke: 4 clips, 4 sampler steps, 16 real clips; mini and paper: the file's 32 clips, DDIM 20).
 */
const UCF_SHIPPED_FILE = 'experiments/ucf-synthetic-fs2-class.yaml';
const UCF_SHIPPED_POINTS = ['sweep.grids.short.w=[0, 3]', 'sweep.grids.short.seed=1'];
const UCF_SHIPPED: Record<ProfileName, Entry> = {
  smoke: { config: UCF_SHIPPED_FILE, set: [...UCF_SHIPPED_POINTS, 'sweep.grids.short.steps=4', 'sweep.n=4', 'evaluate.n_real=16'], params: {} },
  mini: { config: UCF_SHIPPED_FILE, set: UCF_SHIPPED_POINTS, params: {} },
  paper: { config: UCF_SHIPPED_FILE, set: UCF_SHIPPED_POINTS, params: {} },
};

/** The ablation families: their synthetic stand-in, the variable naming a real data root, and the experiment file of their shipped long-video models. */
const FAMILIES = {
  ucf101: { synthetic: 'synthetic-ucf', rootEnv: 'LVDM_UCF101_ROOT', shippedLong: 'experiments/ucf-synthetic-fs2-ae-motion-hier.yaml' },
  sky: { synthetic: 'synthetic-sky', rootEnv: 'LVDM_SKY_ROOT', shippedLong: 'experiments/sky-synthetic-long.yaml' },
  taichi: { synthetic: 'synthetic-taichi', rootEnv: 'LVDM_TAICHI_ROOT', shippedLong: 'experiments/taichi-synthetic-long.yaml' },
} as const;
type Family = keyof typeof FAMILIES;

/**
 * The ablation notebooks' fast path (05-07): the family's long-video models shipped in models/ (int8,
 * with their autoencoder), sampled without training: plain autoregression and hierarchical
 * generation at s 0 and 200 (w 0) on the synthetic stand-in, whatever data root is set. smoke: 64
 * frames, 2 sampler steps, 2 clips; mini: 256 frames, DDIM 20, one seed of 8 clips (a few minutes
 * on 2 cores); paper: the recorded protocol (1024 frames, seeds 1-3 of 8 clips; about an hour).
 */
const SHIPPED_LONG_GRID = 'sweep.grids={shipped: {mode: [autoregressive, hierarchical], s: [0, 200], w: 0}}';
const SHIPPED_LONG_SETS: Record<ProfileName, string[]> = {
  smoke: [SHIPPED_LONG_GRID, 'sweep.defaults={frames: 64, steps: 2, seed: 1}', 'sweep.n=2', 'evaluate.window=16', 'evaluate.n_real=16'],
  mini: [SHIPPED_LONG_GRID, 'sweep.defaults={frames: 256, steps: 20, seed: 1}', 'sweep.n=8'],
  paper: [SHIPPED_LONG_GRID],
};

/** Smoke sweeps add to experiments/smoke.yaml's points (hierarchical s 0 / 100, autoregressive) perturbation + guidance for both modes and a guidance pair. */
const SWEEP_SMOKE = [
  'sweep.grids.perturbed={mode: [autoregressive, hierarchical], s: 100, w: 0.1, frames: 32, steps: 2, seed: 1}',
  'sweep.grids.guidance={mode: hierarchical, s: 100, w: [0, 0.1], frames: 32, steps: 2, seed: 1}',
];

/** The family's data: the real data set under its root when the variable names one (not in smoke), else the synthetic stand-in. */
function familyData(family: Family, profile: ProfileName, env: Record<string, string | undefined>): string[] {
  const f = FAMILIES[family];
  const root = env[f.rootEnv];
  return profile !== 'smoke' && root ? [`data.root=${root}`] : [`data.source=${f.synthetic}`];
}

/** An experiment notebook: the runner's experiment file per profile, on `family`. */
function experimentEntry(family: Family, files: Record<ProfileName, string>, profile: ProfileName, env: Record<string, string | undefined>): Entry {
  const data = familyData(family, profile, env);
  return { config: files[profile], set: profile === 'smoke' ? [...data, ...SWEEP_SMOKE] : data, params: {} };
}

const ABLATION_FILES = (family: Family): Record<ProfileName, string> => ({ smoke: 'experiments/smoke.yaml', mini: `experiments/${family}-mini.yaml`, paper: `experiments/${family}.yaml` });

const ENTRIES: Record<NotebookId, (profile: ProfileName, env: Record<string, string | undefined>) => Entry> = {
  quickstart: (p) => SHORT[p],
  autoencoder: (p) => SHORT[p],
  'short-video': (p) => SHORT[p],
  metrics: (p) => METRICS[p],
  'text-to-video': (p) => T2V[p],
  shapes: (p) => SHAPES[p],
  'long-video': (p, env) => experimentEntry('sky', { smoke: 'experiments/smoke.yaml', mini: 'experiments/long-sky.yaml', paper: 'experiments/sky.yaml' }, p, env),
  'ablation-ucf101': (p, env) => experimentEntry('ucf101', ABLATION_FILES('ucf101'), p, env),
  'ablation-sky': (p, env) => experimentEntry('sky', ABLATION_FILES('sky'), p, env),
  'ablation-taichi': (p, env) => experimentEntry('taichi', ABLATION_FILES('taichi'), p, env),
};

/** The family of an experiment notebook (null for the others). */
function familyOf(notebook: NotebookId): string | null {
  return notebook === 'long-video' ? 'sky' : notebook.startsWith('ablation-') ? notebook.slice('ablation-'.length) : null;
}

/** A profile's output root: $LVDM_NOTEBOOK_RUNS (default runs/notebooks) / <profile>. */
function runsRoot(profile: ProfileName, env: Record<string, string | undefined>): string {
  return path.join(env.LVDM_NOTEBOOK_RUNS || path.join('runs', 'notebooks'), profile);
}

/**
 * The settings of `notebook` under `profile` (default: LVDM_PROFILE). Experiment notebooks get one
 * run folder per family and experiment file, so notebooks running the same experiment (04 and 06
 * in smoke) share finished tasks.
 */
export function notebookSettings(notebook: NotebookId, profile: ProfileName = profileName(), env: Record<string, string | undefined> = process.env): NotebookSettings {
  const make = ENTRIES[notebook];
  if (!make) throw new Error(`unknown notebook '${String(notebook)}' (expected one of ${NOTEBOOKS.join(', ')})`);
  const entry = make(profile, env);
  const runsDir = runsRoot(profile, env);
  const family = familyOf(notebook);
  const outDir = path.join(runsDir, family ? `${family}-${path.basename(entry.config, '.yaml')}` : notebook);
  return { notebook, profile, config: entry.config, set: [...entry.set], params: { ...entry.params }, runsDir, outDir };
}

/** Notebook 10's ucf section: the settings of the shipped ucf short model under `profile` (output folder <runsDir>/shapes-ucf-shipped). */
export function ucfShippedSettings(profile: ProfileName = profileName(), env: Record<string, string | undefined> = process.env): NotebookSettings {
  const entry = UCF_SHIPPED[profile];
  const runsDir = runsRoot(profile, env);
  return { notebook: 'shapes', profile, config: entry.config, set: [...entry.set], params: { ...entry.params }, runsDir, outDir: path.join(runsDir, 'shapes-ucf-shipped') };
}

/** The ablation notebooks' fast path: the shipped long-video models of the notebook's family under `profile` (output folder <runsDir>/<family>-shipped). */
export function shippedLongSettings(notebook: 'ablation-ucf101' | 'ablation-sky' | 'ablation-taichi', profile: ProfileName = profileName(), env: Record<string, string | undefined> = process.env): NotebookSettings {
  const family = notebook.startsWith('ablation-') ? (familyOf(notebook) as Family) : null;
  if (!family || !(family in FAMILIES)) throw new Error(`shippedLongSettings: '${String(notebook)}' is not an ablation notebook (expected ablation-ucf101, ablation-sky or ablation-taichi)`);
  const runsDir = runsRoot(profile, env);
  return { notebook, profile, config: FAMILIES[family].shippedLong, set: [...SHIPPED_LONG_SETS[profile]], params: {}, runsDir, outDir: path.join(runsDir, `${family}-shipped`) };
}
