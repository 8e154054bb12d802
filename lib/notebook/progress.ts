/**
 * Live progress for long notebook cells: one output per training stage, replaced in place
 * (Jupyter's update_display_data, which tslab sends immediately even while the cell computes),
 * showing a bar, the step rate and ETA, and an SVG curve of the loss so far. It observes every
 * training loop in the process through lib/train/progress's listeners, so it works around any
 * library call that trains (trainAutoencoder, trainLvdm, trainLongModel, the runner's tasks).
 */
import { addProgressListener, fmtTime, ProgressEvent } from '../train/progress';
import { escapeHtml } from '../results/table';
import { LiveOutput, outputSink } from './output';

/** An SVG line chart of `ys` over `xs` (min/max labelled), for live displays. */
export function curveSvg(xs: number[], ys: number[], opts: { width?: number; height?: number; label?: string } = {}): string {
  const width = opts.width ?? 360;
  const height = opts.height ?? 120;
  const pad = { l: 52, r: 8, t: 14, b: 16 };
  const pts = xs.map((x, i) => [x, ys[i]] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const label = escapeHtml(opts.label ?? '');
  if (pts.length === 0) return `<svg width="${width}" height="${height}"><text x="4" y="14" font-size="11">${label}: no values yet</text></svg>`;
  const x0 = Math.min(...pts.map((p) => p[0]));
  const x1 = Math.max(...pts.map((p) => p[0]));
  const y0 = Math.min(...pts.map((p) => p[1]));
  const y1 = Math.max(...pts.map((p) => p[1]));
  const sx = (x: number): number => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y: number): number => height - pad.b - ((y - y0) / (y1 - y0 || 1)) * (height - pad.t - pad.b);
  const line = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
  const f = (v: number): string => (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(1));
  return (
    `<svg class="lvdm-curve" width="${width}" height="${height}" style="font:10px sans-serif">` +
    `<rect x="${pad.l}" y="${pad.t}" width="${width - pad.l - pad.r}" height="${height - pad.t - pad.b}" fill="#fafafa" stroke="#ccc"/>` +
    `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${line}"/>` +
    `<text x="${pad.l}" y="10">${label}</text>` +
    `<text x="${pad.l - 4}" y="${pad.t + 8}" text-anchor="end">${f(y1)}</text>` +
    `<text x="${pad.l - 4}" y="${height - pad.b}" text-anchor="end">${f(y0)}</text>` +
    `<text x="${pad.l}" y="${height - 3}">${x0}</text>` +
    `<text x="${width - pad.r}" y="${height - 3}" text-anchor="end">${x1}</text>` +
    `</svg>`
  );
}

/** A progress bar as HTML: label, fraction, and a free text line. */
export function barHtml(label: string, done: number, total: number, text: string): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  return (
    `<div style="font:12px monospace;margin:2px 0">` +
    `<b>${escapeHtml(label)}</b> ` +
    `<span style="display:inline-block;width:240px;height:10px;border:1px solid #888;vertical-align:middle;background:#eee">` +
    `<span style="display:block;height:100%;width:${(frac * 100).toFixed(1)}%;background:#2ca02c"></span></span> ` +
    `${done}/${total} ${escapeHtml(text)}</div>`
  );
}

interface StageState {
  label: string;
  out: LiveOutput;
  steps: number[];
  loss: number[];
  key: string;
  t0: number;
  firstStep: number;
  lastDraw: number;
  lastStep: number;
  total: number;
  logs: Record<string, number>;
}

export interface LiveTrainingOptions {
  /** Minimum milliseconds between redraws (default 500; the last step always draws). */
  everyMs?: number;
  /** Log key plotted (default 'loss', else the stage's first log key). */
  key?: string;
  /** Points kept per curve (older ones are thinned; default 400). */
  maxPoints?: number;
}

export interface LiveTraining {
  /** Draws every stage's final state and stops observing. */
  stop(): void;
}

