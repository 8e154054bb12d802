// Backend selection for LVDM.ts: tfjs-node-gpu > tfjs-node > wasm (with fast training kernels) > cpu.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './kernels';
import { registerExtraGradients } from './gradients';
import { registerThreadedWasm, restoreStockWasm, wasmThreads } from './threaded';
import { gradientSelfCheck as selfCheck, SelfCheckResult } from './selfcheck';

export { registerWasmKernels } from './kernels';
export { wasmThreads } from './threaded';
export type { SelfCheckResult } from './selfcheck';

export interface BackendInfo {
  /** tfjs backend name as reported by tf.getBackend(): 'tensorflow' | 'wasm' | 'cpu'. */
  name: string;
  /** Where it came from: the npm package that provides it. */
  source: string;
  /** Versions of the relevant packages (tfjs, tfjs-backend-wasm, tfjs-node, ...). */
  versions: Record<string, string>;
}

type Choice = 'node-gpu' | 'node' | 'wasm' | 'cpu';

const CHOICES: readonly Choice[] = ['node-gpu', 'node', 'wasm', 'cpu'];
const NODE_PKG: Record<'node-gpu' | 'node', string> = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
};

let current: BackendInfo | null = null;
let pending: Promise<BackendInfo> | null = null;

function parsePreference(raw: string, origin: string): Choice {
  const v = raw.trim().toLowerCase();
  if (v === 'tensorflow') return installed(NODE_PKG['node-gpu']) ? 'node-gpu' : 'node';
  if ((CHOICES as readonly string[]).includes(v)) return v as Choice;
  throw new Error(`${origin}: unknown backend '${raw}' (expected one of tensorflow|node-gpu|node|wasm|cpu)`);
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

async function activate(choice: Choice, threads = 1): Promise<BackendInfo> {
  const versions: Record<string, string> = { tfjs: tf.version.tfjs };
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
    return { name: 'wasm', source: n > 1 ? '@tensorflow/tfjs-backend-wasm (threaded-SIMD binary)' : '@tensorflow/tfjs-backend-wasm', versions };
  }
  if (!(await tf.setBackend('cpu'))) throw new Error(`backend 'cpu' failed to initialise`);
  await tf.ready();
  return { name: 'cpu', source: '@tensorflow/tfjs (tfjs-backend-cpu)', versions };
}

async function choose(prefer: string | undefined, threads: number): Promise<BackendInfo> {
  registerExtraGradients();
  const env = process.env.LVDM_BACKEND;
  if (prefer !== undefined && prefer !== '') return activate(parsePreference(prefer, 'initBackend({ prefer })'), threads);
  if (env !== undefined && env !== '') return activate(parsePreference(env, 'env LVDM_BACKEND'), threads);
  const errors: string[] = [];
  for (const c of CHOICES) {
    if ((c === 'node-gpu' || c === 'node') && !installed(NODE_PKG[c])) continue;
    try {
      return await activate(c, threads);
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
  const n = info.name === 'wasm' ? wasmThreads() : 0;
  const simd = info.name === 'wasm' ? [n > 1 ? `${n} threads` : '1 thread'] : [];
  return `[lvdm] backend: ${info.name} (${['tfjs ' + info.versions.tfjs, ...extra, ...simd].join(', ')})`;
}

/**
 * Selects and initialises the tfjs backend. Order: tfjs-node-gpu, tfjs-node (if installed), wasm, cpu.
 * `opts.prefer` or env LVDM_BACKEND (tensorflow|node-gpu|node|wasm|cpu) forces one; an unavailable
 * forced backend is an error. Idempotent: later calls return the first call's info (a later call
 * that forces a different backend switches to it). `opts.threads` or env LVDM_WASM_THREADS (> 1)
 * loads the threaded-SIMD wasm binary; it only takes effect on the first wasm initialisation.
 */
export async function initBackend(opts: { prefer?: string; quiet?: boolean; threads?: number } = {}): Promise<BackendInfo> {
  const threads = threadsWanted(opts.threads);
  if (pending !== null) {
    const info = await pending;
    const wanted = opts.prefer !== undefined && opts.prefer !== '' ? parsePreference(opts.prefer, 'initBackend({ prefer })') : null;
    const same = wanted === null || (wanted === 'wasm' || wanted === 'cpu' ? info.name === wanted : info.name === 'tensorflow');
    if (same && tf.getBackend() === info.name) return info;
  }
  pending = choose(opts.prefer, threads);
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
