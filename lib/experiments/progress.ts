/**
 * Progress of a local run: one bar per worker (what it runs, fraction, ETA from the rate since the
 * task started), and plain lines above the bars (finished tasks, notes). On a terminal the bars
 * are redrawn in place; otherwise each worker's state is printed as a line every 15 s.
 */
import { fmtTime } from '../train/progress';

interface Slot {
  label: string;
  fraction: number;
  t0: number;
  f0: number | null;
  lastPrint: number;
}

const WIDTH = 24;

export class WorkerBars {
  private readonly slots: (Slot | null)[];
  private readonly tty: boolean;
  private drawn = 0;
  private lastDraw = 0;

  constructor(
    workers: number,
    readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.slots = Array.from({ length: workers }, () => null);
    this.tty = Boolean(stream.isTTY);
  }

  start(slot: number, label: string): void {
    this.slots[slot] = { label, fraction: 0, t0: Date.now(), f0: null, lastPrint: Date.now() };
    this.redraw(true);
  }

  update(slot: number, fraction: number, label: string): void {
    const s = this.slots[slot];
    if (!s) return;
    s.label = label;
    s.fraction = Math.min(1, Math.max(0, fraction));
    // A resumed task starts part-way: the ETA uses the rate since the first report.
    if (s.f0 === null) {
      s.f0 = s.fraction;
      s.t0 = Date.now();
    }
    if (this.tty) this.redraw(false);
    else if (this.enabled && Date.now() - s.lastPrint > 15000) {
      s.lastPrint = Date.now();
      this.stream.write(`${this.text(slot, s)}\n`);
    }
  }

  finish(slot: number): void {
    this.slots[slot] = null;
    this.redraw(true);
  }

  /** A line above the bars. */
  line(text: string): void {
    this.clear();
    this.stream.write(`${text}\n`);
    this.redraw(true);
  }

  close(): void {
    this.clear();
  }

  private text(i: number, s: Slot): string {
    const filled = Math.round(WIDTH * s.fraction);
    const el = (Date.now() - s.t0) / 1000;
    const rate = s.f0 !== null && el > 0 ? (s.fraction - s.f0) / el : 0;
    const eta = rate > 0 ? (1 - s.fraction) / rate : NaN;
    return `w${i + 1} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${(100 * s.fraction).toFixed(0).padStart(3)}% ETA ${fmtTime(eta)} ${s.label}`;
  }

  private clear(): void {
    if (!this.tty || this.drawn === 0) return;
    this.stream.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private redraw(force: boolean): void {
    if (!this.enabled || !this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 200) return;
    this.lastDraw = now;
    this.clear();
    const cols = this.stream.columns || 120;
    const lines = this.slots.map((s, i) => (s ? this.text(i, s) : `w${i + 1} idle`).slice(0, cols - 1));
    this.stream.write(lines.map((l) => `${l}\n`).join(''));
    this.drawn = lines.length;
  }
}
