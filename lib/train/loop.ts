/**
 * The training loop shared by every stage: run folders that are never silently overwritten,
 * resume from the last checkpoint, JSONL metrics log, progress bar, non-finite-loss stop.
 * A stage supplies a `Trainer` (its step and its checkpointable state); the loop owns the rest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NamedArray } from '../nn/params';
import { appendJsonl, readJsonl, writeFileAtomic } from '../io/atomic';
import { loadCheckpoint, saveCheckpoint, CheckpointMeta } from './checkpoint';
import { ProgressBar } from './progress';
import { withPrecision, type Precision } from '../backend/precision';

export interface Trainer {
  readonly kind: string;
  /** Performs optimisation step `step` (0-based); returns scalar logs, including `loss`. */
  trainStep(step: number): Promise<Record<string, number>>;
  checkpointTensors(): Map<string, NamedArray>;
  checkpointState(): Record<string, unknown>;
  /** Restores tensors and state written by a checkpoint taken after `step` steps. */
  restore(tensors: Map<string, NamedArray>, state: Record<string, unknown>, step: number, source: string): void;
}

export const LAST_CHECKPOINT = 'checkpoint-last.safetensors';
export const METRICS_LOG = 'metrics.jsonl';

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly lastGoodStep: number | null, readonly logs: Record<string, number>) {
    super(
      `non-finite loss at step ${step} (${Object.entries(logs)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}); ` + (lastGoodStep === null ? 'no checkpoint was written yet' : `the last good checkpoint (step ${lastGoodStep}) is kept`),
    );
    this.name = 'NonFiniteLossError';
  }
}

/**
 * Prepares a run folder. An existing non-empty folder needs `resume` (continue it) or `force`
 * (delete it and start over); otherwise this throws, so a run never overwrites another's outputs.
 * Returns the checkpoint to resume from, if any.
 */
