/**
 * FVD / KVD between a real and a generated set, end to end: inputs (feature arrays or videos),
 * clip protocol, feature extraction (with a cache for real clips), distances, repeated runs, and
 * a result object that records the full protocol. `lvdm metrics` is a thin wrapper around this.
 */
import * as path from 'node:path';
import { FeatureMatrix, readFeatures, selectRows } from './features';
import { FeatureExtractor, extractFeatures, featureCacheKey, readCachedFeatures, writeCachedFeatures } from './extract';
import { CovarianceConvention, frechetDistance } from './frechet';
import { KvdSubsetResult, kvd, kvdSubsets } from './kvd';
import { ClipProtocol, ClipRef, ClipSelection, clipSpan, selectFakeClips, selectRealClips, selectWindowClips, validateProtocol, windowCount } from './protocols';
import { ResizeConvention } from './preprocess';
import { Rng } from '../lib/nn/rng';
import { VideoSource, classifyInput, openVideoSource } from './videos';

export interface MetricsOptions {
  real: string;
  fake: string;
  /** .npz member names, when the archive holds several arrays. */
  realKey?: string;
  fakeKey?: string;
  /** Free-text description of the real split, recorded in the result (e.g. 'UCF-101 train+test'). */
  realSplit?: string;
  covariance: CovarianceConvention;
  protocol: ClipProtocol;
  /** Repeats with re-drawn real clips (seed + run); mean and std are reported. */
  runs: number;
  /** KID-style subset KVD in addition to the full-set KVD. */
  kid?: { subsets: number; subsetSize?: number; seed: number };
  /** Needed when either input is videos. */
  extractor?: FeatureExtractor;
  /** When both inputs are feature arrays: the extractor that produced them (names the metric). */
  featuresName?: string;
  /** FVD per frame window of the generated videos (window length W; real clips use W frames). */
  window?: number;
  /** Real clips resized to this square size (uint8) before extraction. */
  clipResize?: { size: number; convention: ResizeConvention };
  /** Feature cache folder for real videos; null disables. */
  cacheDir?: string | null;
  progress?: boolean;
  /** Informational messages (warnings, cache hits). */
  log?: (msg: string) => void;
  /**
   * Whether the counts were asked for explicitly. When not, a feature-array input uses all its
   * rows without a warning (the protocol's 2048 applies to videos).
   */
  explicitCounts?: { real: boolean; fake: boolean };
}

export interface RunResult {
  run: number;
  seed: number;
  n_real: number;
  fvd: number;
  kvd: number;
  kid?: { mean: number; std: number };
}

export interface WindowResult {
  window: number;
  frames: [number, number];
  n_fake: number;
  fvd_mean: number;
  fvd_std: number;
  kvd_mean: number;
  kvd_std: number;
  runs: { fvd: number; kvd: number }[];
}

export type MetricsReport = Record<string, unknown>;

function meanStd(v: number[]): [number, number] {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const s = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length); // numpy std (ddof 0)
  return [m, s];
}

async function lengthsOf(src: VideoSource, upTo?: { need: number; span: number }): Promise<number[]> {
  const out: number[] = [];
  let eligible = 0;
  for (let i = 0; i < src.count; i++) {
    const n = await src.frameCount(i);
    out.push(n);
    if (upTo && n >= upTo.span && ++eligible >= upTo.need) break;
  }
  return out;
}

interface Side {
  kind: 'features' | 'videos';
  features?: FeatureMatrix;
  source?: VideoSource;
}

function openSide(p: string, key: string | undefined): Side {
  const kind = classifyInput(p, key);
  if (kind === 'features') return { kind, features: readFeatures(p, key) };
  return { kind, source: openVideoSource(p, key) };
}

function clipsHash(clips: readonly ClipRef[]): string {
  return featureCacheKey({ clips: clips.map((c) => `${c.video}@${c.start}`) });
}

function warnShortfall(sel: ClipSelection, what: string, log: (m: string) => void): void {
  if (sel.shortfall) log(`warning: ${what}: ${sel.shortfall.available} clips available, ${sel.shortfall.requested} requested; using ${sel.shortfall.available}`);
}

