// Optional multi-threaded wasm backend for Node (opt-in: initBackend({ threads }) or env
// LVDM_WASM_THREADS). Stock tfjs-backend-wasm never uses its threaded-SIMD binary in Node
// (WASM_HAS_MULTITHREAD_SUPPORT is false there) and the binary caps XNNPACK's pool at
// logical cores / 2. We load that binary ourselves with a Node worker script (Emscripten pthreads
// run on worker_threads) and re-register backend 'wasm' before it is first initialised; every
// kernel registered for 'wasm' (stock and ours) then runs on it unchanged.
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

interface NodeWorkerLike {
  unref?: () => void;
}

interface EmscriptenModuleLike {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number | void;
  tfjs?: Record<string, unknown>;
  PThread?: { runningWorkers?: NodeWorkerLike[]; unusedWorkers?: NodeWorkerLike[] };
}

type Factory = (config: { locateFile: (p: string, prefix: string) => string; mainScriptUrlOrBlob: string }) => Promise<EmscriptenModuleLike>;

const PKG = '@tensorflow/tfjs-backend-wasm';

/** Writes the pthread worker script (shipped as a JS string in the package) to a temp file, atomically. */
function workerScript(dir: string): string {
  const mod = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents?: unknown };
  if (typeof mod.wasmWorkerContents !== 'string') throw new Error(`${PKG}: threaded worker script not found in ${dir}`);
  // The contents were written for a template literal: real newlines stand for "\n" escapes.
  const text = mod.wasmWorkerContents.replace(/\n/g, '\\n');
  const version = (require(`${PKG}/package.json`) as { version: string }).version;
  const file = path.join(os.tmpdir(), `lvdm-tfjs-wasm-${version}-${text.length}.worker.js`);
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  }
  return file;
}

/**
 * Runs `fn` while os.cpus() reports at least 2 * threads entries, so the binary's cap
 * (logical cores / 2, read through os.cpus() when the module starts) admits `threads`.
 */
async function withCoreCount<T>(threads: number, fn: () => Promise<T>): Promise<T> {
  const osm = require('os') as { cpus: () => os.CpuInfo[] };
  const real = osm.cpus;
  osm.cpus = () => {
    const c = real();
    const out: os.CpuInfo[] = [];
    while (out.length < Math.max(c.length, 2 * threads)) out.push(c[out.length % c.length]);
    return out;
  };
  try {
    return await fn();
  } finally {
    osm.cpus = real;
  }
}

let registeredThreads = 0;
let stockFactory: (() => tf.KernelBackend | Promise<tf.KernelBackend>) | null = null;

/** Puts the package's own (single-threaded) wasm loader back, e.g. after the threaded one failed. */
export function restoreStockWasm(): void {
  if (stockFactory === null || tf.engine().registry.wasm !== undefined) return;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', stockFactory, 2);
  registeredThreads = 0;
}

/**
 * Re-registers backend 'wasm' to use the threaded-SIMD binary with `threads` XNNPACK threads.
 * Must run before the wasm backend is first initialised (throws otherwise).
 */
export function registerThreadedWasm(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new Error(`wasm threads: expected an integer in 1..64, got ${threads}`);
  }
  if (registeredThreads === threads) return;
  if (tf.engine().registry.wasm !== undefined) {
    throw new Error('wasm threads: the wasm backend is already initialised; set threads before the first initBackend()');
  }
  const dir = path.dirname(require.resolve(`${PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.js`));
  const factory = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.js')) as Factory;
  const worker = workerScript(dir);
  if (stockFactory === null) stockFactory = tf.findBackendFactory('wasm');
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    () =>
      withCoreCount(threads, async () => {
        const mod = await factory({
          locateFile: (p, prefix) =>
            p.endsWith('.worker.js') ? worker : p.endsWith('.wasm') ? path.join(dir, 'tfjs-backend-wasm-threaded-simd.wasm') : prefix + p,
          mainScriptUrlOrBlob: path.join(dir, 'tfjs-backend-wasm-threaded-simd.js'),
        });
        // The same bridge the package's own loader installs.
        mod.tfjs = {
          init: mod.cwrap('init', null, []),
          initWithThreadsCount: mod.cwrap('init_with_threads_count', null, ['number']),
          getThreadsCount: mod.cwrap('get_threads_count', 'number', []),
          registerTensor: mod.cwrap('register_tensor', null, ['number', 'number', 'number']),
          disposeData: mod.cwrap('dispose_data', null, ['number']),
          dispose: mod.cwrap('dispose', null, []),
        };
        setThreadsCount(threads);
        const backend = new BackendWasm(mod as unknown as ConstructorParameters<typeof BackendWasm>[0]);
        // XNNPACK's pool threads live for the whole process, blocked between jobs; their workers
        // must not keep Node's event loop alive once the program is done.
        for (const w of [...(mod.PThread?.runningWorkers ?? []), ...(mod.PThread?.unusedWorkers ?? [])]) w.unref?.();
        return backend;
      }),
    2,
  );
  registeredThreads = threads;
}

/** XNNPACK threads of the active wasm backend (1 for the stock single-threaded binary). */
export function wasmThreads(): number {
  const b = tf.engine().registry.wasm as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } } | undefined;
  const n = b?.wasm?.tfjs?.getThreadsCount?.();
  return typeof n === 'number' ? n : 1;
}