export function prepareRunDir(outDir: string, opts: { resume?: boolean; force?: boolean }): string | null {
  if (opts.resume && opts.force) throw new Error('--resume and --force are mutually exclusive');
  const exists = fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0;
  if (exists && opts.force) fs.rmSync(outDir, { recursive: true, force: true });
  else if (exists && !opts.resume) {
    const files = fs.readdirSync(outDir).slice(0, 5).join(', ');
    throw new Error(`${outDir}: output folder already holds a run (${files}); pass --resume to continue it or --force to overwrite it`);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const ckpt = path.join(outDir, LAST_CHECKPOINT);
  if (opts.resume && !opts.force) {
    if (fs.existsSync(ckpt)) return ckpt;
    if (exists) throw new Error(`${outDir}: --resume given but the folder has no ${LAST_CHECKPOINT} to resume from`);
  }
  return null;
}

export interface TrainLoopOptions {
  outDir: string;
  totalSteps: number;
  ckptEvery: number;
  logEvery: number;
  config: unknown;
  resume?: boolean;
  force?: boolean;
  label?: string;
  progress?: boolean;
  /** Called after every checkpoint write (e.g. to export weights). */
  onCheckpoint?: (step: number, file: string) => void;
  /** Called every logEvery steps with the averaged logs. */
  onLog?: (step: number, logs: Record<string, number>) => void;
  /** Precision of the steps' convolutions (`train.precision`; unset = fp32; lib/backend/precision.ts). */
  precision?: Precision;
}

/** The run-level flags every stage passes through (from the CLI or a notebook). */
export interface RunFlags {
  outDir: string;
  config: unknown;
  resume?: boolean;
  force?: boolean;
  progress?: boolean;
}

/** Loop options from a config's `train` section (steps, ckpt_every, log_every) and the run's flags. */
export function trainLoopOptions(train: { steps: number; ckpt_every: number; log_every: number; precision?: Precision }, run: RunFlags, label: string): TrainLoopOptions {
  return {
    outDir: run.outDir,
    config: run.config,
    resume: run.resume,
    force: run.force,
    progress: run.progress,
    totalSteps: train.steps,
    ckptEvery: train.ckpt_every,
    logEvery: train.log_every,
    precision: train.precision,
    label,
  };
}

export interface TrainLoopResult {
  /** Steps completed in total (including those before a resume). */
  step: number;
  /** Step the run started from (0, or the resumed checkpoint's). */
  startStep: number;
  checkpoint: string;
  lastLogs: Record<string, number>;
}

export async function runTraining(trainer: Trainer, opts: TrainLoopOptions): Promise<TrainLoopResult> {
  return withPrecision(opts.precision, () => trainingLoop(trainer, opts), `${opts.label ?? trainer.kind}: train.precision`);
}

async function trainingLoop(trainer: Trainer, opts: TrainLoopOptions): Promise<TrainLoopResult> {
  const resumeFrom = prepareRunDir(opts.outDir, opts);
  const ckptFile = path.join(opts.outDir, LAST_CHECKPOINT);
  const logFile = path.join(opts.outDir, METRICS_LOG);
  let startStep = 0;
  const acc: Record<string, number> = {};
  let accN = 0;
  if (resumeFrom) {
    const { meta, tensors } = loadCheckpoint(resumeFrom, trainer.kind);
    trainer.restore(tensors, meta.state, meta.step, resumeFrom);
    startStep = meta.step;
    if (meta.loop) {
      Object.assign(acc, meta.loop.acc);
      accN = meta.loop.accN;
    }
    // Drop log lines written after the checkpoint (they will be recomputed identically).
    const kept = readJsonl(logFile).filter((r) => (r as { step?: number }).step !== undefined && (r as { step: number }).step <= startStep);
    writeFileAtomic(logFile, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    process.stderr.write(`[lvdm] resumed ${opts.outDir} at step ${startStep}\n`);
  } else {
    writeFileAtomic(path.join(opts.outDir, 'config.json'), JSON.stringify(opts.config, null, 2) + '\n');
  }
  let lastGood: number | null = resumeFrom ? startStep : null;
  const save = (step: number): void => {
    const meta: Omit<CheckpointMeta, 'version' | 'created'> = { kind: trainer.kind, step, config: opts.config, state: trainer.checkpointState(), loop: { acc: { ...acc }, accN } };
    saveCheckpoint(ckptFile, trainer.checkpointTensors(), meta);
    lastGood = step;
    opts.onCheckpoint?.(step, ckptFile);
  };
  const bar = new ProgressBar(opts.label ?? trainer.kind, opts.totalSteps, startStep, opts.progress !== false);
  let lastLogs: Record<string, number> = {};
  const t0 = Date.now();
  for (let step = startStep; step < opts.totalSteps; step++) {
    const logs = await trainer.trainStep(step);
    if (!Object.values(logs).every(Number.isFinite)) throw new NonFiniteLossError(step, lastGood, logs);
    for (const [k, v] of Object.entries(logs)) acc[k] = (acc[k] ?? 0) + v;
    accN += 1;
    const done = step + 1;
    bar.update(done, logs);
    lastLogs = logs;
    if (done % opts.logEvery === 0 || done === opts.totalSteps) {
      const avg: Record<string, number> = {};
      for (const [k, v] of Object.entries(acc)) avg[k] = v / accN;
      appendJsonl(logFile, { step: done, ...avg, wall_s: (Date.now() - t0) / 1000 });
      opts.onLog?.(done, avg);
      for (const k of Object.keys(acc)) delete acc[k];
      accN = 0;
    }
    if (done % opts.ckptEvery === 0 || done === opts.totalSteps) save(done);
  }
  if (startStep >= opts.totalSteps && !fs.existsSync(ckptFile)) save(startStep);
  return { step: Math.max(startStep, opts.totalSteps), startStep, checkpoint: ckptFile, lastLogs };
}