/** Computes FVD/KVD (or their proxy-named variants) with the full protocol recorded. */
export async function computeMetrics(o: MetricsOptions): Promise<MetricsReport> {
  const t0 = Date.now();
  const log = o.log ?? (() => undefined);
  validateProtocol(o.protocol);
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error(`runs must be a positive integer, got ${o.runs}`);
  const p = o.protocol;
  const real = openSide(o.real, o.realKey);
  const fake = openSide(o.fake, o.fakeKey);
  try {
    const needsExtractor = real.kind === 'videos' || fake.kind === 'videos';
    if (needsExtractor && !o.extractor)
      throw new Error('video inputs need a feature extractor: pass --i3d FILE (I3D weights, see metrics/README.md) or --features synthetic-motion (proxy; reported as fvd_proxy/kvd_proxy)');
    if (o.window !== undefined && fake.kind !== 'videos') throw new Error('--window needs generated videos (not a feature array) as --fake');
    const ex = needsExtractor ? o.extractor! : undefined;
    const featureName = ex ? ex.name : (o.featuresName ?? 'precomputed');
    const suffix = ex ? ex.metricSuffix : o.featuresName === undefined || o.featuresName === 'i3d' ? '' : '_proxy';
    const fvdKey = `fvd${suffix}`;
    const kvdKey = `kvd${suffix}`;
    const clipFrames = o.window ?? p.frames;
    const clipStride = o.window !== undefined ? 1 : p.stride;

    // ---- generated side (fixed across runs) ----
    const fakeSets: { label: string; frames: [number, number] | null; x: FeatureMatrix; discarded: number }[] = [];
    let fakeSelection: Record<string, unknown>;
    if (fake.kind === 'features') {
      const f = fake.features!;
      const n = o.explicitCounts?.fake === false ? f.n : Math.min(p.numFake, f.n);
      if (n < p.numFake && o.explicitCounts?.fake !== false) log(`warning: ${o.fake}: ${f.n} feature rows, ${p.numFake} requested; using ${f.n}`);
      fakeSets.push({ label: 'all', frames: null, x: n < f.n ? selectRows(f, Array.from({ length: n }, (_, i) => i)) : f, discarded: 0 });
      fakeSelection = { type: 'feature rows', rows: `first ${n}` };
    } else {
      const src = fake.source!;
      if (o.window !== undefined) {
        const lengths = await lengthsOf(src);
        const k = windowCount(lengths, o.window, p.numFake);
        if (k < 1) throw new Error(`${o.fake}: videos are shorter than one window of ${o.window} frames`);
        for (let w = 0; w < k; w++) {
          const sel = selectWindowClips(lengths, o.window, w, p.numFake);
          const x = await extractFeatures(src, sel.clips, ex!, { frames: o.window, stride: 1, label: `generated window ${w}`, progress: o.progress });
          fakeSets.push({ label: `window ${w}`, frames: [w * o.window, (w + 1) * o.window], x, discarded: sel.discarded });
        }
        fakeSelection = { type: 'frame windows', window: o.window, windows: k, videos: `first ${fakeSets[0].x.n}` };
      } else {
        const lengths = await lengthsOf(src, { need: p.numFake, span: clipSpan(clipFrames, clipStride) });
        const sel = selectFakeClips(lengths, { ...p, frames: clipFrames, stride: clipStride });
        warnShortfall(sel, o.fake, log);
        const x = await extractFeatures(src, sel.clips, ex!, { frames: clipFrames, stride: clipStride, label: 'generated', progress: o.progress });
        fakeSets.push({ label: 'all', frames: null, x, discarded: sel.discarded });
        fakeSelection = { type: 'first frames of each video', videos: `first ${x.n} long enough`, discarded_short: sel.discarded };
      }
    }

    // ---- real side, per run ----
    const runs: { run: number; seed: number; x: FeatureMatrix; cached: boolean; discarded: number }[] = [];
    let realSelection: Record<string, unknown>;
    if (real.kind === 'features') {
      const f = real.features!;
      const n = o.explicitCounts?.real === false ? f.n : Math.min(p.numReal, f.n);
      if (n < p.numReal && o.explicitCounts?.real !== false) log(`warning: ${o.real}: ${f.n} feature rows, ${p.numReal} requested; using ${f.n}`);
      if (o.runs > 1 && (p.realSelection === 'first' || n === f.n))
        throw new Error(`--runs ${o.runs} with a real feature array needs --real-selection random and fewer rows than the array has (${f.n}); otherwise every run is identical`);
      for (let r = 0; r < o.runs; r++) {
        const rows = p.realSelection === 'first' ? Array.from({ length: n }, (_, i) => i) : new Rng(p.seed + r).permutation(f.n).slice(0, n);
        runs.push({ run: r, seed: p.seed + r, x: n === f.n && p.realSelection === 'first' ? f : selectRows(f, rows), cached: false, discarded: 0 });
      }
      realSelection = { type: 'feature rows', selection: p.realSelection === 'first' ? `first ${n}` : `random ${n} per run (seed + run)` };
    } else {
      const src = real.source!;
      const span = clipSpan(clipFrames, clipStride);
      const lengths = p.realSelection === 'first' ? await lengthsOf(src, { need: p.numReal, span }) : await lengthsOf(src);
      for (let r = 0; r < o.runs; r++) {
        const sel = selectRealClips(lengths, { ...p, frames: clipFrames, stride: clipStride }, r);
        if (r === 0) warnShortfall(sel, o.real, log);
        const keyParts = {
          source: src.identity,
          clips: clipsHash(sel.clips),
          frames: clipFrames,
          stride: clipStride,
          clipResize: o.clipResize ?? null,
          extractor: ex!.describe(),
        };
        const key = featureCacheKey(keyParts);
        let x: FeatureMatrix | null = o.cacheDir ? readCachedFeatures(o.cacheDir, key) : null;
        const cached = x !== null;
        if (cached) log(`real features: cache hit ${path.join(o.cacheDir!, key)}.npz`);
        if (x === null) {
          x = await extractFeatures(src, sel.clips, ex!, {
            frames: clipFrames,
            stride: clipStride,
            label: o.runs > 1 ? `real (run ${r + 1}/${o.runs})` : 'real',
            progress: o.progress,
            clipResize: o.clipResize,
          });
          if (o.cacheDir) writeCachedFeatures(o.cacheDir, key, x, { ...keyParts, path: o.real, n: x.n, d: x.d, created: new Date().toISOString() });
        }
        runs.push({ run: r, seed: p.seed + r, x, cached, discarded: sel.discarded });
      }
      realSelection = {
        type: 'one clip per video',
        videos: p.realSelection === 'first' ? 'first N in sorted order (StyleGAN-V)' : 'random N (seed + run)',
        offset: 'uniform random start per clip (seed + run)',
        discard_short_videos: true,
        discarded_short: runs[0].discarded,
      };
    }

    const d = runs[0].x.d;
    for (const s of fakeSets) if (s.x.d !== d) throw new Error(`feature dimensions differ: real ${d}, generated ${s.x.d} (features from different extractors?)`);

    // ---- distances ----
    const evalPair = (x: FeatureMatrix, y: FeatureMatrix): { fvd: number; kvd: number; kid?: KvdSubsetResult } => {
      const fd = frechetDistance(x, y, { covariance: o.covariance }).fd;
      const k = kvd(x, y);
      const kid = o.kid ? kvdSubsets(x, y, { subsets: o.kid.subsets, subsetSize: o.kid.subsetSize, seed: o.kid.seed }) : undefined;
      return { fvd: fd, kvd: k, kid };
    };

    const report: MetricsReport = {};
    const protocol: Record<string, unknown> = {
      name: o.window !== undefined ? `window${o.window}` : p.name,
      frames: clipFrames,
      stride: clipStride,
      n_real_requested: p.numReal,
      n_fake_requested: p.numFake,
      real: { path: o.real, input: real.kind, split: o.realSplit ?? 'unspecified', ...realSelection, clip_resize: o.clipResize ?? null },
      fake: { path: o.fake, input: fake.kind, ...fakeSelection },
      seed: p.seed,
      runs: o.runs,
      covariance: o.covariance === 'unbiased' ? 'unbiased (n - 1)' : 'biased (n)',
      kvd: 'unbiased MMD^2, kernel (x.y/d + 1)^3, full sets, float64',
      kid_subsets: o.kid ? { subsets: o.kid.subsets, subset_size: o.kid.subsetSize ?? 'min(n_real, n_fake, 1000)', seed: o.kid.seed } : null,
      feature_extractor: ex ? ex.describe() : { extractor: featureName, note: 'precomputed features read from files' },
    };

    if (o.window === undefined) {
      const y = fakeSets[0].x;
      const per: RunResult[] = runs.map((r) => {
        const v = evalPair(r.x, y);
        const out: RunResult = { run: r.run, seed: r.seed, n_real: r.x.n, fvd: v.fvd, kvd: v.kvd };
        if (v.kid) out.kid = { mean: v.kid.mean, std: v.kid.std };
        return out;
      });
      const [fm, fs] = meanStd(per.map((q) => q.fvd));
      const [km, ks] = meanStd(per.map((q) => q.kvd));
      report[fvdKey] = fm;
      report[kvdKey] = km;
      if (o.runs > 1) {
        report[`${fvdKey}_std`] = fs;
        report[`${kvdKey}_std`] = ks;
      }
      if (o.kid) {
        const [m, s] = meanStd(per.map((q) => q.kid!.mean));
        report[`${kvdKey}_subsets`] = { mean: m, std_over_subsets: per[0].kid!.std, std_over_runs: s, subsets: o.kid.subsets, seed: o.kid.seed };
      }
      report.n_real = runs[0].x.n;
      report.n_fake = y.n;
      report.runs = per;
    } else {
      const windows: WindowResult[] = fakeSets.map((s, w) => {
        const vals = runs.map((r) => evalPair(r.x, s.x));
        const [fm, fs] = meanStd(vals.map((v) => v.fvd));
        const [km, ks] = meanStd(vals.map((v) => v.kvd));
        return { window: w, frames: s.frames!, n_fake: s.x.n, fvd_mean: fm, fvd_std: fs, kvd_mean: km, kvd_std: ks, runs: vals.map((v) => ({ fvd: v.fvd, kvd: v.kvd })) };
      });
      report[fvdKey] = windows[0].fvd_mean;
      report[kvdKey] = windows[0].kvd_mean;
      report[`${fvdKey}_by_window`] = windows.map((w) => w.fvd_mean);
      report[`${kvdKey}_by_window`] = windows.map((w) => w.kvd_mean);
      report.windows = windows;
      report.n_real = runs[0].x.n;
      report.n_fake = windows[0].n_fake;
    }
    report.feature_dim = d;
    report.feature_source = ex ? ex.name : featureName;
    report.metric_names = { fvd: fvdKey, kvd: kvdKey };
    report.protocol = protocol;
    report.real_features_cached = runs.map((r) => r.cached);
    report.seconds = (Date.now() - t0) / 1000;
    report.created = new Date().toISOString();
    return report;
  } finally {
    real.source?.close();
    fake.source?.close();
  }
}
