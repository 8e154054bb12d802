// Backend selection for LVDM.ts: tfjs-node-gpu > tfjs-node > libtorch (native addon) > wasm (with
// fast training kernels) > cpu.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './kernels';
import { registerExtraGradients } from './gradients';
import { registerThreadedWasm, restoreStockWasm, wasmThreads } from './threaded';
import { gradientSelfCheck as selfCheck, SelfCheckResult } from './selfcheck';
import { NATIVE_BACKEND, nativeAvailable, nativeInfo, nativeThreadsWanted, nativeUnavailableReason, registerNativeBackend } from './native';

export { registerWasmKernels } from './kernels';
export { wasmThreads } from './threaded';
export { NATIVE_BACKEND, NATIVE_KERNEL_NAMES, nativeAvailable, nativeInfo, nativeMemory, nativeUnavailableReason } from './native';
export type { SelfCheckResult } from './selfcheck';
export { bf16Units, getPrecision, PRECISIONS, precisionUnsupported, setPrecision, withPrecision } from './precision';
export type { Precision } from './precision';

export interface BackendInfo {
  /** tfjs backend name as reported by tf.getBackend(): 'tensorflow' | 'libtorch' | 'wasm' | 'cpu'. */
  name: string;
  /** Where it came from: the npm package that provides it. */
  source: string;
  /** Versions of the relevant packages (tfjs, tfjs-backend-wasm, tfjs-node, ...). */
  versions: Record<string, string>;
  /** Compute threads of the backend (wasm: XNNPACK threads; libtorch: intra-op threads). */
  threads?: number;
}

type Choice = 'node-gpu' | 'node' | 'native' | 'wasm' | 'cpu';

/** Also the automatic order: the first that initialises wins (native only when its addon is built). */
const CHOICES: readonly Choice[] = ['node-gpu', 'node', 'native', 'wasm', 'cpu'];
/** tfjs backend name of each choice. */
const BACKEND_OF: Record<Choice, string> = { 'node-gpu': 'tensorflow', node: 'tensorflow', native: NATIVE_BACKEND, wasm: 'wasm', cpu: 'cpu' };
const NODE_PKG: Record<'node-gpu' | 'node', string> = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
};

let current: BackendInfo | null = null;
let pending: Promise<BackendInfo> | null = null;

function parsePreference(raw: string, origin: string): Choice {
  const v = raw.trim().toLowerCase();
  if (v === 'tensorflow') return installed(NODE_PKG['node-gpu']) ? 'node-gpu' : 'node';
  if (v === NATIVE_BACKEND) return 'native';
  if ((CHOICES as readonly string[]).includes(v)) return v as Choice;
  throw new Error(`${origin}: unknown backend '${raw}' (expected one of tensorflow|node-gpu|node|native|${NATIVE_BACKEND}|wasm|cpu)`);
}

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

function pkgVersion(pkg: string): string | undefined {
  try {
    const p = require(`${pkg}/package.json`) as { version?: unknown };
    return typeof p.version === 'string' ? p.version : undefined;
  } catch {
    return undefined;
  }
}

/** XNNPACK threads for wasm: opts.threads, else env LVDM_WASM_THREADS, else 1 (stock binary). */
function threadsWanted(opt: number | undefined): number {
  const raw = opt !== undefined ? String(opt) : process.env.LVDM_WASM_THREADS;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    const origin = opt !== undefined ? 'initBackend({ threads })' : 'env LVDM_WASM_THREADS';
    throw new Error(`${origin}: expected an integer thread count in 1..64, got '${raw}'`);
  }
  return n;
}

