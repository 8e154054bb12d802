/**
 * `npm run bench [-- --json] [-- --quick] [-- --only name,...] [-- --backend native|wasm|...] [-- --precision fp32|bf16]`:
 * every benchmark workload, printed as a table (or JSON: one object with `backend`, `threads`,
 * `precision`, `results` [{name, params, timings_ms, extra}]). Every result names the backend, its
 * threads and the convolutions' precision (`extra.backend`, `extra.threads`, `extra.precision`;
 * LVDM_BACKEND / LVDM_THREADS / LVDM_WASM_THREADS choose the first two, --precision the third:
 * lib/backend/precision.ts).
 */
import { parseArgs } from 'node:util';
import { initBackend, setPrecision, type Precision } from '../lib/backend';
import { BenchModule, BenchResult } from './types';
import { run as kernels } from './kernels';
import { run as autoencoder } from './autoencoder';
import { run as data } from './data';
import { run as unet } from './unet';
import { run as metrics } from './metrics';
import { run as long } from './long';
import { run as shapes } from './shapes';

const MODULES: [string, BenchModule][] = [
  ['kernels', kernels],
  ['autoencoder', autoencoder],
  ['data', data],
  ['unet', unet],
  ['metrics', metrics],
  ['long', long],
  ['shapes', shapes],
];

function fmt(v: number | string | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export function formatTable(results: BenchResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const parts = [
      ...(r.params !== undefined ? [`params ${r.params.toLocaleString('en-US')}`] : []),
      ...Object.entries(r.timings_ms).map(([k, v]) => `${k} ${fmt(v)}`),
      ...Object.entries(r.extra ?? {}).map(([k, v]) => `${k} ${fmt(v)}`),
    ];
    lines.push(`${r.name.padEnd(36)} ${parts.join(' | ')}`);
    if (r.note) lines.push(`${''.padEnd(36)} (${r.note})`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, only: { type: 'string' }, backend: { type: 'string' }, precision: { type: 'string' } },
    strict: true,
  });
  const info = await initBackend({ quiet: Boolean(values.json), prefer: values.backend });
  const threads = info.threads ?? 1;
  const precision = (values.precision ?? 'fp32') as Precision;
  setPrecision(precision, 'bench --precision');
  const only = values.only ? values.only.split(',') : null;
  const results: BenchResult[] = [];
  for (const [name, mod] of MODULES) {
    if (only && !only.includes(name)) continue;
    if (!values.json) process.stderr.write(`[bench] ${name}...\n`);
    const rs = (await mod({ quick: Boolean(values.quick) })).map((r) => ({ ...r, extra: { ...r.extra, backend: info.name, threads, precision } }));
    results.push(...rs);
    if (!values.json) console.log(formatTable(rs));
  }
  if (values.json) {
    const rss = process.resourceUsage().maxRSS / 1024;
    console.log(JSON.stringify({ backend: info.name, threads, precision, versions: info.versions, peak_rss_mb: rss, results }, null, 2));
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? String(e));
  process.exitCode = 1;
});
