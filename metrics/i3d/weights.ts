/**
 * I3D weights from the files users have, in either key layout:
 *
 * - 'pytorch' (TATS / LVDM `i3d_pretrained_400.pt`, piergiaj `rgb_imagenet.pt`, and the
 *   StyleGAN-V detector's state dict, exported to .safetensors or .npz):
 *   `Conv3d_1a_7x7.conv3d.weight` [Cout, Cin, kT, kH, kW], `<unit>.bn.{weight,bias,running_mean,running_var}` [C],
 *   `logits.conv3d.{weight,bias}`. Any prefix before the unit name (`module.`, `i3d.`) is ignored,
 *   as are `num_batches_tracked` counters.
 * - 'tfhub' (variables of `deepmind/i3d-kinetics-400/1`, exported to .npz or .safetensors):
 *   `RGB/inception_i3d/<scope>/conv_3d/w` [kT, kH, kW, Cin, Cout],
 *   `<scope>/batch_norm/{beta,moving_mean,moving_variance}` [1, 1, 1, 1, C] (or [C]),
 *   `Logits/Conv3d_0c_1x1/conv_3d/{w,b}`, including the `Mixed_5b/Branch_2/Conv3d_0a_3x3` typo.
 *   A `:0` suffix and anything before `inception_i3d/` are ignored.
 *
 * Canonical form: per unit, the filter in tfjs/TF layout [kT, kH, kW, Cin, Cout] and BN vectors.
 * Every expected tensor must be present with its exact shape; unknown tensors are errors too (a
 * flow-stream or other checkpoint must not load silently).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { NpyData, readNpz } from '../../lib/io/npy';
import { decodeSafetensors } from '../../lib/io/safetensors';
import { Rng } from '../../lib/nn/rng';
import { UnitSpec, i3dUnits } from './spec';

export type I3DLayout = 'pytorch' | 'tfhub';

export interface UnitWeights {
  /** [kT, kH, kW, Cin, Cout] */
  w: Float32Array;
  /** BN scale; absent in TF-Hub files (Sonnet BN without scale), all ones in TATS files. */
  gamma?: Float32Array;
  beta?: Float32Array;
  mean?: Float32Array;
  variance?: Float32Array;
  /** Logits conv bias. */
  bias?: Float32Array;
}

export interface I3DWeights {
  units: Map<string, UnitWeights>;
  numClasses: number;
  /** Layout the weights were read from. */
  layout: I3DLayout;
  /** Where they came from (file name or '<synthetic>'). */
  source: string;
  /** SHA-256 of the weights file, when read from a file. */
  fileSha256?: string;
  /** SHA-256 over the canonical float32 tensors: identical for the same weights in any layout/format. */
  contentSha256: string;
}

export interface RawTensor {
  shape: number[];
  data: NpyData | Float32Array | Float64Array | Int32Array | Uint8Array;
}

const UNIT_PREFIXES = ['Conv3d_1a_7x7', 'Conv3d_2b_1x1', 'Conv3d_2c_3x3', 'Mixed_', 'logits', 'Logits'];

