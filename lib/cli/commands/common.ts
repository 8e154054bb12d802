/** Options shared by the training commands, and how they map onto the config. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OptionSpec, ParsedValues } from '../types';
import { flag, list, requireStr, str } from '../args';
import { loadConfig } from '../../config/load';
import { ExperimentConfig } from '../../config/schema';
import { DEFAULT_MODELS_DIR } from '../../experiments/shipped';

export const TRAIN_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', short: 'c', help: 'experiment YAML file (validated against lib/config/schema.ts)' },
  out: { type: 'string', short: 'o', help: 'run folder (default runs/<config name>/<stage>)' },
  resume: { type: 'boolean', help: 'continue the run in --out from its last checkpoint' },
  force: { type: 'boolean', help: 'delete an existing run in --out and start over' },
  set: { type: 'string', multiple: true, help: 'override a config key, e.g. --set autoencoder.train.steps=100 (repeatable)' },
  quiet: { type: 'boolean', help: 'no progress bar' },
};

export interface TrainArgs {
  config: ExperimentConfig;
  configFile: string;
  outDir: string;
  resume: boolean;
  force: boolean;
  progress: boolean;
}

export function trainArgs(values: ParsedValues, stage: string): TrainArgs {
  const configFile = requireStr(values, 'config');
  const config = loadConfig(configFile, list(values, 'set'));
  return {
    config,
    configFile,
    outDir: str(values, 'out') ?? path.join('runs', config.name, stage),
    resume: flag(values, 'resume'),
    force: flag(values, 'force'),
    progress: !flag(values, 'quiet'),
  };
}

/** `lvdm run` / `lvdm demo`: shipped models (lib/experiments/shipped.ts) or training from scratch. */
export const SHIPPED_OPTIONS: Record<string, OptionSpec> = {
  'from-scratch': { type: 'boolean', help: 'train every stage here instead of copying the shipped models (models/) whose key matches' },
  models: { type: 'string', help: 'folder of shipped models to reuse (default the repository models/)' },
};

/** The shipped-models folder the options name (null: --from-scratch). */
export function modelsOption(values: ParsedValues): string | null {
  if (flag(values, 'from-scratch')) {
    if (str(values, 'models') !== undefined) throw new Error('--from-scratch and --models exclude each other');
    return null;
  }
  const given = str(values, 'models');
  if (given !== undefined && !fs.existsSync(given)) throw new Error(`--models: no such folder '${given}'`);
  return path.resolve(given ?? DEFAULT_MODELS_DIR);
}
