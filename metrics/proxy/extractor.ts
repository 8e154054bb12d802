/**
 * The `synthetic-motion` proxy feature extractor: MotionNet (metrics/proxy/model.ts) trained on
 * the synthetic video families, shipped as metrics/proxy/synthetic-motion.safetensors and
 * reproduced by metrics/proxy/train.ts. Metrics computed with it are named fvd_proxy / kvd_proxy:
 * they rank models on this project's synthetic data and are not comparable with I3D FVD.
 *
 * Preprocessing: every frame is box-filtered by the integer factor floor(min(H, W) / 32) (to avoid
 * aliasing from large frames), resized bilinearly (half-pixel) to 32 x 32, and mapped to [-1, 1].
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadSafetensors } from '../../lib/io/safetensors';
import { NamedArray } from '../../lib/nn/params';
import { FeatureExtractor, runOnClips } from '../extract';
import { fileSha256 } from '../i3d/weights';
import { axisPlan } from '../preprocess';
import { MotionNet, PROXY_CLASSES, PROXY_SIZE, createMotionNet } from './model';
import { ParamStore } from '../../lib/nn/params';

export const PROXY_EXTRACTORS: Record<string, { file: string; description: string }> = {
  'synthetic-motion': {
    file: path.join(__dirname, 'synthetic-motion.safetensors'),
    description: 'MotionNet trained on synthetic videos (12 synthetic-UCF actions, shapes/sky/taichi, shuffled frames); 128-d features',
  },
};

/** uint8 clip [T, H, W, 3] -> float32 [T, 32, 32, 3] in [-1, 1] (box prefilter, half-pixel bilinear). */
export function proxyPreprocess(video: Uint8Array, t: number, h: number, w: number, out?: Float32Array, offset = 0): Float32Array {
  const s = PROXY_SIZE;
  if (video.length !== t * h * w * 3) throw new Error(`proxyPreprocess: ${video.length} bytes do not make a ${t}x${h}x${w}x3 clip`);
  const f = Math.max(1, Math.floor(Math.min(h, w) / s));
  const bh = Math.floor(h / f);
  const bw = Math.floor(w / f);
  const py = axisPlan(bh, s, 'half-pixel');
  const px = axisPlan(bw, s, 'half-pixel');
  const target = out ?? new Float32Array(t * s * s * 3);
  const box = new Float64Array(bh * bw * 3);
  const inv = 1 / (f * f);
  for (let k = 0; k < t; k++) {
    const fb = k * h * w * 3;
    box.fill(0);
    for (let y = 0; y < bh * f; y++) {
      const by = Math.floor(y / f);
      for (let x = 0; x < bw * f; x++) {
        const bx = Math.floor(x / f);
        const i = fb + (y * w + x) * 3;
        const o = (by * bw + bx) * 3;
        box[o] += video[i];
        box[o + 1] += video[i + 1];
        box[o + 2] += video[i + 2];
      }
    }
    const ob = offset + k * s * s * 3;
    for (let y = 0; y < s; y++) {
      const r0 = py.lo[y] * bw * 3;
      const r1 = py.hi[y] * bw * 3;
      const ly = py.frac[y];
      for (let x = 0; x < s; x++) {
        const c0 = px.lo[x] * 3;
        const c1 = px.hi[x] * 3;
        const lx = px.frac[x];
        for (let c = 0; c < 3; c++) {
          const top = box[r0 + c0 + c] * (1 - lx) + box[r0 + c1 + c] * lx;
          const bot = box[r1 + c0 + c] * (1 - lx) + box[r1 + c1 + c] * lx;
          target[ob + (y * s + x) * 3 + c] = ((top * (1 - ly) + bot * ly) * inv * 2) / 255 - 1;
        }
      }
    }
  }
  return target;
}

export class ProxyExtractor implements FeatureExtractor {
  readonly metricSuffix = '_proxy';
  readonly featureDim: number;
  constructor(
    readonly name: string,
    private readonly store: ParamStore,
    private readonly net: MotionNet,
    private readonly meta: Record<string, unknown>,
    readonly batchSize = 8,
  ) {
    this.featureDim = net.featureDim;
  }
  describe(): Record<string, unknown> {
    return { extractor: this.name, ...this.meta, input_size: PROXY_SIZE, resize: 'box prefilter + half-pixel bilinear', geometry: 'stretch', value_range: '[-1, 1]' };
  }
  async extract(clips: Uint8Array, b: number, t: number, h: number, w: number): Promise<Float32Array> {
    return runOnClips(clips, b, t, h, w, PROXY_SIZE, (clip, out, offset) => proxyPreprocess(clip, t, h, w, out, offset), (x) => this.net.features(x)); // [B, 128]
  }
  dispose(): void {
    this.store.dispose();
  }
}

/** Loads a MotionNet weights file (as written by metrics/proxy/train.ts). */
export function loadMotionNet(file: string): { store: ParamStore; net: MotionNet; metadata: Record<string, string>; sha256: string } {
  if (!fs.existsSync(file)) throw new Error(`${file}: proxy weights not found; reproduce them with: node --import tsx metrics/proxy/train.ts (see metrics/README.md)`);
  const { tensors, metadata } = loadSafetensors(file);
  const classes = metadata.classes ? (JSON.parse(metadata.classes) as string[]) : null;
  if (!classes || classes.join('|') !== PROXY_CLASSES.join('|')) throw new Error(`${file}: class list in the metadata does not match this version of MotionNet`);
  const { store, net } = createMotionNet(0);
  const values = new Map<string, NamedArray>();
  for (const [k, t] of tensors) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${file}: tensor '${k}' is ${t.dtype}, expected F32`);
    values.set(k, { shape: t.shape, data: t.data });
  }
  try {
    store.load(values, { strict: true, source: file });
  } catch (e) {
    store.dispose();
    throw e;
  }
  return { store, net, metadata, sha256: fileSha256(file) };
}

export function loadProxyExtractor(name: string, opts: { batchSize?: number; file?: string } = {}): ProxyExtractor {
  const entry = PROXY_EXTRACTORS[name];
  if (!entry) throw new Error(`unknown proxy extractor '${name}' (known: ${Object.keys(PROXY_EXTRACTORS).join(', ')})`);
  const file = opts.file ?? entry.file;
  const { store, net, metadata, sha256 } = loadMotionNet(file);
  const meta = {
    weights_file: path.relative(process.cwd(), file) || file,
    weights_sha256: sha256,
    description: entry.description,
    trained: metadata.train_command ?? 'unknown',
    heldout_accuracy: metadata.heldout_accuracy ? Number(metadata.heldout_accuracy) : null,
  };
  return new ProxyExtractor(name, store, net, meta, opts.batchSize ?? 8);
}
