/**
 * How much of a family's clips moves, as the pixel motion weight sees it (issue 12; RESULTS.md "Ucf
 * fs2: an autoencoder weighted towards what moves"): quantiles of m = the largest colour change of
 * a pixel from its clip's mean frame, in [-1, 1] units (lib/nn/motion-weights.ts), over training
 * clips of a stage's data, and for each threshold tau the share of pixels above it and the mean
 * excess max(m - tau, 0), from which a motion_weight lambda follows: moving pixels weigh
 * 1 + lambda * excess / share on average.
 *   node --import tsx experiments/pixel-motion-stats.ts --experiment experiments/ucf-synthetic-fs2-ae-motion.yaml [--stage ae] [--clips 64] [--tau 0.1,0.25,0.4]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadExperiment } from '../lib/experiments/resolve';
import { motionMagnitude } from '../lib/nn/motion-weights';
import { datasetFromConfig } from '../data/from-config';
import { ClipLoader } from '../data/loader';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { experiment: { type: 'string' }, stage: { type: 'string' }, clips: { type: 'string' }, tau: { type: 'string' } } });
  if (!values.experiment) throw new Error('pixel-motion-stats: --experiment FILE is required');
  const stageName = values.stage ?? 'ae';
  const clips = Number(values.clips ?? 64);
  if (!Number.isInteger(clips) || clips < 1) throw new Error(`pixel-motion-stats: --clips must be a positive integer, got '${values.clips}'`);
  const taus = (values.tau ?? '0.1,0.25,0.4').split(',').map(Number);
  const { experiment } = loadExperiment(values.experiment);
  const stage = experiment.stages[stageName] as { data?: Parameters<typeof datasetFromConfig>[0] } | undefined;
  if (!stage?.data) throw new Error(`pixel-motion-stats: ${values.experiment} has no stage '${stageName}' with data (stages: ${Object.keys(experiment.stages).join(', ')})`);
  await initBackend({ quiet: true });
  const loader = new ClipLoader(datasetFromConfig(stage.data, 'train', experiment.seed ?? 0), { batchSize: Math.min(16, clips), seed: 3 });
  const m: number[] = [];
  for (let seen = 0; seen < clips; ) {
    const b = await loader.next();
    const x = tf.tensor5d(b.video, [b.batchSize, b.frames, b.height, b.width, 3]);
    const mt = motionMagnitude(x, 'max');
    for (const v of mt.dataSync()) m.push(v);
    tf.dispose([x, mt]);
    seen += b.batchSize;
  }
  loader.close();
  m.sort((a, b) => a - b);
  const q = (p: number): string => m[Math.floor(p * (m.length - 1))].toFixed(3);
  console.log(`${values.experiment}, stage ${stageName}: ${clips} training clips, ${m.length} pixels`);
  console.log(`m quantiles: median ${q(0.5)}, 90% ${q(0.9)}, 95% ${q(0.95)}, 99% ${q(0.99)}, max ${q(1)}`);
  console.log('| tau | share of pixels with m > tau | mean excess max(m - tau, 0) |\n|---|---|---|');
  for (const tau of taus) {
    let above = 0;
    let excess = 0;
    for (const v of m) {
      if (v > tau) above++;
      excess += Math.max(v - tau, 0);
    }
    console.log(`| ${tau} | ${((100 * above) / m.length).toFixed(2)}% | ${(excess / m.length).toFixed(4)} |`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
