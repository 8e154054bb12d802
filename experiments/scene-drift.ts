/**
 * Scene drift, colourfulness and moving foreground of a run's videos against real clips (issue 12;
 * metrics/scene-drift.ts, metrics/colourfulness.ts, metrics/moving-foreground.ts): for every
 * finished sample point of the run, the mean colour drift of its clips at frame lags of 16, 64 and
 * 256 (those shorter than the videos), the colourfulness of the first and the last 64 frames with
 * the number of clips whose last 64 frames are more colourful than the most colourful real clip
 * (runaway latents end as saturated colour fields), and the share of moving pixels per 16-frame
 * window (does a clip show an actor?), averaged per setting over seeds; the same for held-out real
 * clips of the videos' length (content seed 3, which the run does not use) and, for the moving
 * foreground, for the run's reconstruction floor (its real stage's clips through the decoder)
 * next to the real clips they reconstruct.
 *
 *   node --import tsx experiments/scene-drift.ts [--experiment experiments/sky-synthetic-long.yaml] [--run DIR (its plan.json, --set overrides included)] [--real 16]
 * Writes <run>/scene-drift.json, <run>/plots/scene-drift.{html,png} (drift against the lag, one
 * line per setting, error bars: sd over seeds; real: sd over clips) and, for videos of 128 frames or
 * more, <run>/plots/colourfulness-by-window.{html,png} (colourfulness per 64-frame window, one line
 * per setting, with the real clips' mean and most colourful clip); prints a markdown table.
 * Short-clip points (16 frames) have no drift reading, only colourfulness and the moving foreground.
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
import { movingForeground } from '../metrics/moving-foreground';
import { frameColourfulness } from '../metrics/colourfulness';

const LAGS = [16, 64, 256];
const FOREGROUND_WINDOW = 16;
const COLOUR_FRAMES = 64;

/**
 * Drift per lag (lags >= the length are NaN), moving foreground and colourfulness of the first and
 * last 64 frames of each clip of an npz of videos, and the clips' mean colourfulness per 64-frame
 * window (the windows FVD_proxy is read over).
 */