function toF32(t: RawTensor, key: string): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Float64Array) return Float32Array.from(d);
  throw new Error(`I3D weights: tensor '${key}' has integer data; expected float32`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Decides the key layout from the names. */
export function detectI3DLayout(names: Iterable<string>): I3DLayout {
  let tf = 0;
  let pt = 0;
  for (const n of names) {
    if (n.includes('/conv_3d/') || n.includes('/batch_norm/')) tf++;
    if (n.includes('.conv3d.') || n.includes('.bn.')) pt++;
  }
  if (tf > 0 && pt === 0) return 'tfhub';
  if (pt > 0 && tf === 0) return 'pytorch';
  if (tf > 0 && pt > 0) throw new Error(`I3D weights: keys mix TF-Hub ('/conv_3d/') and PyTorch ('.conv3d.') names`);
  throw new Error(
    `I3D weights: unrecognised key layout; expected PyTorch names like 'Conv3d_1a_7x7.conv3d.weight' or TF-Hub names like 'RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w'`,
  );
}

function normaliseKey(key: string, layout: I3DLayout): string | null {
  let k = key;
  if (layout === 'tfhub') {
    if (k.endsWith(':0')) k = k.slice(0, -2);
    const at = k.indexOf('inception_i3d/');
    if (at >= 0) return k.slice(at + 'inception_i3d/'.length);
  } else if (k.endsWith('num_batches_tracked')) {
    return null;
  }
  // Strip any prefix before the first unit name.
  let best = -1;
  for (const p of UNIT_PREFIXES) {
    const sep = layout === 'tfhub' ? '/' : '.';
    const i = k.startsWith(p) ? 0 : k.indexOf(sep + p);
    if (i === 0) return k;
    if (i > 0 && (best < 0 || i < best)) best = i;
  }
  return best > 0 ? k.slice(best + 1) : k;
}

interface Expected {
  key: string;
  shape: number[];
  field: keyof UnitWeights;
  optional?: boolean;
}

function expectedTensors(u: UnitSpec, layout: I3DLayout): Expected[] {
  const [kt, kh, kw] = u.kernel;
  const c = u.cout;
  if (layout === 'pytorch') {
    const out: Expected[] = [{ key: `${u.name}.conv3d.weight`, shape: [c, u.cin, kt, kh, kw], field: 'w' }];
    if (u.bn)
      out.push(
        { key: `${u.name}.bn.weight`, shape: [c], field: 'gamma', optional: true },
        { key: `${u.name}.bn.bias`, shape: [c], field: 'beta' },
        { key: `${u.name}.bn.running_mean`, shape: [c], field: 'mean' },
        { key: `${u.name}.bn.running_var`, shape: [c], field: 'variance' },
      );
    else out.push({ key: `${u.name}.conv3d.bias`, shape: [c], field: 'bias' });
    return out;
  }
  const out: Expected[] = [{ key: `${u.tfName}/conv_3d/w`, shape: [kt, kh, kw, u.cin, c], field: 'w' }];
  if (u.bn)
    out.push(
      { key: `${u.tfName}/batch_norm/gamma`, shape: [1, 1, 1, 1, c], field: 'gamma', optional: true },
      { key: `${u.tfName}/batch_norm/beta`, shape: [1, 1, 1, 1, c], field: 'beta' },
      { key: `${u.tfName}/batch_norm/moving_mean`, shape: [1, 1, 1, 1, c], field: 'mean' },
      { key: `${u.tfName}/batch_norm/moving_variance`, shape: [1, 1, 1, 1, c], field: 'variance' },
    );
  else out.push({ key: `${u.tfName}/conv_3d/b`, shape: [c], field: 'bias' });
  return out;
}

/** [Cout, Cin, kT, kH, kW] -> [kT, kH, kW, Cin, Cout] */
function torchToTf(w: Float32Array, cout: number, cin: number, kt: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(w.length);
  const sp = kt * kh * kw;
  for (let o = 0; o < cout; o++)
    for (let i = 0; i < cin; i++) {
      const base = (o * cin + i) * sp;
      for (let s = 0; s < sp; s++) out[(s * cin + i) * cout + o] = w[base + s];
    }
  return out;
}

/** [kT, kH, kW, Cin, Cout] -> [Cout, Cin, kT, kH, kW] */
function tfToTorch(w: Float32Array, cout: number, cin: number, kt: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(w.length);
  const sp = kt * kh * kw;
  for (let s = 0; s < sp; s++)
    for (let i = 0; i < cin; i++) {
      const base = (s * cin + i) * cout;
      for (let o = 0; o < cout; o++) out[(o * cin + i) * sp + s] = w[base + o];
    }
  return out;
}

function numClassesOf(keys: Map<string, RawTensor>, layout: I3DLayout, source: string): number {
  const key = layout === 'pytorch' ? 'logits.conv3d.bias' : 'Logits/Conv3d_0c_1x1/conv_3d/b';
  const t = keys.get(key);
  if (!t) throw new Error(`${source}: missing tensor '${key}' (I3D logits bias; ${layout} layout)`);
  if (t.shape.length !== 1) throw new Error(`${source}: tensor '${key}' has shape [${t.shape.join(', ')}], expected [num_classes]`);
  return t.shape[0];
}

/** Canonical I3D weights from a name -> tensor map in either layout (validates everything). */
export function i3dWeightsFromTensors(tensors: Map<string, RawTensor>, source: string, fileSha256?: string): I3DWeights {
  const layout = detectI3DLayout(tensors.keys());
  const keys = new Map<string, RawTensor>();
  const original = new Map<string, string>();
  for (const [k, t] of tensors) {
    const nk = normaliseKey(k, layout);
    if (nk === null) continue;
    if (keys.has(nk)) throw new Error(`${source}: tensors '${original.get(nk)}' and '${k}' both map to '${nk}'`);
    keys.set(nk, t);
    original.set(nk, k);
  }
  const numClasses = numClassesOf(keys, layout, source);
  const units = new Map<string, UnitWeights>();
  const used = new Set<string>();
  for (const u of i3dUnits(numClasses)) {
    const uw: Partial<UnitWeights> = {};
    for (const e of expectedTensors(u, layout)) {
      const t = keys.get(e.key);
      if (!t) {
        if (e.optional) continue;
        throw new Error(`${source}: missing tensor '${e.key}' (I3D unit ${u.name}; ${layout} layout)`);
      }
      used.add(e.key);
      const bnVec = layout === 'tfhub' && e.field !== 'w' && e.field !== 'bias';
      const okShape = sameShape(t.shape, e.shape) || (bnVec && sameShape(t.shape, [u.cout]));
      if (!okShape) throw new Error(`${source}: tensor '${original.get(e.key)}' has shape [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`);
      let data = toF32(t, original.get(e.key)!);
      for (let i = 0; i < data.length; i++)
        if (!Number.isFinite(data[i])) throw new Error(`${source}: tensor '${original.get(e.key)}' has a non-finite value at index ${i}`);
      if (e.field === 'w' && layout === 'pytorch') data = torchToTf(data, u.cout, u.cin, ...u.kernel);
      uw[e.field] = data;
    }
    if (uw.variance) {
      for (let i = 0; i < uw.variance.length; i++)
        if (uw.variance[i] < 0) throw new Error(`${source}: unit ${u.name} has a negative BN variance at channel ${i}`);
    }
    units.set(u.name, uw as UnitWeights);
  }
  const extra = [...keys.keys()].filter((k) => !used.has(k));
  if (extra.length)
    throw new Error(`${source}: unexpected tensors for an RGB InceptionI3d (${layout} layout): ${extra.slice(0, 8).map((k) => `'${original.get(k)}'`).join(', ')}${extra.length > 8 ? `, ... (${extra.length} in all)` : ''}`);
  const w: Omit<I3DWeights, 'contentSha256'> = { units, numClasses, layout, source, fileSha256 };
  return { ...w, contentSha256: contentDigest(units, numClasses) };
}

function isAllOnes(a: Float32Array | undefined): boolean {
  if (!a) return true;
  for (let i = 0; i < a.length; i++) if (a[i] !== 1) return false;
  return true;
}

/** SHA-256 over the canonical tensors (unit order, field order, float32 little-endian; unit gammas omitted). */
export function contentDigest(units: Map<string, UnitWeights>, numClasses: number): string {
  const h = createHash('sha256');
  h.update(`i3d-rgb/${numClasses}\n`);
  for (const u of i3dUnits(numClasses)) {
    const uw = units.get(u.name);
    if (!uw) throw new Error(`contentDigest: unit ${u.name} missing`);
    const fields: [string, Float32Array | undefined][] = [
      ['w', uw.w],
      ['gamma', isAllOnes(uw.gamma) ? undefined : uw.gamma],
      ['beta', uw.beta],
      ['mean', uw.mean],
      ['variance', uw.variance],
      ['bias', uw.bias],
    ];
    for (const [f, a] of fields) {
      if (!a) continue;
      h.update(`${u.name}.${f}:${a.length}\n`);
      h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    }
  }
  return h.digest('hex');
}

/** Name -> tensor map in a key layout (the inverse of i3dWeightsFromTensors). */
export function i3dTensors(weights: I3DWeights, layout: I3DLayout, opts: { tfPrefix?: string; includeGamma?: boolean } = {}): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const prefix = layout === 'tfhub' ? (opts.tfPrefix ?? 'RGB/inception_i3d/') : '';
  for (const u of i3dUnits(weights.numClasses)) {
    const uw = weights.units.get(u.name);
    if (!uw) throw new Error(`i3dTensors: unit ${u.name} missing`);
    for (const e of expectedTensors(u, layout)) {
      let data = uw[e.field];
      if (e.field === 'gamma') {
        if (data === undefined && opts.includeGamma) data = new Float32Array(u.cout).fill(1);
        if (data === undefined) continue;
      }
      if (data === undefined) throw new Error(`i3dTensors: unit ${u.name} has no ${e.field}`);
      if (e.field === 'w' && layout === 'pytorch') data = tfToTorch(data, u.cout, u.cin, ...u.kernel);
      out.set(prefix + e.key, { shape: e.shape, data });
    }
  }
  return out;
}

