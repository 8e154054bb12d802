/**
 * Training stages notebooks share: the autoencoder a latent diffusion notebook builds on is
 * trained once per (data, autoencoder, seed) config and profile, in
 * <runsDir>/shared/autoencoder-<key> (runsDir: NotebookSettings.runsDir), and reused by later
 * notebooks and re-runs.
 * A stage counts as done when its weights file exists and its stored config equals the requested one.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExperimentConfig } from '../config/schema';
import { AE_WEIGHTS, trainAutoencoder } from '../autoencoder/pipeline';
import { withLiveTraining } from './progress';

/** 16 hex characters of sha256 over the JSON of `value`. */
export function contentKey(value: unknown): string {
  return crypto.createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The sections of a config that decide the autoencoder's weights. */
function autoencoderPart(config: ExperimentConfig): unknown {
  return { seed: config.seed, data: config.data, autoencoder: config.autoencoder };
}

export function sharedAutoencoderDir(config: ExperimentConfig, runsDir: string): string {
  return path.join(runsDir, 'shared', `autoencoder-${contentKey(autoencoderPart(config))}`);
}

/** Whether `dir` holds weights trained from the same autoencoder-relevant config. */
function autoencoderDone(dir: string, config: ExperimentConfig): boolean {
  const stored = path.join(dir, 'config.json');
  if (!fs.existsSync(path.join(dir, AE_WEIGHTS)) || !fs.existsSync(stored)) return false;
  const prev = JSON.parse(fs.readFileSync(stored, 'utf8')) as ExperimentConfig;
  return JSON.stringify(autoencoderPart(prev)) === JSON.stringify(autoencoderPart(config));
}

/**
 * The autoencoder weights for `config`: reused when trained before under this profile, else
 * trained now (with live progress). Returns the weights file and whether it was trained here.
 */
export async function ensureAutoencoder(config: ExperimentConfig, runsDir: string, log: (m: string) => void = (m) => console.log(m)): Promise<{ weights: string; trained: boolean }> {
  const dir = sharedAutoencoderDir(config, runsDir);
  if (autoencoderDone(dir, config)) {
    log(`autoencoder: reusing ${dir}`);
    return { weights: path.join(dir, AE_WEIGHTS), trained: false };
  }
  const r = await withLiveTraining(() => trainAutoencoder({ config, outDir: dir, force: true, progress: false, log }));
  return { weights: r.weights, trained: true };
}
