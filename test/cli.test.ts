import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../lib/cli/main';
import { COMMANDS } from '../lib/cli/registry';
import { runLvdm } from './helpers';

/** Runs main() capturing console output. */
async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('every subcommand answers --help with its usage and options', async () => {
  const names = COMMANDS.map((c) => c.name);
  for (const required of ['demo', 'doctor', 'train-ae', 'reconstruct']) assert.ok(names.includes(required), `command ${required} exists`);
  for (const cmd of COMMANDS) {
    const r = await capture([cmd.name, '--help']);
    assert.equal(r.code, 0, `${cmd.name} --help exits 0`);
    assert.match(r.out, new RegExp(`Usage: lvdm ${cmd.name}`));
    for (const opt of Object.keys(cmd.options)) assert.match(r.out, new RegExp(`--${opt}\\b`), `${cmd.name} --help lists --${opt}`);
  }
});

test('the program lists its commands; unknown commands and flags are errors', async () => {
  const help = await capture(['--help']);
  assert.equal(help.code, 0);
  for (const c of COMMANDS) assert.match(help.out, new RegExp(`\\b${c.name}\\b`));
  const unknown = await capture(['no-such-command']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command 'no-such-command'/);
  const badFlag = await capture(['train-ae', '--no-such-flag']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.err, /no-such-flag/);
  const missing = await capture(['train-ae']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /--config is required/);
  const badConfig = await capture(['train-ae', '--config', '/nonexistent/x.yaml']);
  assert.equal(badConfig.code, 1);
  assert.match(badConfig.err, /\/nonexistent\/x\.yaml: config file not found/);
});

test('lvdm doctor reports the backend, tools and a passing gradient self-check', { timeout: 120_000 }, async () => {
  const r = await runLvdm(['doctor', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { backend: string; threads: number; native: { available: boolean; threads?: number; fusedThreads?: number }; tools: Record<string, string | null>; self_check: { ok: boolean; checks: unknown[] } };
  assert.equal(report.backend, 'libtorch', 'the native backend is the default once set-up built it');
  assert.equal(report.native.available, true);
  assert.equal(report.threads, report.native.threads);
  assert.equal(report.native.fusedThreads, report.native.threads, "the addon's fused kernels use every thread");
  assert.equal(report.self_check.ok, true);
  assert.ok(report.self_check.checks.length >= 4);
  assert.ok(report.tools.ffmpeg, 'ffmpeg found (installed by scripts/setup.sh)');
  assert.ok('jupyter' in report.tools && 'chromium' in report.tools);
});