/** Streaming SHA-256 of a file. */
export function fileSha256(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Reads I3D weights from a .safetensors or .npz export (see metrics/README.md for how to make one). */
export function loadI3DWeights(file: string): I3DWeights {
  if (!fs.existsSync(file)) throw new Error(`${file}: I3D weight file not found (see metrics/README.md, "I3D weights")`);
  const lower = file.toLowerCase();
  let tensors: Map<string, RawTensor>;
  if (lower.endsWith('.safetensors')) {
    tensors = decodeSafetensors(fs.readFileSync(file), file).tensors;
  } else if (lower.endsWith('.npz')) {
    tensors = readNpz(file);
  } else if (lower.endsWith('.pt') || lower.endsWith('.pth')) {
    throw new Error(`${file}: PyTorch pickles cannot be read here; export the state dict to .safetensors or .npz first (metrics/README.md, "I3D weights")`);
  } else {
    throw new Error(`${file}: unsupported I3D weight file type (expected .safetensors or .npz)`);
  }
  return i3dWeightsFromTensors(tensors, file, fileSha256(file));
}

/**
 * Random I3D weights with the real shapes (for tests and benchmarks only: the features they give
 * are meaningless). He-normal filters; BN statistics near identity.
 */
export function randomI3DWeights(seed: number, numClasses = 400): I3DWeights {
  const rng = new Rng(seed);
  const units = new Map<string, UnitWeights>();
  for (const u of i3dUnits(numClasses)) {
    const fanIn = u.cin * u.kernel[0] * u.kernel[1] * u.kernel[2];
    const w = rng.normalArray(fanIn * u.cout, 0, Math.sqrt(2 / fanIn));
    if (u.bn) {
      units.set(u.name, {
        w,
        beta: rng.normalArray(u.cout, 0, 0.1),
        mean: rng.normalArray(u.cout, 0, 0.1),
        variance: rng.uniformArray(u.cout, 0.5, 1.5),
      });
    } else {
      units.set(u.name, { w, bias: rng.normalArray(u.cout, 0, 0.1) });
    }
  }
  return { units, numClasses, layout: 'tfhub', source: `<random seed ${seed}>`, contentSha256: contentDigest(units, numClasses) };
}
