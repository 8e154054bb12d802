/**
 * Metrics benchmarks: I3D feature extraction at the FVD input size (16 x 224 x 224; random
 * weights of the real shapes, so the timing is that of the real network), the FVD preprocessing,
 * and the float64 distances at I3D size (2048 x 400 per set).
 */
import * as tf from '@tensorflow/tfjs';
import { BenchModule, BenchResult, timeMs } from './types';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { I3D } from '../metrics/i3d/model';
import { randomI3DWeights } from '../metrics/i3d/weights';
import { I3DExtractor } from '../metrics/extract';
import { preprocessClip } from '../metrics/preprocess';
import { frechetDistance } from '../metrics/frechet';
import { kvd } from '../metrics/kvd';
import { FeatureMatrix } from '../metrics/features';
import { PROXY_EXTRACTORS, loadProxyExtractor } from '../metrics/proxy/extractor';
import * as fs from 'node:fs';

function randomFeatures(seed: number, n: number, d: number): FeatureMatrix {
  const rng = new Rng(seed);
  const z = rng.normalArray(n * d);
  // Correlated features: x = z + 0.5 * (z shifted by one column).
  const data = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = z[i * d + j] + 0.5 * z[i * d + ((j + 1) % d)];
  return { n, d, data };
}

export const run: BenchModule = async (opts) => {
  await initBackend({ quiet: true });
  const out: BenchResult[] = [];
  const reps = opts.quick ? 1 : 3;

  // I3D forward, 16 x 224 x 224, batch 1 and 2, from uint8 clips (preprocessing included).
  const weights = randomI3DWeights(0);
  let params = 0;
  for (const u of weights.units.values()) for (const a of [u.w, u.beta, u.mean, u.variance, u.bias]) params += a ? a.length : 0;
  const model = new I3D(weights);
  const t = 16;
  const src = 256;
  const clips = new Uint8Array(2 * t * src * src * 3).map((_, i) => (i * 2654435761) >>> 24);
  const timings: Record<string, number> = {};
  const extra: Record<string, number | string> = {};
  for (const b of opts.quick ? [1] : [1, 2]) {
    const ex = new I3DExtractor(model, { convention: 'tf1-legacy', size: 224 }, b);
    const ms = await timeMs(() => ex.extract(clips.subarray(0, b * t * src * src * 3), b, t, src, src), reps, 1);
    timings[`extract_batch${b}_ms`] = ms;
    extra[`clips_per_s_batch${b}`] = (1000 * b) / ms;
  }
  const prepMs = await timeMs(() => preprocessClip(clips.subarray(0, t * src * src * 3), t, src, src, { convention: 'tf1-legacy' }), reps, 1);
  timings.preprocess_clip_ms = prepMs;
  const x = tf.zeros([1, t, 224, 224, 3]) as tf.Tensor5D;
  timings.forward_batch1_ms = await timeMs(() => {
    const y = model.forward(x);
    y.dataSync();
    y.dispose();
  }, reps, 0);
  x.dispose();
  model.dispose();
  out.push({
    name: 'i3d-features-16x224x224',
    params,
    timings_ms: timings,
    extra: { ...extra, input: '16 x 224 x 224 x 3 from 256 x 256 uint8', backend: tf.getBackend() },
    note: 'random weights with the real shapes; clips/s includes the bilinear resize and [-1, 1] scaling',
  });

  // Proxy extractor (synthetic-motion), 16 frames of 64 x 64.
  if (fs.existsSync(PROXY_EXTRACTORS['synthetic-motion'].file)) {
    const px = loadProxyExtractor('synthetic-motion', { batchSize: 8 });
    const pclips = new Uint8Array(8 * 16 * 64 * 64 * 3).map((_, i) => (i * 2654435761) >>> 24);
    const pms = await timeMs(() => px.extract(pclips, 8, 16, 64, 64), reps, 1);
    px.dispose();
    out.push({ name: 'proxy-features-16x64x64', timings_ms: { extract_batch8_ms: pms }, extra: { clips_per_s: (8 * 1000) / pms } });
  }

  // Distances at I3D size.
  const n = opts.quick ? 1024 : 2048;
  const xs = randomFeatures(1, n, 400);
  const ys = randomFeatures(2, n, 400);
  const fdMs = await timeMs(() => frechetDistance(xs, ys), reps, 1);
  const kvdMs = await timeMs(() => kvd(xs, ys), opts.quick ? 1 : 2, 0);
  out.push({ name: `fvd-kvd-distances-${n}x400`, timings_ms: { frechet_ms: fdMs, kvd_ms: kvdMs }, note: 'float64, exact (Cholesky/QR factors, singular values from the bidiagonal form)' });
  return out;
};
