/** `lvdm doctor`: backend, versions, external tools, and a gradient self-check of the custom kernels. */
import { execFileSync } from 'node:child_process';
import { Command } from '../types';
import { flag } from '../args';
import { bf16Units, gradientSelfCheck, initBackend, nativeInfo, nativeUnavailableReason, precisionUnsupported } from '../../backend';

/** First line of `<tool> <versionArg>`, or null when the tool is missing. */
export function toolVersion(tool: string, versionArg = '-version'): string | null {
  try {
    const out = execFileSync(tool, [versionArg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15000 });
    return out.split('\n')[0].trim();
  } catch {
    return null;
  }
}

export const EXTERNAL_TOOLS: { name: string; cmd: string; arg: string; needed: string }[] = [
  { name: 'ffmpeg', cmd: 'ffmpeg', arg: '-version', needed: 'video decoding/encoding (apt-get install ffmpeg)' },
  { name: 'ffprobe', cmd: 'ffprobe', arg: '-version', needed: 'video metadata (apt-get install ffmpeg)' },
  { name: 'jupyter', cmd: 'jupyter', arg: '--version', needed: 'notebooks (apt-get install jupyter-nbconvert jupyter-client)' },
  { name: 'chromium', cmd: 'chromium', arg: '--version', needed: 'PNG export of plots (apt-get install chromium)' },
];

export const command: Command = {
  name: 'doctor',
  summary: 'check the backend, package versions, external tools and the custom gradient kernels',
  options: {
    json: { type: 'boolean', help: 'print one JSON object instead of text' },
  },
  async run(values) {
    const info = await initBackend({ quiet: true });
    const tools = EXTERNAL_TOOLS.map((t) => ({ ...t, version: toolVersion(t.cmd, t.arg) }));
    const check = await gradientSelfCheck();
    const ni = nativeInfo();
    const native = ni !== null ? { available: true, ...ni } : { available: false, reason: nativeUnavailableReason() };
    // `train.precision: bf16` (lib/backend/precision.ts): whether this backend and CPU can run it.
    const bf16 = { units: bf16Units(), unsupported: precisionUnsupported('bf16') || undefined };
    const report = {
      backend: info.name,
      source: info.source,
      threads: info.threads ?? 1,
      native,
      bf16,
      versions: { node: process.version, ...info.versions },
      tools: Object.fromEntries(tools.map((t) => [t.name, t.version])),
      self_check: check,
    };
    if (flag(values, 'json')) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(`backend     ${info.name} (${info.source}), ${report.threads} thread${report.threads === 1 ? '' : 's'}`);
      if (ni !== null) {
        console.log(`native      libtorch ${ni.torch}, ${ni.blas.split(' ').slice(0, 2).join(' ')}, ${ni.threads} threads (fused kernels on ${ni.fusedThreads}), deterministic algorithms ${ni.deterministic ? 'on' : 'off'}`);
        if (ni.fusedThreads < ni.threads) console.log(`  warning: the addon's fused kernels run on ${ni.fusedThreads} of ${ni.threads} threads (built without -fopenmp?); rebuild with bash native/build.sh`);
      }
      else console.log(`native      unavailable (${nativeUnavailableReason()})`);
      console.log(`bf16        ${bf16.unsupported ? `unavailable: ${bf16.unsupported}` : `available (${bf16.units.join(', ')}): train.precision bf16 runs convolutions in bfloat16`}`);
      for (const [k, v] of Object.entries(report.versions)) console.log(`  ${k.padEnd(28)} ${v}`);
      console.log('tools');
      for (const t of tools) console.log(`  ${t.name.padEnd(10)} ${t.version ?? `missing - needed for ${t.needed}`}`);
      console.log(`gradient self-check: ${check.ok ? 'ok' : 'FAILED'}`);
      for (const c of check.checks) console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(40)} max rel err ${c.maxRelErr.toExponential(2)}`);
    }
    return check.ok ? 0 : 1;
  },
};