/** Starts showing every training stage that runs in this process until `stop()`. */
export function liveTraining(opts: LiveTrainingOptions = {}): LiveTraining {
  const everyMs = opts.everyMs ?? 500;
  const maxPoints = opts.maxPoints ?? 400;
  const stages = new Map<string, StageState>();
  let current: StageState | null = null;

  const draw = (s: StageState): void => {
    const secs = (Date.now() - s.t0) / 1000;
    const rate = (s.lastStep - s.firstStep) / Math.max(1e-9, secs);
    const eta = rate > 0 ? (s.total - s.lastStep) / rate : NaN;
    const logs = Object.entries(s.logs)
      .slice(0, 4)
      .map(([k, v]) => `${k} ${Number.isFinite(v) ? v.toPrecision(4) : String(v)}`)
      .join('  ');
    const text = `${logs} | ${rate.toFixed(2)} step/s, ${fmtTime(secs)} elapsed, ETA ${s.lastStep >= s.total ? '0s' : fmtTime(eta)}`;
    s.out.html(`<div class="lvdm-progress">${barHtml(s.label, s.lastStep, s.total, text)}${curveSvg(s.steps, s.loss, { label: `${s.label}: ${s.key}` })}</div>`);
    s.lastDraw = Date.now();
  };

  const onStep = (e: ProgressEvent): void => {
    let s = stages.get(e.label);
    if (!s || e.step <= s.lastStep) {
      // A new stage (or the same label run again): a new output.
      const key = opts.key ?? ('loss' in e.logs ? 'loss' : Object.keys(e.logs)[0] ?? 'loss');
      s = { label: e.label, out: outputSink().live(), steps: [], loss: [], key, t0: Date.now(), firstStep: e.step - 1, lastDraw: 0, lastStep: e.step - 1, total: e.total, logs: {} };
      stages.set(e.label, s);
      if (current && current !== s) draw(current);
    }
    current = s;
    s.lastStep = e.step;
    s.total = e.total;
    s.logs = e.logs;
    s.steps.push(e.step);
    s.loss.push(e.logs[s.key]);
    if (s.steps.length > maxPoints) {
      // Keep every other point of the older half: the curve keeps its shape at bounded size.
      const half = Math.floor(s.steps.length / 2);
      s.steps = s.steps.filter((_, i) => i >= half || i % 2 === 0);
      s.loss = s.loss.filter((_, i) => i >= half || i % 2 === 0);
    }
    if (e.step >= e.total || Date.now() - s.lastDraw >= everyMs) draw(s);
  };

  const remove = addProgressListener(onStep);
  return {
    stop() {
      remove();
      for (const s of stages.values()) draw(s);
    },
  };
}

/** Runs `fn` with live training progress shown, and stops it however `fn` ends. */
export async function withLiveTraining<T>(fn: () => Promise<T>, opts: LiveTrainingOptions = {}): Promise<T> {
  const live = liveTraining(opts);
  try {
    return await fn();
  } finally {
    live.stop();
  }
}

export interface LiveBar {
  /** Advances to `done` (absolute) with an optional status text. */
  update(done: number, text?: string): void;
  /** Draws the final state. */
  done(text?: string): void;
}

/** A bar for any loop (sampling, a sweep): one output updated in place, at most every `everyMs`. */
export function liveBar(label: string, total: number, everyMs = 500): LiveBar {
  const out = outputSink().live();
  const t0 = Date.now();
  let last = 0;
  let n = 0;
  const draw = (text: string): void => {
    const secs = (Date.now() - t0) / 1000;
    out.html(barHtml(label, n, total, `${text} (${fmtTime(secs)})`));
    last = Date.now();
  };
  draw('');
  return {
    update(done, text = '') {
      n = done;
      if (done >= total || Date.now() - last >= everyMs) draw(text);
    },
    done(text = 'done') {
      n = Math.max(n, total);
      draw(text);
    },
  };
}
