/** A real redis-server on a free loopback port for the queue tests, and long-running lvdm children. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { LVDM_BIN, ROOT, freePort, tempDir } from './helpers';

function pingable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export interface RedisServer {
  port: number;
  password: string;
  /** redis://:password@127.0.0.1:port/0 */
  url: string;
  pid: number;
  /** SIGKILLs the server (no persistence: it loses every job). */
  kill(): Promise<void>;
  /** Starts a fresh, empty server on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts redis-server with a password, no persistence, bound to 127.0.0.1 on a free port. */
export async function startRedis(password = 'q-s3cret-pw'): Promise<RedisServer> {
  const port = await freePort();
  const dir = tempDir('lvdm-redis-');
  let child: ChildProcess;
  const launch = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--requirepass', password], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    for (let i = 0; i < 100; i++) {
      if (await pingable(port)) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on port ${port}`);
  };
  const waitExit = (c: ChildProcess): Promise<void> => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r())));
  await launch();
  const server: RedisServer = {
    port,
    password,
    url: `redis://:${password}@127.0.0.1:${port}/0`,
    get pid() {
      return child.pid ?? 0;
    },
    async kill() {
      process.kill(child.pid!, 'SIGKILL');
      await waitExit(child);
    },
    restart: launch,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGTERM');
        await waitExit(child);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A long-running `lvdm ...` child whose output is collected. */
export interface LvdmProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves when the output matches `re` (rejects after `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnLvdm(args: string[], env: Record<string, string> = {}): LvdmProcess {
  const child = spawn(process.execPath, [LVDM_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    waitFor(re, ms = 120_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (re.test(out)) {
            listeners.delete(check);
            clearTimeout(t);
            resolve();
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${re} in the output of lvdm ${args.join(' ')}:\n${out.slice(-3000)}`));
        }, ms);
        listeners.add(check);
        check();
        void exited.then(() => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(t);
            reject(new Error(`lvdm ${args.join(' ')} exited before printing ${re}:\n${out.slice(-3000)}`));
          }
        });
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, signal);
        await exited;
      }
    },
  };
}

/** Every file under `dir` whose text contains `needle` (relative paths). */
export function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(needle)) hits.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return hits;
}
