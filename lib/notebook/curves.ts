/** Loss curves of training run folders (their metrics.jsonl), for lib/plots' lossCurvesFigure. */
import * as path from 'node:path';
import { readJsonl } from '../io/atomic';
import { METRICS_LOG } from '../train/loop';
import type { LossCurve } from '../experiments/types';

/** The `key` column of a run folder's metrics.jsonl (one point per logged step), named `stage`. */
export function readLossCurve(runDir: string, stage: string, key = 'loss'): LossCurve {
  const [curve] = readLogCurves(runDir, [key]);
  if (!curve) throw new Error(`${path.join(runDir, METRICS_LOG)}: no '${key}' values logged`);
  return { ...curve, stage };
}

/** The logged columns `keys` of a run folder that have values (each named by its key). */
export function readLogCurves(runDir: string, keys: string[]): LossCurve[] {
  const rows = readJsonl(path.join(runDir, METRICS_LOG)) as Record<string, unknown>[];
  return keys
    .map((key) => {
      const logged = rows.filter((r) => typeof r.step === 'number' && typeof r[key] === 'number');
      return { stage: key, steps: logged.map((r) => r.step as number), loss: logged.map((r) => r[key] as number) };
    })
    .filter((c) => c.steps.length > 0);
}