function readingsOf(file: string): { frames: number; clips: number; perLag: number[][]; foreground: number[]; colourFirst: number[]; colourLast: number[]; colourByWindow: number[] } {
  const a = readNpz(file).get('videos');
  if (!a || a.shape.length !== 5) throw new Error(`${file}: expected 'videos' [n, T, H, W, 3]`);
  const [n, T, H, W] = a.shape;
  const lags = LAGS.filter((l) => l < T);
  const d = sceneDrift(a.data as Uint8Array, n, T, H, W, lags);
  const foreground = movingForeground(a.data as Uint8Array, n, T, H, W, { window: FOREGROUND_WINDOW });
  // Each frame's colourfulness once; the first and last 64 frames and the windows are means of it.
  const per = T * H * W * 3;
  const frameM = Array.from({ length: n }, (_, i) => frameColourfulness((a.data as Uint8Array).subarray(i * per, (i + 1) * per), T, H, W));
  const over = (from: number, to: number): number[] => frameM.map((m) => m.subarray(from, to).reduce((x, y) => x + y, 0) / (to - from));
  const span = Math.min(COLOUR_FRAMES, T);
  const colourFirst = over(0, span);
  const colourLast = over(T - span, T);
  const colourByWindow = Array.from({ length: Math.floor(T / span) }, (_, k) => mean(over(k * span, (k + 1) * span)));
  return { frames: T, clips: n, perLag: LAGS.map((l) => (l < T ? d[lags.indexOf(l)] : [NaN])), foreground, colourFirst, colourLast, colourByWindow };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { experiment: { type: 'string' }, run: { type: 'string' }, real: { type: 'string' } } });
  const file = values.experiment ?? path.join(__dirname, 'sky-synthetic-long.yaml');
  // A run folder's own plan (with the --set overrides it ran with), else the file's default run folder.
  const plan = values.run ? readPlan(values.run) : planExperiment(file, {});
  const settings = new Map<string, { label: string; frames: number; seeds: number[][]; foreground: number[]; colourFirst: number[]; colourLast: number[][]; colourByWindow: number[][] }>();
  for (const t of plan.tasks) {
    if (t.kind !== 'sample' || !t.point || taskState(plan, t) !== 'done') continue;
    const p = t.point;
    // Short points differ only in w (guidance: classifier-free, autoguidance) and the seed.
    const label = p.mode === 'short' ? `short w=${p.w}` : `${p.mode} s=${p.s} w=${p.w}`;
    const d = readingsOf(path.join(taskDir(plan, t), VIDEOS_FILE));
    const s = settings.get(label) ?? { label, frames: d.frames, seeds: [], foreground: [], colourFirst: [], colourLast: [], colourByWindow: [] };
    s.seeds.push(d.perLag.map((clips) => mean(clips)));
    s.foreground.push(mean(d.foreground));
    s.colourFirst.push(mean(d.colourFirst));
    s.colourLast.push(d.colourLast);
    s.colourByWindow.push(d.colourByWindow);
    settings.set(label, s);
  }
  if (!settings.size) throw new Error(`${plan.runDir}: no finished sample points`);
  const frames = Math.max(...[...settings.values()].map((s) => s.frames));
  const realTask = findTask(plan, 'real');
  const c = realTask.config as unknown as { data: DataConfig; seed: number };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-drift-'));
  let real: ReturnType<typeof readingsOf>;
  try {
    const realFile = path.join(tmp, 'real.npz');
    // Real videos as long as the generated ones (synthetic families render any length).
    await writeRealClips({ ...c.data, video_length: Math.max(frames, c.data.video_length ?? 0) }, c.seed, realFile, Number(values.real ?? 16), frames, 3);
    real = readingsOf(realFile);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const realColourMax = Math.max(...real.colourLast);
  const rows = [...settings.values()].map((s) => ({
    setting: s.label,
    seeds: s.seeds.length,
    drift: LAGS.map((_, i) => ({ mean: mean(s.seeds.map((x) => x[i])), sd: std(s.seeds.map((x) => x[i])) })),
    foreground: { mean: 100 * mean(s.foreground), sd: 100 * std(s.foreground) },
    colourfulness: {
      first: { mean: mean(s.colourFirst), sd: std(s.colourFirst) },
      last: { mean: mean(s.colourLast.map(mean)), sd: std(s.colourLast.map(mean)) },
      // Clips whose last frames are more colourful than every real clip's last frames.
      above_real: s.colourLast.flat().filter((c) => c > realColourMax).length,
      clips: s.colourLast.flat().length,
      // Per 64-frame window: mean over clips, then mean and sd over seeds.
      by_window: s.colourByWindow[0].map((_, k) => ({ mean: mean(s.colourByWindow.map((x) => x[k])), sd: std(s.colourByWindow.map((x) => x[k])) })),
    },
  }));
  const overClips = (x: number[]): { mean: number; sd: number } => ({ mean: 100 * mean(x), sd: 100 * std(x) });
  const realRow = {
    setting: `real (${real.clips} held-out clips)`,
    clips: real.clips,
    drift: real.perLag.map((x) => ({ mean: mean(x), sd: std(x) })),
    foreground: overClips(real.foreground),
    colourfulness: { first: { mean: mean(real.colourFirst), sd: std(real.colourFirst) }, last: { mean: mean(real.colourLast), sd: std(real.colourLast) }, max: realColourMax, by_window: real.colourByWindow.map((m) => ({ mean: m, sd: NaN })) },
  };
  // The reconstruction floor's clips (the run's real stage) and the real clips they reconstruct.
  const floors: { setting: string; foreground: { mean: number; sd: number } }[] = [];
  const floorDir = taskDir(plan, realTask);
  for (const [file, setting] of [['floor.npz', 'real clips of the floors'], ['floor-reconstructed.npz', 'their reconstructions (the floor)']]) {
    if (taskState(plan, realTask) !== 'done' || !fs.existsSync(path.join(floorDir, file))) continue;
    const r = readingsOf(path.join(floorDir, file));
    if (r.frames >= FOREGROUND_WINDOW) floors.push({ setting: `${setting}, ${r.clips} clips`, foreground: overClips(r.foreground) });
  }
  writeJsonAtomic(path.join(plan.runDir, 'scene-drift.json'), { experiment: path.relative(process.cwd(), plan.file), frames, lags: LAGS, foreground_window: FOREGROUND_WINDOW, rows, real: realRow, floors });
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
  if (rows.some((r) => r.drift.some((d) => Number.isFinite(d.mean)))) {
    const written = await writeFigureFiles({ data: lines, layout }, 'scene drift', path.join(plan.runDir, 'plots'), 'scene-drift');
    if (written.message) console.error(written.message);
  }
  // Colourfulness per 64-frame window: does a setting run away with length, and when?
  const span = Math.min(COLOUR_FRAMES, frames);
  if (frames >= 2 * span) {
    const byWindow = [...rows, realRow].map((r, i): Figure['data'][number] => {
      const real = r === realRow;
      const w = r.colourfulness.by_window;
      return {
        type: 'scatter',
        mode: 'lines+markers',
        name: r.setting,
        x: w.map((_, k) => k * span),
        y: w.map((d) => d.mean),
        error_y: { type: 'data', array: w.map((d) => (Number.isFinite(d.sd) ? d.sd : 0)), visible: !real },
        line: { color: real ? '#000000' : color(i), width: real ? 2.5 : 1.5, dash: real ? 'dash' : dash(i) },
      };
    });
    byWindow.push({ type: 'scatter', mode: 'lines', name: `most colourful real clip (${realColourMax.toFixed(0)})`, x: [0, frames - span], y: [realColourMax, realColourMax], line: { color: '#777777', width: 1, dash: 'dot' } });
    const written = await writeFigureFiles(
      { data: byWindow, layout: baseLayout(`colourfulness per ${span}-frame window of ${frames}-frame videos (Hasler and Suesstrunk; error bars: sd over seeds)`, 'window start (frame)', 'colourfulness') },
      'colourfulness by window',
      path.join(plan.runDir, 'plots'),
      'colourfulness-by-window',
    );
    if (written.message) console.error(written.message);
  }
  const cell = (d: { mean: number; sd: number }, digits = 1): string => (!Number.isFinite(d.mean) ? '–' : Number.isFinite(d.sd) ? `${d.mean.toFixed(digits)} ± ${d.sd.toFixed(digits)}` : d.mean.toFixed(digits));
  console.log(`| setting | ${LAGS.map((l) => `drift at ${l} frames`).join(' | ')} | colourfulness, first ${span} frames | colourfulness, last ${span} frames | clips above the most colourful real clip | moving foreground (% of pixels) |`);
  console.log(`|---|${LAGS.map(() => '---').join('|')}|---|---|---|---|`);
  for (const r of rows) {
    const c = r.colourfulness;
    console.log(`| ${r.setting} (${r.seeds} seeds) | ${r.drift.map((d) => cell(d)).join(' | ')} | ${cell(c.first)} | ${cell(c.last)} | ${c.above_real} of ${c.clips} | ${cell(r.foreground, 2)} |`);
  }
  const rc = realRow.colourfulness;
  console.log(`| ${realRow.setting} | ${realRow.drift.map((d) => cell(d)).join(' | ')} | ${cell(rc.first)} | ${cell(rc.last)} (max ${rc.max.toFixed(1)}) | | ${cell(realRow.foreground, 2)} |`);
  for (const f of floors) console.log(`| ${f.setting} | ${LAGS.map(() => '–').join(' | ')} | | | | ${cell(f.foreground, 2)} |`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
