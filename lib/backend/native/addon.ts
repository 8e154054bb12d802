// Loads the libtorch addon (native/build/lvdm_torch.node, built by native/build.sh). When it is
// missing or fails to load, nativeAddon() is null and nativeUnavailableReason() says why (the
// build's own reason from native/build/REASON when there is one).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The addon's exports (native/src/lvdm_torch.cc). dtype codes: 0 float32, 1 int32, 2 bool. */
export interface TorchAddon {
  fromData(values: Float32Array | Int32Array | Uint8Array, shape: number[], dtype: number): number;
  toData(handle: number): ArrayBuffer;
  dispose(handle: number): void;
  /** packed = [nInputs, handle..., args...] -> [nOutputs, (handle, dtype, rank, dims...)...]. */
  run(op: string, packed: Float64Array): Float64Array;
  memory(): { bytes: number; handles: number; storages: number };
  setThreads(n: number): number;
  /** Precision of convolutions and matrix products on this JS thread; returns the previous one. */
  setPrecision(p: 'fp32' | 'bf16'): 'fp32' | 'bf16';
  info(): { torch: string; threads: number; blas: string; deterministic: boolean; mkldnn: boolean; parallelForThreads: number; ops: string[] };
}

/** Repository root (this file is lib/backend/native/addon.ts). */
const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The addon file: env LVDM_NATIVE_ADDON, else native/build/lvdm_torch.node (REASON lies beside it). */
export function addonPath(): string {
  const env = process.env.LVDM_NATIVE_ADDON;
  return env !== undefined && env !== '' ? path.resolve(env) : path.join(ROOT, 'native', 'build', 'lvdm_torch.node');
}

let loaded: TorchAddon | null | undefined;
let reason = '';

/** The loaded addon, or null (see nativeUnavailableReason). Loads once. */
export function nativeAddon(): TorchAddon | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const file = addonPath();
  const shown = file.startsWith(ROOT + path.sep) ? path.relative(ROOT, file) : file;
  if (!fs.existsSync(file)) {
    const reasonFile = path.join(path.dirname(file), 'REASON');
    const why = fs.existsSync(reasonFile) ? fs.readFileSync(reasonFile, 'utf8').trim() : 'not built (run: bash native/build.sh)';
    reason = `${shown} missing: ${why}`;
    return loaded;
  }
  // OpenMP threads that spin while waiting stall badly when other processes share the cores
  // (measured: a UNet forward took 8 s instead of 0.5 s with two busy neighbours); sleeping
  // waiters cost little when the machine is idle. libgomp reads this when libtorch loads.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) process.env.OMP_WAIT_POLICY = 'PASSIVE';
  // OpenBLAS 0.3.21 does not recognise AVX-512 AMD cores (Zen 4) and falls back to its Haswell
  // kernels; its SkylakeX kernels run there (measured sgemm 2048x128x128: 84 -> 145 GFLOP/s).
  if (process.env.OPENBLAS_CORETYPE === undefined && hasAvx512()) process.env.OPENBLAS_CORETYPE = 'SkylakeX';
  try {
    loaded = require(file) as TorchAddon;
  } catch (e) {
    reason = `${shown} does not load: ${(e as Error).message.split('\n')[0]}`;
  }
  return loaded;
}

let flagsCache: string[] | undefined;
/** The CPU's feature flags (Linux /proc/cpuinfo, read once; empty elsewhere). */
export function cpuFlags(): string[] {
  if (flagsCache === undefined) {
    try {
      flagsCache = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1].trim().split(/\s+/) ?? [];
    } catch {
      flagsCache = [];
    }
  }
  return flagsCache;
}

/** True when the CPU has the AVX-512 subsets OpenBLAS's SkylakeX kernels use (Linux). */
function hasAvx512(): boolean {
  const flags = cpuFlags();
  return ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'].every((f) => flags.includes(f));
}

/** Why the addon is unavailable ('' when it loaded). */
export function nativeUnavailableReason(): string {
  nativeAddon();
  return reason;
}
