// The 'libtorch' backend: registration, threads, and a description for `lvdm doctor`.
import * as tf from '@tensorflow/tfjs';
import { nativeAddon, nativeUnavailableReason } from './addon';
import { NATIVE_BACKEND, NativeBackend } from './backend';
import { registerNativeKernels } from './kernels';

export { NATIVE_BACKEND } from './backend';
export { NATIVE_KERNEL_NAMES } from './kernels';
export { nativeUnavailableReason } from './addon';

/** Threads for the native backend: `threads`, else env LVDM_THREADS, else 2 (both cores here). */
export function nativeThreadsWanted(threads?: number): number {
  const raw = threads !== undefined ? String(threads) : process.env.LVDM_THREADS;
  if (raw === undefined || raw === '') return 2;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new Error(`${threads !== undefined ? 'initBackend({ threads })' : 'env LVDM_THREADS'}: expected an integer thread count in 1..256, got '${raw}'`);
  }
  return n;
}

/** True when the addon is built and loads. */
export function nativeAvailable(): boolean {
  return nativeAddon() !== null;
}

/**
 * Registers backend 'libtorch' and its kernels (idempotent) and sets its thread count.
 * Throws with the reason when the addon is not available.
 */
export function registerNativeBackend(threads: number): void {
  const addon = nativeAddon();
  if (addon === null) throw new Error(`backend '${NATIVE_BACKEND}' unavailable: ${nativeUnavailableReason()}`);
  addon.setThreads(threads);
  registerNativeKernels();
  if (tf.findBackendFactory(NATIVE_BACKEND) === null) tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(addon), 1);
}

/** libtorch version, BLAS, threads and determinism of the loaded addon (null when unavailable). */
export function nativeInfo(): { torch: string; blas: string; threads: number; fusedThreads: number; deterministic: boolean } | null {
  const addon = nativeAddon();
  if (addon === null) return null;
  const i = addon.info();
  return { torch: i.torch, blas: i.blas, threads: i.threads, fusedThreads: i.parallelForThreads, deterministic: i.deterministic };
}

/** Native bytes and handles currently held by the addon (0 when unavailable). */
export function nativeMemory(): { bytes: number; handles: number } {
  const addon = nativeAddon();
  if (addon === null) return { bytes: 0, handles: 0 };
  const m = addon.memory();
  return { bytes: m.bytes, handles: m.handles };
}
