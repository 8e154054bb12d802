/** `lvdm metrics`: FVD and KVD between real and generated videos (or precomputed features). */
import * as path from 'node:path';
import { Command, ParsedValues } from '../types';
import { initBackend } from '../../backend';
import { writeJsonAtomic } from '../../io/atomic';
import { computeMetrics, MetricsReport } from '../../../metrics/evaluate';
import { FeatureExtractor, I3DExtractor } from '../../../metrics/extract';
import { CovarianceConvention } from '../../../metrics/frechet';
import { I3D } from '../../../metrics/i3d/model';
import { SELF_CHECK_REFERENCE, i3dSelfCheck, identifyI3D } from '../../../metrics/i3d/known';
import { loadI3DWeights } from '../../../metrics/i3d/weights';
import { RESIZE_CONVENTIONS, RESIZE_GEOMETRIES, ResizeConvention, ResizeGeometry } from '../../../metrics/preprocess';
import { ClipProtocol, PROTOCOLS, RealSelection } from '../../../metrics/protocols';
import { classifyInput } from '../../../metrics/videos';
import { PROXY_EXTRACTORS, loadProxyExtractor } from '../../../metrics/proxy/extractor';

const DESCRIPTION = `
R and F are each a feature array (.npy or .npz, N x D float32/float64) or videos (a folder of
video files, or a .npz/.npy holding an N x T x H x W x 3 uint8 array). Video inputs need I3D
weights (--i3d FILE; see metrics/README.md for how to export them) or an explicitly named proxy
extractor (--features synthetic-motion), in which case the metrics are named fvd_proxy/kvd_proxy.

Presets: --preset tf (default: TF1 legacy resize, BN eps 1e-3, stretch to 224, unbiased
covariance, as the original FVD code) or --preset tats (half-pixel resize, BN eps 1e-5, short side
to 224 + centre crop, as TATS/LVDM). Individual flags override the preset.

Examples:
  lvdm metrics --real real_feats.npy --fake fake_feats.npz --json
  lvdm metrics --real data/ucf101/videos --fake samples.npz --i3d i3d_tfhub_400.safetensors --runs 10
  lvdm metrics --real real.npz --fake long.npz --features synthetic-motion --window 16
  lvdm metrics --i3d i3d_pretrained_400.safetensors --check-weights`;

