/**
 * `lvdm ship RUN_DIR`: a run's finished training stages into the shipped models (models/store,
 * models/manifest.json), which `lvdm run` and `lvdm demo` reuse instead of training.
 */
import { Command } from '../types';
import { flag, list, num, str } from '../args';
import { DEFAULT_MAX_MB, shipRun } from '../../experiments/ship';
import { SHIP_PRECISIONS, type ShipPrecision } from '../../experiments/shipped';

export const command: Command = {
  name: 'ship',
  summary: "copy a run's finished training stages into the shipped models (models/) that lvdm run reuses",
  description: `Copies each finished training stage (autoencoder, short, prediction, interpolation) of
RUN_DIR into models/store/<kind>/<key16>/: only the files later tasks read (final weights,
config.json, eval.json, metrics.jsonl, DONE), not the training checkpoint or latent caches; each
folder is written to a temp folder and renamed. models/manifest.json lists every shipped stage
with its files (bytes, sha256), training time, evaluation numbers and the 'lvdm run' command that
trains it again. A stage shipped before from the same experiment under another key is replaced.
Weights ship in float16 by default (--precision fp16: the trained float32 weights rounded to
nearest, half the bytes, widened back to float32 on load; the manifest records the precision);
--precision int8 stores the kernels (rank >= 2, >= 1024 values, more than 8 input and output
channels) as int8 with one float32 scale per output channel and the rest (biases, norms, the first
and last layers) in float16, about a quarter of the float32 bytes (lib/io/int8.ts);
--precision int4 stores the same kernels as int4, one float16 scale per group of 32 input rows
of each output channel, about an eighth (lib/io/int4.ts; for wide models under the budget);
--precision fp32 ships them unchanged. Prints the sizes and refuses when the shipped models would
exceed --max-mb in all. --drop FILE removes every shipped stage of that experiment file in the same
write (a family retired for another; the limit counts without them); --drop FILE:STAGE[,STAGE]
removes only those stages of it (a model replaced by another experiment's).

Examples:
  lvdm ship runs/shapes
  lvdm ship runs/shapes --stages ae,lvdm --max-mb 20 --dry-run
  lvdm ship runs/taichi-synthetic-long --drop experiments/sky-synthetic-long.yaml   # retire sky to make room
  lvdm ship runs/ucf-fs2-class --stages lvdm --drop experiments/ucf-synthetic-fs2-ae-motion.yaml:lvdm`,
  positionals: true,
  options: {
    stages: { type: 'string', multiple: true, help: 'training stages to ship (comma list; default every finished one)' },
    to: { type: 'string', help: 'models folder (default the repository models/)' },
    'max-mb': { type: 'string', help: `refuse above this many MB (10^6 bytes) of shipped models in all (default ${DEFAULT_MAX_MB})` },
    precision: { type: 'string', help: "weights precision: 'fp16' (default, half the bytes), 'int8' (kernels in int8, about a quarter), 'int4' (kernels in int4, about an eighth) or 'fp32' (unchanged)" },
    drop: { type: 'string', multiple: true, help: 'remove the shipped stages of this experiment file, or FILE:STAGE[,STAGE] only those (repeatable)' },
    'dry-run': { type: 'boolean', help: 'print the sizes, write nothing' },
  },
  async run(values, positionals) {
    const runDir = positionals[0];
    if (!runDir || positionals.length > 1) throw new Error('usage: lvdm ship RUN_DIR [--stages a,b] [--to models] [--max-mb 20] (one run folder)');
    const maxMb = num(values, 'max-mb', DEFAULT_MAX_MB)!;
    if (!(maxMb > 0)) throw new Error(`--max-mb: expected a positive number, got ${maxMb}`);
    const stages = list(values, 'stages').flatMap((s) => s.split(',')).filter((s) => s !== '');
    const precision = str(values, 'precision') ?? 'fp16';
    if (!(SHIP_PRECISIONS as readonly string[]).includes(precision)) throw new Error(`--precision: expected one of ${SHIP_PRECISIONS.join(', ')}, got '${precision}'`);
    shipRun(runDir, { stages, to: str(values, 'to'), maxMb, precision: precision as ShipPrecision, drop: list(values, 'drop'), dryRun: flag(values, 'dry-run') });
    return 0;
  },
};