async function activate(choice: Choice, threads = 1, nativeThreads = 2): Promise<BackendInfo> {
  const versions: Record<string, string> = { tfjs: tf.version.tfjs };
  if (choice === 'native') {
    if (!nativeAvailable()) throw new Error(`backend 'native' unavailable: ${nativeUnavailableReason()}`);
    registerNativeBackend(nativeThreads);
    if (!(await tf.setBackend(NATIVE_BACKEND))) throw new Error(`backend 'native': the ${NATIVE_BACKEND} backend failed to initialise`);
    await tf.ready();
    const ni = nativeInfo();
    versions.libtorch = ni?.torch ?? 'unknown';
    versions.blas = ni?.blas ?? 'unknown';
    return { name: NATIVE_BACKEND, source: 'native/build/lvdm_torch.node (Debian libtorch)', versions, threads: ni?.threads ?? nativeThreads };
  }
  if (choice === 'node-gpu' || choice === 'node') {
    const pkg = NODE_PKG[choice];
    if (!installed(pkg)) throw new Error(`backend '${choice}' requested but ${pkg} is not installed`);
    // Runtime require: the package registers the 'tensorflow' backend as a side effect.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    require(pkg);
    if (!(await tf.setBackend('tensorflow'))) throw new Error(`backend '${choice}': ${pkg} failed to initialise`);
    versions[pkg.replace('@tensorflow/', '')] = pkgVersion(pkg) ?? 'unknown';
    await tf.ready();
    return { name: tf.getBackend(), source: pkg, versions };
  }
  if (choice === 'wasm') {
    registerWasmKernels();
    const fresh = tf.engine().registry.wasm === undefined;
    if (threads > 1 && fresh) registerThreadedWasm(threads);
    let ok = await tf.setBackend('wasm');
    if (!ok && threads > 1 && fresh) {
      console.warn(`[lvdm] wasm: the threaded-SIMD binary failed to start; using the single-threaded one`);
      restoreStockWasm();
      ok = await tf.setBackend('wasm');
    }
    if (!ok) throw new Error(`backend 'wasm': @tensorflow/tfjs-backend-wasm failed to initialise`);
    await tf.ready();
    versions['tfjs-backend-wasm'] = pkgVersion('@tensorflow/tfjs-backend-wasm') ?? 'unknown';
    const n = wasmThreads();
    if (threads > 1 && n !== threads) {
      console.warn(`[lvdm] wasm: ${threads} threads requested, running with ${n}` + (fresh ? '' : ' (the wasm backend was already initialised)'));
    }
    return { name: 'wasm', source: n > 1 ? '@tensorflow/tfjs-backend-wasm (threaded-SIMD binary)' : '@tensorflow/tfjs-backend-wasm', versions, threads: n };
  }
  if (!(await tf.setBackend('cpu'))) throw new Error(`backend 'cpu' failed to initialise`);
  await tf.ready();
  return { name: 'cpu', source: '@tensorflow/tfjs (tfjs-backend-cpu)', versions, threads: 1 };
}

async function choose(prefer: string | undefined, threads: number, nativeThreads: number): Promise<BackendInfo> {
  registerExtraGradients();
  const env = process.env.LVDM_BACKEND;
  if (prefer !== undefined && prefer !== '') return activate(parsePreference(prefer, 'initBackend({ prefer })'), threads, nativeThreads);
  if (env !== undefined && env !== '') return activate(parsePreference(env, 'env LVDM_BACKEND'), threads, nativeThreads);
  const errors: string[] = [];
  for (const c of CHOICES) {
    if ((c === 'node-gpu' || c === 'node') && !installed(NODE_PKG[c])) continue;
    if (c === 'native' && !nativeAvailable()) continue;
    try {
      return await activate(c, threads, nativeThreads);
    } catch (e) {
      errors.push(`${c}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no tfjs backend could be initialised (${errors.join('; ')})`);
}

function describe(info: BackendInfo): string {
  const extra = Object.entries(info.versions)
    .filter(([k]) => k !== 'tfjs')
    .map(([k, v]) => `${k} ${v}`);
  const n = info.threads ?? 0;
  const threads = info.name === 'wasm' || info.name === NATIVE_BACKEND ? [n > 1 ? `${n} threads` : '1 thread'] : [];
  return `[lvdm] backend: ${info.name} (${['tfjs ' + info.versions.tfjs, ...extra, ...threads].join(', ')})`;
}

/**
 * Selects and initialises the tfjs backend. Order: tfjs-node-gpu, tfjs-node (if installed), the
 * libtorch addon (if built), wasm, cpu. `opts.prefer` or env LVDM_BACKEND
 * (tensorflow|node-gpu|node|native|libtorch|wasm|cpu) forces one; an unavailable forced backend is
 * an error. Idempotent: later calls return the first call's info (a later call that forces a
 * different backend switches to it). Threads: `opts.threads`, else env LVDM_THREADS (libtorch,
 * default 2) / LVDM_WASM_THREADS (wasm, default 1; > 1 loads the threaded-SIMD binary, which only
 * takes effect on the first wasm initialisation).
 */
export async function initBackend(opts: { prefer?: string; quiet?: boolean; threads?: number } = {}): Promise<BackendInfo> {
  const threads = threadsWanted(opts.threads);
  const nativeThreads = nativeThreadsWanted(opts.threads);
  if (pending !== null) {
    const info = await pending;
    const wanted = opts.prefer !== undefined && opts.prefer !== '' ? parsePreference(opts.prefer, 'initBackend({ prefer })') : null;
    const same = wanted === null || BACKEND_OF[wanted] === info.name;
    if (same && tf.getBackend() === info.name) return info;
  }
  pending = choose(opts.prefer, threads, nativeThreads);
  try {
    current = await pending;
  } catch (e) {
    pending = null;
    throw e;
  }
  if (opts.quiet !== true) console.log(describe(current));
  return current;
}

/** Name of the active tfjs backend ('wasm', 'cpu', 'tensorflow'); '' before initBackend. */
export function backendName(): string {
  return current === null ? '' : tf.getBackend();
}

/** Numeric check of the custom wasm kernels' values and gradients against the cpu backend (< 3 s). */
export async function gradientSelfCheck(): Promise<SelfCheckResult> {
  return selfCheck();
}
