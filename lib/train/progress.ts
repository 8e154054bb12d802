/** One training step as progress observers see it (per-step logs, not averaged). */
export interface ProgressEvent {
  label: string;
  step: number;
  total: number;
  startStep: number;
  logs: Record<string, number>;
}

/** Observes every training step of every ProgressBar in this process (e.g. a notebook's live display). */
export type ProgressListener = (e: ProgressEvent) => void;

const listeners = new Set<ProgressListener>();

/** Registers a listener; returns the function that removes it. Called even when the bar itself is off. */
export function addProgressListener(listener: ProgressListener): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** A one-line progress bar on stderr: step, loss, steps/s and ETA (a plain line every few seconds when not a TTY). */
export class ProgressBar {
  private readonly t0 = Date.now();
  private lastPrint = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(readonly label: string, readonly total: number, readonly startStep = 0, readonly enabled = true) {}

  update(step: number, logs: Record<string, number>): void {
    for (const l of listeners) l({ label: this.label, step, total: this.total, startStep: this.startStep, logs });
    if (!this.enabled) return;
    const now = Date.now();
    const done = step - this.startStep;
    const final = step >= this.total;
    if (!final && now - this.lastPrint < (this.tty ? 200 : 10000)) return;
    this.lastPrint = now;
    const rate = done / Math.max(1e-9, (now - this.t0) / 1000);
    const eta = rate > 0 ? (this.total - step) / rate : NaN;
    const width = 24;
    const filled = Math.round((width * step) / Math.max(1, this.total));
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const shown = Object.entries(logs)
      .slice(0, 4)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(' ');
    const line = `${this.label} [${bar}] ${step}/${this.total} ${shown} | ${rate.toFixed(2)} step/s ETA ${fmtTime(eta)}`;
    if (this.tty) process.stderr.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else process.stderr.write(line + '\n');
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(2) : v.toFixed(4);
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
