/**
 * Strict tsc passes (the project's TypeScript 5.9), and the same sources compile under TypeScript
 * 5.0.4, the version tslab bundles, so notebooks can import the library (no newer syntax).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from './helpers';

function tsc(pkg: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'node_modules', pkg, 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.json'), '--noEmit'], { cwd: ROOT, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

test('strict tsc (TypeScript 5.9) reports no errors', { timeout: 300_000 }, async () => {
  const r = await tsc('typescript');
  assert.equal(r.code, 0, r.out);
});

test('the sources compile under TypeScript 5.0.4 (tslab)', { timeout: 300_000 }, async () => {
  const r = await tsc('typescript50');
  assert.match(r.out, /^$/);
  assert.equal(r.code, 0, r.out);
});
