// Compute precision of the backend's convolutions (issue 10, speed).
//
// 'fp32' (the default) everywhere. 'bf16' on the libtorch backend: convolutions (2D, 3D, forward
// and both gradients) take bfloat16 operands in oneDNN's bf16 kernels, which run on the CPU's AMX /
// AVX512-BF16 units with float32 accumulation, and return float32; matrix products, normalisations,
// attention, softmax, losses, optimisers and EMA stay float32 (at this project's widths bf16 matrix
// products gained 0-9% of a training step: native/README.md, "Mixed precision"). PyTorch's CPU
// autocast runs convolutions in bfloat16 the same way (Kalamkar et al. 2019, "A study of BFLOAT16
// for deep learning training": the same accuracy as float32 training for the networks studied).
// Measured here, one core: a 3x3 convolution of 64x8x8x96 2.83 -> 0.39 ms forward, 5.1 -> 1.7 ms
// backward.
import * as tf from '@tensorflow/tfjs';
import { cpuFlags, nativeAddon } from './native/addon';
import { NATIVE_BACKEND } from './native';

export type Precision = 'fp32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16'];

/** The CPU's bf16 instructions oneDNN uses ('amx_bf16', 'avx512_bf16'); empty when it has none. */
export function bf16Units(): string[] {
  const flags = cpuFlags();
  return ['amx_bf16', 'avx512_bf16'].filter((f) => flags.includes(f));
}

/** Why `p` cannot run on the active backend ('' when it can). */
export function precisionUnsupported(p: Precision): string {
  if (p === 'fp32') return '';
  if (tf.getBackend() !== NATIVE_BACKEND)
    return `precision 'bf16' needs the ${NATIVE_BACKEND} backend (active: ${tf.getBackend() || 'none'}); use precision 'fp32'`;
  if (bf16Units().length === 0) return `precision 'bf16' needs a CPU with bf16 instructions (amx_bf16 or avx512_bf16; this one has neither, so bf16 would be slower than fp32); use precision 'fp32'`;
  return '';
}

let current: Precision = 'fp32';

/** The precision convolutions run in now. */
export function getPrecision(): Precision {
  return current;
}

/** Sets the precision (throws, naming `origin`, where the backend or CPU cannot run it); returns the previous one. */
export function setPrecision(p: Precision, origin = 'setPrecision'): Precision {
  if (!PRECISIONS.includes(p)) throw new Error(`${origin}: expected one of ${PRECISIONS.join('|')}, got '${String(p)}'`);
  const why = precisionUnsupported(p);
  if (why) throw new Error(`${origin}: ${why}`);
  const prev = current;
  const addon = tf.getBackend() === NATIVE_BACKEND ? nativeAddon() : null;
  if (addon !== null) addon.setPrecision(p);
  current = p;
  return prev;
}

/** Runs `fn` in precision `p` (unset = unchanged) and restores the previous precision after, also on errors. */
export async function withPrecision<T>(p: Precision | undefined, fn: () => Promise<T>, origin?: string): Promise<T> {
  if (p === undefined || p === current) return fn();
  const prev = setPrecision(p, origin);
  try {
    return await fn();
  } finally {
    setPrecision(prev);
  }
}