function str(v: ParsedValues, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

function int(v: ParsedValues, k: string, fallback: number, min: number): number {
  const s = str(v, k);
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${k}: expected an integer >= ${min}, got '${s}'`);
  return n;
}

function optInt(v: ParsedValues, k: string, min: number): number | undefined {
  return str(v, k) === undefined ? undefined : int(v, k, 0, min);
}

function oneOf<T extends string>(v: ParsedValues, k: string, allowed: readonly T[], fallback: T): T {
  const s = str(v, k);
  if (s === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(s)) throw new Error(`--${k}: expected one of ${allowed.join(' | ')}, got '${s}'`);
  return s as T;
}

interface Preset {
  resize: ResizeConvention;
  eps: number;
  geometry: ResizeGeometry;
}

const PRESETS: Record<string, Preset> = {
  tf: { resize: 'tf1-legacy', eps: 1e-3, geometry: 'stretch' },
  tats: { resize: 'half-pixel', eps: 1e-5, geometry: 'short-side-crop' },
};

function fmt(x: unknown): string {
  return typeof x === 'number' ? (Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(4)) : String(x);
}

function summary(r: MetricsReport): string {
  const names = r.metric_names as { fvd: string; kvd: string };
  const p = r.protocol as Record<string, unknown>;
  const ex = p.feature_extractor as Record<string, unknown>;
  const lines: string[] = [];
  const runs = p.runs as number;
  const pm = (k: string): string => (runs > 1 ? `${fmt(r[k])} +- ${fmt(r[`${k}_std`])} (mean +- std over ${runs} runs)` : fmt(r[k]));
  if (r.windows) {
    lines.push(`${names.fvd} / ${names.kvd} by frame window (${p.frames} frames each):`);
    for (const w of r.windows as { window: number; frames: [number, number]; fvd_mean: number; fvd_std: number; kvd_mean: number; kvd_std: number }[])
      lines.push(`  frames ${w.frames[0]}-${w.frames[1] - 1}: ${names.fvd} ${fmt(w.fvd_mean)}${runs > 1 ? ` +- ${fmt(w.fvd_std)}` : ''}   ${names.kvd} ${fmt(w.kvd_mean)}${runs > 1 ? ` +- ${fmt(w.kvd_std)}` : ''}`);
  } else {
    lines.push(`${names.fvd.padEnd(9)} ${pm(names.fvd)}`);
    lines.push(`${names.kvd.padEnd(9)} ${pm(names.kvd)}`);
    const sub = r[`${names.kvd}_subsets`] as { mean: number; std_over_subsets: number; subsets: number } | undefined;
    if (sub) lines.push(`${names.kvd} over ${sub.subsets} subsets: ${fmt(sub.mean)} (std over subsets ${fmt(sub.std_over_subsets)})`);
  }
  const pr = p.real as Record<string, unknown>;
  const pf = p.fake as Record<string, unknown>;
  if (pr.input === 'features' && pf.input === 'features') lines.push(`samples   ${r.n_real} real vs ${r.n_fake} generated feature rows (precomputed; no clip protocol applied)`);
  else lines.push(`clips     ${r.n_real} real vs ${r.n_fake} generated, ${p.frames} frames, stride ${p.stride} (${p.name})`);
  lines.push(`features  ${r.feature_dim}-d from ${String(ex.extractor)}${ex.weights_sha256 ? ` (weights sha256 ${String(ex.weights_sha256).slice(0, 16)}...)` : ''}`);
  if (ex.resize) lines.push(`preproc   resize ${String(ex.resize)} (${String(ex.geometry)}) to ${String(ex.input_size)}, values ${String(ex.value_range)}`);
  lines.push(`stats     covariance ${String(p.covariance)}; seed ${String(p.seed)}`);
  if (names.fvd !== 'fvd') lines.push(`note      ${names.fvd}/${names.kvd} use a proxy extractor; they are not comparable with published FVD/KVD`);
  return lines.join('\n');
}

async function checkWeights(file: string, eps: number, json: boolean): Promise<number> {
  const w = loadI3DWeights(file);
  const known = identifyI3D(w.contentSha256);
  const model = new I3D(w, { eps });
  let fvd: number;
  try {
    fvd = i3dSelfCheck(model);
  } finally {
    model.dispose();
  }
  const report = {
    file,
    layout: w.layout,
    num_classes: w.numClasses,
    file_sha256: w.fileSha256,
    content_sha256: w.contentSha256,
    known: known ? known.name : null,
    bn_eps: eps,
    self_check_fvd_zeros_vs_255: fvd,
    self_check_reference: `about ${SELF_CHECK_REFERENCE} for the TF-Hub i3d-kinetics-400 weights (google-research example.py)`,
  };
  if (json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`${file}: ${w.layout} layout, ${w.numClasses} classes, all tensors present with the expected shapes`);
    console.log(`  file sha256     ${w.fileSha256}`);
    console.log(`  content sha256  ${w.contentSha256}${known ? ` (known: ${known.name})` : ' (not in the known-weights list)'}`);
    console.log(`  self-check      FVD(16 all-0 videos, 16 all-255 videos) = ${fvd.toFixed(3)} (TF-Hub weights: about ${SELF_CHECK_REFERENCE}; BN eps ${eps})`);
  }
  return 0;
}

export const command: Command = {
  name: 'metrics',
  summary: 'FVD and KVD between real and generated videos (I3D, or a named proxy extractor)',
  description: DESCRIPTION,
  options: {
    real: { type: 'string', help: 'real videos (folder, .npz/.npy uint8 N x T x H x W x 3) or features (.npy/.npz N x D)' },
    fake: { type: 'string', help: 'generated videos or features, same formats' },
    json: { type: 'boolean', help: 'print one JSON object instead of the summary' },
    out: { type: 'string', help: 'also write the JSON result to this file' },
    covariance: { type: 'string', help: 'unbiased (n - 1: TF-GAN, TATS, LVDM) | biased (n: StyleGAN-V)', default: 'unbiased' },
    i3d: { type: 'string', help: 'I3D weights (.safetensors / .npz export of TATS i3d_pretrained_400.pt, StyleGAN-V i3d_torchscript.pt or TF-Hub)' },
    features: { type: 'string', help: `feature extractor: i3d (needs --i3d) | ${Object.keys(PROXY_EXTRACTORS).join(' | ')} (proxy: fvd_proxy/kvd_proxy)` },
    protocol: { type: 'string', help: `clip protocol: ${Object.keys(PROTOCOLS).join(' | ')}`, default: 'fvd16' },
    frames: { type: 'string', help: 'frames per clip (overrides the protocol)' },
    stride: { type: 'string', help: 'frame step within a clip (overrides the protocol)' },
    'n-real': { type: 'string', help: 'real clips (default 2048, or all rows of a feature array)' },
    'n-fake': { type: 'string', help: 'generated clips (default 2048, or all rows of a feature array)' },
    'real-selection': { type: 'string', help: 'first (first N videos in sorted order, StyleGAN-V) | random', default: 'first' },
    'real-split': { type: 'string', help: 'description of the real split, recorded in the result (e.g. "train+test")' },
    runs: { type: 'string', help: 'repeat with re-drawn real clips (seeds S, S+1, ...) and report mean and std', default: '1' },
    seed: { type: 'string', help: 'seed of the real-clip draw and of the KVD subsets', default: '0' },
    'kid-subsets': { type: 'string', help: 'also report KVD averaged over N random subsets (KID-style)' },
    'subset-size': { type: 'string', help: 'subset size for --kid-subsets (default min(n_real, n_fake, 1000))' },
    window: { type: 'string', help: 'FVD per frame window of W frames along the generated videos' },
    preset: { type: 'string', help: 'tf | tats: resize convention, BN eps and geometry', default: 'tf' },
    resize: { type: 'string', help: `${RESIZE_CONVENTIONS.join(' | ')} (default from --preset)` },
    geometry: { type: 'string', help: `${RESIZE_GEOMETRIES.join(' | ')} (default from --preset)` },
    'bn-eps': { type: 'string', help: 'I3D BatchNorm epsilon (1e-3 TF-Hub; 1e-5 TATS/LVDM parity; default from --preset)' },
    'clip-size': { type: 'string', help: 'resize real frames to S x S (uint8) first, e.g. the generated resolution' },
    batch: { type: 'string', help: 'clips per forward pass (default: 1 for I3D, 8 for the proxy)' },
    'real-key': { type: 'string', help: 'array name inside the real .npz' },
    'fake-key': { type: 'string', help: 'array name inside the generated .npz' },
    'cache-dir': { type: 'string', help: 'cache of real-video features', default: '.cache/lvdm-features' },
    'no-cache': { type: 'boolean', help: 'do not read or write the feature cache' },
    'check-weights': { type: 'boolean', help: 'with --i3d: validate the weight file, print its digests and the FVD(0, 255) self-check, then exit' },
    quiet: { type: 'boolean', help: 'no progress output' },
  },
  async run(values) {
    const json = values.json === true;
    const presetName = oneOf(values, 'preset', Object.keys(PRESETS), 'tf');
    const preset = PRESETS[presetName];
    const eps = str(values, 'bn-eps') === undefined ? preset.eps : Number(str(values, 'bn-eps'));
    if (!(eps > 0)) throw new Error(`--bn-eps: expected a positive number, got '${str(values, 'bn-eps')}'`);
    const i3dFile = str(values, 'i3d');
    if (values['check-weights'] === true) {
      if (!i3dFile) throw new Error('--check-weights needs --i3d FILE');
      await initBackend({ quiet: true });
      return checkWeights(i3dFile, eps, json);
    }
    const real = str(values, 'real');
    const fake = str(values, 'fake');
    if (!real || !fake) throw new Error('--real and --fake are required');
    const covariance = oneOf<CovarianceConvention>(values, 'covariance', ['unbiased', 'biased'], 'unbiased');
    const resize = oneOf<ResizeConvention>(values, 'resize', RESIZE_CONVENTIONS, preset.resize);
    const geometry = oneOf<ResizeGeometry>(values, 'geometry', RESIZE_GEOMETRIES, preset.geometry);
    const protoName = oneOf(values, 'protocol', Object.keys(PROTOCOLS), 'fvd16');
    const base = PROTOCOLS[protoName];
    const frames = int(values, 'frames', base.frames, 1);
    const stride = int(values, 'stride', base.stride, 1);
    const seed = int(values, 'seed', 0, 0);
    const protocol: ClipProtocol = {
      name: frames === base.frames && stride === base.stride ? base.name : 'custom',
      frames,
      stride,
      numReal: int(values, 'n-real', base.numReal, 2),
      numFake: int(values, 'n-fake', base.numFake, 2),
      realSelection: oneOf<RealSelection>(values, 'real-selection', ['first', 'random'], 'first'),
      seed,
    };
    const kidSubsets = optInt(values, 'kid-subsets', 1);
    const subsetSize = optInt(values, 'subset-size', 2);
    if (subsetSize !== undefined && kidSubsets === undefined) throw new Error('--subset-size needs --kid-subsets N');
    const featuresName = str(values, 'features');
    const batchOpt = optInt(values, 'batch', 1);
    const progress = values.quiet !== true;
    const clipSize = optInt(values, 'clip-size', 8);

    let extractor: FeatureExtractor | undefined;
    if (featuresName !== undefined && featuresName !== 'i3d' && !(featuresName in PROXY_EXTRACTORS))
      throw new Error(`--features: unknown extractor '${featuresName}' (known: i3d, ${Object.keys(PROXY_EXTRACTORS).join(', ')})`);
    if (featuresName !== undefined && featuresName !== 'i3d' && i3dFile) throw new Error(`--i3d and --features ${featuresName} exclude each other`);
    const anyVideos = classifyInput(real, str(values, 'real-key')) === 'videos' || classifyInput(fake, str(values, 'fake-key')) === 'videos';
    const makeExtractor = async (): Promise<FeatureExtractor | undefined> => {
      if (!anyVideos) return undefined;
      if (featuresName !== undefined && featuresName !== 'i3d') {
        await initBackend({ quiet: true });
        return loadProxyExtractor(featuresName, { batchSize: batchOpt ?? 8 });
      }
      if (i3dFile) {
        await initBackend({ quiet: true });
        const w = loadI3DWeights(i3dFile);
        if (!identifyI3D(w.contentSha256)) console.error(`note: ${i3dFile}: weights not in the known-weights list (content sha256 ${w.contentSha256.slice(0, 16)}...); run --check-weights to sanity-check them`);
        return new I3DExtractor(new I3D(w, { eps }), { convention: resize, geometry, size: 224 }, batchOpt ?? 1);
      }
      return undefined; // computeMetrics explains what video inputs need
    };
    extractor = await makeExtractor();
    let report: MetricsReport;
    try {
      report = await computeMetrics({
        real,
        fake,
        realKey: str(values, 'real-key'),
        fakeKey: str(values, 'fake-key'),
        realSplit: str(values, 'real-split'),
        covariance,
        protocol,
        runs: int(values, 'runs', 1, 1),
        kid: kidSubsets !== undefined ? { subsets: kidSubsets, subsetSize, seed } : undefined,
        extractor,
        featuresName: extractor ? undefined : (featuresName ?? (i3dFile ? 'i3d' : undefined)),
        window: optInt(values, 'window', 1),
        clipResize: clipSize !== undefined ? { size: clipSize, convention: resize } : undefined,
        cacheDir: values['no-cache'] === true ? null : path.resolve(str(values, 'cache-dir') ?? '.cache/lvdm-features'),
        progress,
        log: (m) => console.error(m),
        explicitCounts: { real: str(values, 'n-real') !== undefined, fake: str(values, 'n-fake') !== undefined },
      });
    } finally {
      extractor?.dispose();
      extractor = undefined;
    }
    const outFile = str(values, 'out');
    if (outFile) writeJsonAtomic(outFile, report);
    console.log(json ? JSON.stringify(report, null, 2) : summary(report));
    return 0;
  },
};
