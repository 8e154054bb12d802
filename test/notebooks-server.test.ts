/**
 * `npm run notebook`'s server: Debian's Jupyter on 127.0.0.1 with the project's tslab kernelspec.
 * Through the REST API and the kernel websocket protocol (ws), a tslab kernel runs a cell that
 * imports the library from the project root; then the server is stopped by its pid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import WebSocket from 'ws';
import { freePort, ROOT } from './helpers';
import { kernelSpecFile, NotebookServer, startNotebookServer } from '../lib/notebook/jupyter';

async function api(server: NotebookServer, method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${route}`, {
    method,
    headers: { Authorization: `token ${server.token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
}

interface KernelMessage {
  header: { msg_id: string; msg_type: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  channel?: string;
}

/** Sends one execute_request over the kernel channels websocket; collects iopub outputs until idle and the reply. */
function execute(ws: WebSocket, code: string): Promise<{ reply: KernelMessage; outputs: KernelMessage[] }> {
  const msgId = crypto.randomUUID();
  return new Promise((resolve, reject) => {
    const outputs: KernelMessage[] = [];
    let reply: KernelMessage | null = null;
    let idle = false;
    const timer = setTimeout(() => reject(new Error(`no reply to execute_request within 120 s; got ${outputs.map((o) => o.header.msg_type).join(', ')}`)), 120_000);
    const onMessage = (data: WebSocket.RawData): void => {
      const msg = JSON.parse(data.toString()) as KernelMessage;
      if (msg.parent_header.msg_id !== msgId) return;
      if (msg.channel === 'shell' && msg.header.msg_type === 'execute_reply') reply = msg;
      else if (msg.channel === 'iopub' && msg.header.msg_type === 'status' && msg.content.execution_state === 'idle') idle = true;
      else if (msg.channel === 'iopub') outputs.push(msg);
      if (reply && idle) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve({ reply, outputs });
      }
    };
    ws.on('message', onMessage);
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, msg_type: 'execute_request', username: 'test', session: crypto.randomUUID(), date: new Date().toISOString(), version: '5.3' },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        channel: 'shell',
        buffers: [],
      }),
    );
  });
}

const streamText = (outputs: KernelMessage[], name: string): string =>
  outputs
    .filter((o) => o.header.msg_type === 'stream' && o.content.name === name)
    .map((o) => String(o.content.text))
    .join('');

test('the kernelspec is project-local and starts the launcher by absolute paths', () => {
  const spec = JSON.parse(fs.readFileSync(kernelSpecFile(), 'utf8')) as { argv: string[]; language: string };
  assert.equal(spec.language, 'typescript');
  assert.equal(spec.argv[0], process.execPath);
  assert.equal(spec.argv[1], `${ROOT}/scripts/tslab-kernel.cjs`);
  assert.deepEqual(spec.argv.slice(2), ['kernel', '--config-path', '{connection_file}']);
  assert.ok(kernelSpecFile().startsWith(`${ROOT}/.jupyter/`));
});

test('tslab\'s zeromq addon loads (prebuilt; npm 11 skips install scripts)', () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const zmq = require('zeromq') as { Publisher: unknown; version: string };
  assert.equal(typeof zmq.Publisher, 'function');
  assert.match(zmq.version, /^\d+\.\d+\.\d+$/);
});

test('the notebook server answers on loopback and runs a cell with the tslab kernel', { timeout: 240_000 }, async () => {
  const port = await freePort();
  let server: NotebookServer | null = null;
  try {
    server = await startNotebookServer({ port, timeoutMs: 90_000 });
    assert.match(server.url, new RegExp(`^http://127\\.0\\.0\\.1:${port}/\\?token=[0-9a-f]{48}$`));
    // Without the token the API refuses.
    const anon = await fetch(`http://127.0.0.1:${port}/api/kernels`);
    assert.equal(anon.status, 403);
    const specs = await api(server, 'GET', '/api/kernelspecs');
    assert.equal(specs.status, 200);
    const names = Object.keys((specs.json as { kernelspecs: Record<string, unknown> }).kernelspecs);
    assert.ok(names.includes('tslab'), `kernelspecs: ${names.join(', ')}`);
    const started = await api(server, 'POST', '/api/kernels', { name: 'tslab' });
    assert.equal(started.status, 201);
    const kernelId = (started.json as { id: string }).id;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/kernels/${kernelId}/channels?token=${server.token}`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      // A cell that imports library code relative to the project root (the kernel starts there),
      // type-checked strictly, and prints a value computed by it.
      const ok = await execute(ws, "import { fmtTime } from './lib/train/progress';\nconst t: string = fmtTime(3725);\nconsole.log(`fmt ${t} cwd ${process.cwd()}`);");
      assert.equal(ok.reply.content.status, 'ok', JSON.stringify(ok.outputs.map((o) => o.content)));
      assert.equal(streamText(ok.outputs, 'stdout').trim(), `fmt 1h02m cwd ${ROOT}`);
      // Live progress: one output replaced in place (display_data, then update_display_data with
      // the same display_id), sent while the cell is still computing.
      const live = await execute(
        ws,
        "import { liveBar } from './lib/notebook/progress';\nconst bar = liveBar('busy loop', 3, 0);\nfor (let i = 1; i <= 3; i++) { const t0 = Date.now(); while (Date.now() - t0 < 100) {} bar.update(i, `step ${i}`); }",
      );
      assert.equal(live.reply.content.status, 'ok', JSON.stringify(live.outputs.map((o) => o.content)));
      const displays = live.outputs.filter((o) => o.header.msg_type === 'display_data' || o.header.msg_type === 'update_display_data');
      assert.deepEqual(
        displays.map((o) => o.header.msg_type),
        ['display_data', 'update_display_data', 'update_display_data', 'update_display_data'],
      );
      const ids = new Set(displays.map((o) => (o.content.transient as { display_id: string }).display_id));
      assert.equal(ids.size, 1);
      const html = displays.map((o) => String((o.content.data as Record<string, string>)['text/html']));
      assert.match(html[0], /0\/3/);
      assert.match(html[3], /3\/3 step 3/);
      // A type error is reported as the cell's error, with the TypeScript diagnostic on stderr.
      const bad = await execute(ws, "const n: number = 'not a number';");
      assert.equal(bad.reply.content.status, 'error');
      assert.match(streamText(bad.outputs, 'stderr'), /Type 'string' is not assignable to type 'number'/);
    } finally {
      ws.close();
    }
    const del = await api(server, 'DELETE', `/api/kernels/${kernelId}`);
    assert.equal(del.status, 204);
  } finally {
    if (server) {
      const pid = server.pid;
      await server.stop();
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `server pid ${pid} still running`);
    }
  }
});
