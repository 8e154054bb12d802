/**
 * Checkpoints: one safetensors file holding every tensor of a run (parameters `model.*`, EMA
 * `ema.*`, optimiser moments `optim.<name>.m.*`), with the non-tensor state (step, RNG state,
 * data-loader position, LR-schedule position, config) as JSON in the safetensors metadata under
 * the key `lvdm`. Written atomically (temp file + rename), so a kill never leaves a torn file.
 */
import * as fs from 'node:fs';
import { NamedArray } from '../nn/params';
import { loadSafetensors, saveSafetensors, TypedArray } from '../io/safetensors';

export const CHECKPOINT_VERSION = 1;

export interface CheckpointMeta {
  version: number;
  /** What trained it: 'autoencoder', 'lvdm', ... */
  kind: string;
  /** Number of completed optimisation steps. */
  step: number;
  config: unknown;
  /** Trainer-specific JSON state (RNG state, loader position, EMA updates, latent shift/scale...). */
  state: Record<string, unknown>;
  /** The training loop's own state: log sums since the last metrics line (so a resumed run logs identically). */
  loop?: { acc: Record<string, number>; accN: number };
  created: string;
}

export function saveCheckpoint(file: string, tensors: Map<string, NamedArray>, meta: Omit<CheckpointMeta, 'version' | 'created'>): void {
  const full: CheckpointMeta = { version: CHECKPOINT_VERSION, created: new Date().toISOString(), ...meta };
  saveSafetensors(file, tensors as Map<string, { shape: number[]; data: TypedArray }>, {
    lvdm: JSON.stringify(full),
    format: 'lvdm.ts-checkpoint',
    layout: 'tfjs-channels-last',
  });
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Map<string, NamedArray>;
}

export function loadCheckpoint(file: string, expectKind?: string): LoadedCheckpoint {
  if (!fs.existsSync(file)) throw new Error(`${file}: checkpoint not found`);
  const { tensors, metadata } = loadSafetensors(file);
  if (!metadata.lvdm) throw new Error(`${file}: not an LVDM.ts checkpoint (safetensors metadata has no 'lvdm' entry)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata.lvdm) as CheckpointMeta;
  } catch {
    throw new Error(`${file}: checkpoint metadata 'lvdm' is not valid JSON`);
  }
  if (expectKind && meta.kind !== expectKind) throw new Error(`${file}: expected a '${expectKind}' checkpoint, got '${meta.kind}'`);
  const out = new Map<string, NamedArray>();
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${file}: tensor '${name}' is ${t.dtype}, expected F32`);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return { meta, tensors: out };
}

/** Tensors under `prefix` with the prefix removed (e.g. `model.` -> parameter names). */
export function subTensors(tensors: Map<string, NamedArray>, prefix: string): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

export function prefixed(tensors: Map<string, NamedArray>, prefix: string): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const [k, v] of tensors) out.set(prefix + k, v);
  return out;
}
