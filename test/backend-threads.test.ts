// The opt-in threaded-SIMD wasm backend (LVDM_WASM_THREADS): starts in Node with the requested
// XNNPACK threads, computes the same values as cpu, and lets the process exit on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

function runChild(env: Record<string, string>): { rc: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'backend-threads-child.ts')], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { rc: r.status, out: r.stdout, err: r.stderr };
}

test('LVDM_WASM_THREADS=2 runs the threaded binary, matches cpu, and exits by itself', () => {
  const r = runChild({ LVDM_WASM_THREADS: '2', LVDM_BACKEND: 'wasm' });
  assert.equal(r.rc, 0, `child failed or hung: ${r.err}`);
  const line = r.out.trim().split('\n').pop() ?? '';
  const res = JSON.parse(line) as { name: string; source: string; threads: number; err: number };
  assert.equal(res.name, 'wasm');
  assert.equal(res.threads, 2);
  assert.match(res.source, /threaded/);
  assert.ok(res.err < 2e-5, `rel err vs cpu ${res.err}`);
});

test('a bad LVDM_WASM_THREADS value is rejected with the variable named', () => {
  const r = runChild({ LVDM_WASM_THREADS: 'many', LVDM_BACKEND: 'wasm' });
  assert.notEqual(r.rc, 0);
  assert.match(r.err, /LVDM_WASM_THREADS: expected an integer thread count in 1\.\.64, got 'many'/);
});
