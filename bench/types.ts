/** One benchmark workload, as printed in the table and in `npm run bench -- --json`. */
export interface BenchResult {
  /** Workload name, e.g. `unet-reference`, `kernel-conv2d-backprop-filter`. */
  name: string;
  /** Parameter count where the workload is a model. */
  params?: number;
  /** Timings in milliseconds, keyed by what was timed (forward_ms, train_step_ms, ...). */
  timings_ms: Record<string, number>;
  /** Other figures (gflops_per_s, clips_per_s, peak_rss_mb, gflop_per_forward, ...). */
  extra?: Record<string, number | string>;
  /** Free-text remark (reference figures, caveats). */
  note?: string;
}

export interface BenchOptions {
  /** Fewer repetitions (used by the smoke test). */
  quick: boolean;
}

/** Every bench/<area>.ts exports `run` with this type. */
export type BenchModule = (opts: BenchOptions) => Promise<BenchResult[]>;

/** Median wall time of `fn` over `reps` runs after `warmup` runs, in ms. */
export async function timeMs(fn: () => unknown | Promise<unknown>, reps: number, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
