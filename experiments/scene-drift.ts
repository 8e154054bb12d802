/**
 * Scene drift of a run's long videos against real long clips (issue 12; metrics/scene-drift.ts):
 * for every finished sample point of the run, the mean colour drift of its clips at frame lags of
 * 16, 64 and 256 (those shorter than the videos), averaged per setting over seeds; and the same
 * for held-out real clips of the videos' length (content seed 3, which the run does not use).
 *
 *   node --import tsx experiments/scene-drift.ts [--experiment experiments/sky-synthetic-long.yaml] [--run DIR (its plan.json, --set overrides included)] [--real 16]
 * Writes <run>/scene-drift.json and <run>/plots/scene-drift.{html,png} (drift against the lag, one
 * line per setting, error bars: sd over seeds; real: sd over clips); prints a markdown table.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readNpz } from '../lib/io/npy';
import { writeJsonAtomic } from '../lib/io/atomic';
import { baseLayout, color, dash, type Figure } from '../lib/plots/figure';
import { writeFigureFiles } from '../lib/plots/files';
import { findTask, planExperiment, readPlan, taskDir, taskState } from '../lib/experiments/plan';
import { VIDEOS_FILE } from '../lib/experiments/execute';
import { writeRealClips } from '../lib/experiments/real';
import type { DataConfig } from '../lib/config/schema';
import { mean, std } from '../lib/results/stats';
import { sceneDrift } from '../metrics/scene-drift';

const LAGS = [16, 64, 256];

/** Mean drift over the clips of an npz of videos, per lag (lags >= the length are NaN). */
function driftOf(file: string): { frames: number; clips: number; perLag: number[][] } {
  const a = readNpz(file).get('videos');
  if (!a || a.shape.length !== 5) throw new Error(`${file}: expected 'videos' [n, T, H, W, 3]`);
  const [n, T, H, W] = a.shape;
  const lags = LAGS.filter((l) => l < T);
  const d = sceneDrift(a.data as Uint8Array, n, T, H, W, lags);
  return { frames: T, clips: n, perLag: LAGS.map((l) => (l < T ? d[lags.indexOf(l)] : [NaN])) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { experiment: { type: 'string' }, run: { type: 'string' }, real: { type: 'string' } } });
  const file = values.experiment ?? path.join(__dirname, 'sky-synthetic-long.yaml');
  // A run folder's own plan (with the --set overrides it ran with), else the file's default run folder.
  const plan = values.run ? readPlan(values.run) : planExperiment(file, {});
  const settings = new Map<string, { label: string; frames: number; seeds: number[][] }>();
  for (const t of plan.tasks) {
    if (t.kind !== 'sample' || !t.point || t.point.mode === 'short' || taskState(plan, t) !== 'done') continue;
    const p = t.point;
    const label = `${p.mode} s=${p.s} w=${p.w}`;
    const d = driftOf(path.join(taskDir(plan, t), VIDEOS_FILE));
    const s = settings.get(label) ?? { label, frames: d.frames, seeds: [] };
    s.seeds.push(d.perLag.map((clips) => mean(clips)));
    settings.set(label, s);
  }
  if (!settings.size) throw new Error(`${plan.runDir}: no finished long-video sample points`);
  const frames = Math.max(...[...settings.values()].map((s) => s.frames));
  const c = findTask(plan, 'real').config as unknown as { data: DataConfig; seed: number };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-drift-'));
  let real: ReturnType<typeof driftOf>;
  try {
    const realFile = path.join(tmp, 'real.npz');
    // Real videos as long as the generated ones (synthetic families render any length).
    await writeRealClips({ ...c.data, video_length: Math.max(frames, c.data.video_length ?? 0) }, c.seed, realFile, Number(values.real ?? 16), frames, 3);
    real = driftOf(realFile);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const rows = [...settings.values()].map((s) => ({
    setting: s.label,
    seeds: s.seeds.length,
    drift: LAGS.map((_, i) => ({ mean: mean(s.seeds.map((x) => x[i])), sd: std(s.seeds.map((x) => x[i])) })),
  }));
  const realRow = { setting: `real (${real.clips} held-out clips)`, clips: real.clips, drift: real.perLag.map((x) => ({ mean: mean(x), sd: std(x) })) };
  writeJsonAtomic(path.join(plan.runDir, 'scene-drift.json'), { experiment: path.relative(process.cwd(), plan.file), frames, lags: LAGS, rows, real: realRow });
  const lines = [...rows, realRow].map((r, i): Figure['data'][number] => {
    const ok = r.drift.map((d, k) => ({ lag: LAGS[k], ...d })).filter((d) => Number.isFinite(d.mean));
    const real = r === realRow;
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name: r.setting,
      x: ok.map((d) => d.lag),
      y: ok.map((d) => d.mean),
      error_y: { type: 'data', array: ok.map((d) => d.sd), visible: true },
      line: { color: real ? '#000000' : color(i), width: real ? 2.5 : 1.5, dash: real ? 'dash' : dash(i) }, // past ten settings the colours repeat: the dash tells them apart
    };
  });
  const layout = baseLayout(`scene drift of ${frames}-frame videos: mean colour change between frames a lag apart`, 'lag (frames)', 'colour drift (0-255 levels)');
  layout.xaxis.type = 'log';
  layout.xaxis.tickvals = LAGS;
  layout.xaxis.ticktext = LAGS.map(String);
  const written = await writeFigureFiles({ data: lines, layout }, 'scene drift', path.join(plan.runDir, 'plots'), 'scene-drift');
  if (written.message) console.error(written.message);
  const cell = (d: { mean: number; sd: number }): string => (Number.isFinite(d.mean) ? `${d.mean.toFixed(1)} ± ${d.sd.toFixed(1)}` : '–');
  console.log(`| setting | ${LAGS.map((l) => `drift at ${l} frames`).join(' | ')} |`);
  console.log(`|---|${LAGS.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.setting} (${r.seeds} seeds) | ${r.drift.map(cell).join(' | ')} |`);
  console.log(`| ${realRow.setting} | ${realRow.drift.map(cell).join(' | ')} |`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
