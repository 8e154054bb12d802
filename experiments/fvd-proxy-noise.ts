/**
 * Does pixel noise lower FVD_proxy? (experiments/RESULTS.md, the wider short model's curve, where
 * FVD_proxy was lowest for cluttered early samples.) Adds i.i.d. N(0, sigma^2) noise on the 0-255
 * scale (seeded) to every frame of a sample set and measures FVD_proxy (synthetic-motion features,
 * 16-frame clips) against the first 64 real clips, once per sigma.
 *
 *   node --import tsx experiments/fvd-proxy-noise.ts REAL.npz FAKE.npz OUT_DIR SIGMA...
 *   e.g. REAL = runs/shapes-c64/store/real/<key>/real.npz, FAKE = runs/shapes-c64/quality-curve/step-6000/videos.npz
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { readNpz, writeNpz } from '../lib/io/npy';
import { openExtractor } from '../lib/experiments/real';
import { protocolFor } from '../lib/experiments/execute';
import { computeMetrics } from '../metrics/evaluate';
import { Rng } from '../lib/nn/rng';

async function main(): Promise<void> {
  const [realNpz, fakeNpz, outDir, ...sigmas] = process.argv.slice(2);
  if (!realNpz || !fakeNpz || !outDir || sigmas.length === 0) throw new Error('usage: fvd-proxy-noise.ts REAL.npz FAKE.npz OUT_DIR SIGMA... (sigmas on the 0-255 scale)');
  for (const sg of sigmas) if (!(Number(sg) >= 0)) throw new Error(`fvd-proxy-noise.ts: sigma must be a number >= 0, got '${sg}'`);
  await initBackend({ quiet: true });
  const extractor = openExtractor({ name: 'synthetic-motion', i3d: null });
  const arr = readNpz(fakeNpz);
  const v = arr.get('videos') ?? [...arr.values()][0];
  const n = v.shape[0];
  fs.mkdirSync(outDir, { recursive: true });
  for (const sg of sigmas) {
    const sigma = Number(sg);
    const rng = new Rng(7);
    const noise = rng.normalArray(v.data.length);
    const out = new Uint8Array(v.data.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(Number(v.data[i]) + sigma * noise[i])));
    const f = path.join(outDir, `noise-${sigma}.npz`);
    writeNpz(f, { videos: { shape: v.shape, data: out } });
    const m = await computeMetrics({ real: realNpz, fake: f, covariance: 'unbiased', protocol: protocolFor({ window: v.shape[1], n_real: 64, seed: 0 }, n), runs: 1, extractor, cacheDir: null, progress: false, log: () => undefined });
    const names = m.metric_names as { fvd: string };
    console.log(`${path.basename(fakeNpz)} sigma ${sigma}: fvd_proxy ${Number(m[names.fvd]).toFixed(1)}`);
  }
  extractor.dispose();
}
main().catch((e) => { console.error(e); process.exit(1); });
