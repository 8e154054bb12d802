/**
 * Real clips for the metrics and the floors every generated result is read against (moved here
 * from experiments/long-sky.ts): held-out real clips of `window` frames, a second held-out set of
 * the generated set's size (real vs real), and that set passed through the autoencoder
 * (reconstruction floor: the share of the metric the autoencoder alone costs).
 */
import * as tf from '@tensorflow/tfjs';
import { DataConfig } from '../config/schema';
import { NpzStreamWriter, readNpz, writeNpz } from '../io/npy';
import { floatToUint8 } from '../io/image';
import { clipsToTensor, loadAutoencoder } from '../autoencoder/io';
import { Rng } from '../nn/rng';
import { datasetFromConfig } from '../../data/from-config';
import { FeatureExtractor, I3DExtractor } from '../../metrics/extract';
import { I3D } from '../../metrics/i3d/model';
import { loadI3DWeights } from '../../metrics/i3d/weights';
import { loadProxyExtractor } from '../../metrics/proxy/extractor';

/** n clips of `frames` frames from held-out videos (content seed `seed`, seeded starts), as one uint8 npz ('videos'). */
export async function writeRealClips(data: DataConfig, baseSeed: number, file: string, n: number, frames: number, seed: number): Promise<void> {
  const ds = datasetFromConfig({ ...data, frames }, 'heldout', baseSeed + seed);
  if (ds.size < n) throw new Error(`${data.source}: ${ds.size} held-out videos, ${n} real clips requested`);
  const out = new NpzStreamWriter(file);
  out.beginArray('videos', 'uint8', [n, frames, ds.height, ds.width, 3]);
  const rng = new Rng(seed).fork('real-clips');
  for (let i = 0; i < n; i++) out.writeRows((await ds.get(i, rng.fork(`clip-${i}`))).video);
  out.endArray();
  out.close();
}

/** Encodes (posterior mean) and decodes every clip of `src` with the autoencoder; writes uint8 clips. */
export async function writeReconstructed(aeFile: string, src: string, file: string): Promise<void> {
  const loaded = loadAutoencoder(aeFile);
  try {
    const a = readNpz(src).get('videos')!;
    const [n, t, h, w] = a.shape;
    const per = t * h * w * 3;
    const out = new Uint8Array(n * per);
    for (let i = 0; i < n; i++) {
      const x = clipsToTensor([(a.data as Uint8Array).subarray(i * per, (i + 1) * per)], t, h, w);
      const p = loaded.ae.encode(x);
      const y = loaded.ae.decode(p.mean);
      out.set(floatToUint8(y.dataSync()), i * per);
      tf.dispose([x, p.mean, p.logvar, y]);
    }
    writeNpz(file, { videos: { shape: [n, t, h, w, 3], data: out } });
  } finally {
    loaded.dispose();
  }
}

/** The metric's features as an experiment names them: a proxy by name, or I3D from a weights file (TF preset). */
export interface FeatureChoice {
  name: string;
  i3d: { file: string; sha256: string } | null;
}

export function openExtractor(f: FeatureChoice): FeatureExtractor {
  if (f.name !== 'i3d') return loadProxyExtractor(f.name, { batchSize: 8 });
  if (!f.i3d) throw new Error("evaluate.features 'i3d' needs evaluate.i3d (the weights file)");
  // The original FVD code's preprocessing (lvdm metrics --preset tf).
  return new I3DExtractor(new I3D(loadI3DWeights(f.i3d.file), { eps: 1e-3 }), { convention: 'tf1-legacy', geometry: 'stretch', size: 224 }, 1);
}
