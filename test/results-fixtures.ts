/** Synthetic sweep results for the results / plots / report tests (no models involved). */
import type { LossCurve, PointResult, SweepMode } from '../lib/experiments/types';
import { Rng } from '../lib/nn/rng';

export interface SyntheticSweep {
  modes?: SweepMode[];
  s?: (number | null)[];
  w?: number[];
  seeds?: number[];
  /** Frame windows per point (0: none). */
  windows?: number;
  metric?: 'fvd' | 'fvd_proxy';
  /** Spread of the per-seed offset shared by all settings (default 40). */
  seedSpread?: number;
  /** Per-point noise on top (default 3). */
  noise?: number;
  samples?: (p: { mode: SweepMode; s: number | null; w: number; seed: number }) => string[];
}

/** The true (noise-free) metric of a setting: lower with moderate s and w, hierarchical better. */
export function trueMetric(mode: SweepMode, s: number | null, w: number): number {
  const sv = s ?? 0;
  return 300 + (mode === 'hierarchical' ? -20 : 0) - 0.2 * sv + 0.0008 * sv * sv - 30 * w + 25 * w * w;
}

/** Points whose seeds share a large offset (seed spread) and differ by a small setting effect. */
export function syntheticPoints(o: SyntheticSweep = {}): PointResult[] {
  const modes = o.modes ?? ['hierarchical'];
  const ss = o.s ?? [0, 100, 200];
  const ws = o.w ?? [0, 1];
  const seeds = o.seeds ?? [1, 2, 3];
  const nw = o.windows ?? 3;
  const metric = o.metric ?? 'fvd_proxy';
  const seedOffset = new Map(seeds.map((sd) => [sd, new Rng(1000 + sd).normal() * (o.seedSpread ?? 40)]));
  const out: PointResult[] = [];
  for (const mode of modes)
    for (const s of ss)
      for (const w of ws)
        for (const seed of seeds) {
          const rng = new Rng(seed * 7919 + Math.round((s ?? -1) * 13 + w * 101) + (mode === 'hierarchical' ? 5 : 0));
          const base = trueMetric(mode, s, w) + seedOffset.get(seed)!;
          const fvd = base + rng.normal() * (o.noise ?? 3);
          const byWin = Array.from({ length: nw }, (_, i) => base + i * (mode === 'autoregressive' ? 30 : 12) + rng.normal() * (o.noise ?? 3));
          out.push({
            experiment: 'synthetic-ablation',
            dataset: 'synthetic-sky',
            mode,
            s,
            w,
            frames: 64,
            steps: 20,
            seed,
            metric,
            fvd,
            kvd: fvd / 1000,
            window: 16,
            fvd_by_window: byWin,
            kvd_by_window: byWin.map((v) => v / 1000),
            n_fake: 8,
            n_real: 16,
            wall_s: 12.5 + seed,
            protocol: { name: 'window16', frames: 16, stride: 1, seed: 0, runs: 1, covariance: 'unbiased (n - 1)', feature_extractor: { extractor: 'synthetic-motion' } },
            samples: o.samples ? o.samples({ mode, s, w, seed }) : [],
          });
        }
  return out;
}

export function syntheticCurves(): LossCurve[] {
  const steps = Array.from({ length: 50 }, (_, i) => i * 10);
  return [
    { stage: 'autoencoder', steps, loss: steps.map((t) => 0.05 + 0.4 * Math.exp(-t / 120)) },
    { stage: 'prediction', steps, loss: steps.map((t) => 0.12 + 0.5 * Math.exp(-t / 80) + 0.01 * Math.sin(t)) },
  ];
}
