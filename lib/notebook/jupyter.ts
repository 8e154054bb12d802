/**
 * The Jupyter side of the notebooks, all project-local: the environment that points Jupyter at
 * <project>/.jupyter (kernelspec, data, runtime and config folders: nothing is written outside the
 * project), the headless runner (scripts/run_notebooks.py under Debian's /usr/bin/python3 with
 * nbclient) and the notebook server on 127.0.0.1.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

/** Debian's Python, which has the Jupyter modules (the first `python3` on PATH may not). */
export const JUPYTER_PYTHON = '/usr/bin/python3';

/** The project root (this file is lib/notebook/jupyter.ts). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export function kernelSpecFile(root = PROJECT_ROOT): string {
  return path.join(root, '.jupyter', 'kernels', 'tslab', 'kernel.json');
}

/** Environment for every Jupyter process: the project's kernelspec and project-local state folders. */
export function jupyterEnv(root = PROJECT_ROOT, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dir = path.join(root, '.jupyter');
  return {
    ...base,
    JUPYTER_PATH: dir,
    JUPYTER_DATA_DIR: path.join(dir, 'data'),
    JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
    JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
    IPYTHONDIR: path.join(dir, 'ipython'),
    // Debian's python3.11 + debugpy print a frozen-modules warning on every start.
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
}

/** Throws a message saying how to fix it when the kernelspec or Debian's Jupyter is missing. */
export function checkJupyterSetup(root = PROJECT_ROOT, need: 'nbclient' | 'notebook' = 'nbclient'): void {
  if (!fs.existsSync(JUPYTER_PYTHON)) throw new Error(`${JUPYTER_PYTHON} not found: run bash scripts/setup.sh (Debian's python3 with Jupyter)`);
  const module = need === 'notebook' ? '/usr/lib/python3/dist-packages/notebook/__init__.py' : '/usr/lib/python3/dist-packages/nbclient/__init__.py';
  const pkg = need === 'notebook' ? 'jupyter-notebook' : 'jupyter-nbconvert';
  if (!fs.existsSync(module)) throw new Error(`${module} not found: install Debian's ${pkg} (bash scripts/setup.sh)`);
  if (!fs.existsSync(kernelSpecFile(root))) throw new Error(`${kernelSpecFile(root)} not found: run node scripts/kernelspec.mjs (part of bash scripts/setup.sh)`);
}

/** Whether notebook `name` (NN-topic) is picked by `o`: its full name, its number, or the start of its topic. */
function picks(name: string, o: string): boolean {
  return name === o || name.startsWith(`${o}-`) || name.replace(/^\d+-/, '').startsWith(o);
}

/** The notebooks of `dir` (NN-topic.ipynb), sorted; `only` keeps those picked by one of its entries. */
export function listNotebooks(dir: string, only: string[] = []): string[] {
  const all = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ipynb'))
    .sort();
  const names = all.map((f) => f.replace(/\.ipynb$/, ''));
  const missing = only.filter((o) => !names.some((n) => picks(n, o)));
  if (missing.length > 0) throw new Error(`no notebook in ${dir} matches ${missing.map((m) => `'${m}'`).join(', ')} (have: ${all.join(', ')})`);
  return all.filter((_, i) => only.length === 0 || only.some((o) => picks(names[i], o))).map((f) => path.join(dir, f));
}

export interface RunNotebooksOptions {
  notebooks: string[];
  /** Executed copies (and summary.jsonl) go here. */
  outDir: string;
  html?: boolean;
  /** Seconds per cell. */
  timeout?: number;
  root?: string;
  /** Extra environment (e.g. LVDM_PROFILE). */
  env?: NodeJS.ProcessEnv;
  /** 'inherit' streams the runner's output to this process; 'pipe' collects it. */
  stdio?: 'inherit' | 'pipe';
}

export interface RunNotebooksResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Executes notebooks with the tslab kernel (stops at the first failing cell; its error text is on stderr). */
export function runNotebooks(o: RunNotebooksOptions): Promise<RunNotebooksResult> {
  const root = o.root ?? PROJECT_ROOT;
  checkJupyterSetup(root);
  const args = [path.join(root, 'scripts', 'run_notebooks.py'), '--out', path.resolve(o.outDir), '--root', root, '--timeout', String(o.timeout ?? 3600)];
  if (o.html) args.push('--html');
  args.push(...o.notebooks.map((n) => path.resolve(n)));
  const child = spawn(JUPYTER_PYTHON, args, { cwd: root, env: jupyterEnv(root, { ...process.env, ...o.env }), stdio: ['ignore', o.stdio ?? 'pipe', o.stdio ?? 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

export interface NotebookServer {
  url: string;
  port: number;
  token: string;
  pid: number;
  process: ChildProcess;
  /** Stops the server (SIGTERM to its pid, SIGKILL after `graceMs`); resolves when it exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartServerOptions {
  port: number;
  token?: string;
  root?: string;
  /** Folder the server lists (default: the project root). */
  notebookDir?: string;
  /** Milliseconds to wait for the server to answer (default 60 s). */
  timeoutMs?: number;
  /** Server log lines (default: dropped). */
  log?: (line: string) => void;
}

/** GET url -> status code (null when nothing answers). */
function httpStatus(url: string): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on('error', () => resolve(null));
    req.setTimeout(2000, () => {
      req.destroy();
      resolve(null);
    });
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts Debian's classic `jupyter notebook` on 127.0.0.1:port with the project's kernelspec and a
 * random token, and resolves once its REST API answers. The server is stopped by its pid.
 */
export async function startNotebookServer(o: StartServerOptions): Promise<NotebookServer> {
  const root = o.root ?? PROJECT_ROOT;
  checkJupyterSetup(root, 'notebook');
  const token = o.token ?? crypto.randomBytes(24).toString('hex');
  const args = ['-m', 'notebook', '--no-browser', '--ip=127.0.0.1', `--port=${o.port}`, '--port-retries=0', `--notebook-dir=${o.notebookDir ?? root}`, `--NotebookApp.token=${token}`];
  if (process.getuid?.() === 0) args.push('--allow-root');
  const child = spawn(JUPYTER_PYTHON, args, { cwd: root, env: jupyterEnv(root), stdio: ['ignore', 'pipe', 'pipe'] });
  const log = o.log ?? (() => undefined);
  let output = '';
  const onData = (d: Buffer): void => {
    output += d.toString();
    for (const line of d.toString().split('\n')) if (line.trim()) log(line);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const base = `http://127.0.0.1:${o.port}`;
  const stop = async (graceMs = 5000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await waitExit(child);
    clearTimeout(timer);
  };
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`jupyter notebook exited (${child.exitCode ?? child.signalCode}) before answering:\n${output.slice(-2000)}`);
      if ((await httpStatus(`${base}/api/status?token=${token}`)) === 200) break;
      if (Date.now() > deadline) throw new Error(`jupyter notebook did not answer on ${base} within ${o.timeoutMs ?? 60_000} ms:\n${output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `${base}/?token=${token}`, port: o.port, token, pid: child.pid ?? -1, process: child, stop };
}
