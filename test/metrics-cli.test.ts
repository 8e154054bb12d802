import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { command } from '../lib/cli/commands/metrics';
import { writeNpy, writeNpz } from '../lib/io/npy';
import { saveSafetensors } from '../lib/io/safetensors';
import { renderSyntheticFrames } from '../data/synthetic';
import { frechetDistance } from '../metrics/frechet';
import { kvd, kvdSubsets } from '../metrics/kvd';
import { i3dTensors, randomI3DWeights } from '../metrics/i3d/weights';
import { PROTOCOLS, ClipProtocol, selectFakeClips, selectRealClips, selectWindowClips } from '../metrics/protocols';
import { openVideoSource } from '../metrics/videos';
import { features } from './metrics-helpers';

/** Runs `lvdm metrics` with argv parsed exactly as lib/cli/main.ts does; captures stdout/stderr. */
async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [k, o] of Object.entries(command.options)) {
    options[k] = { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.default !== undefined ? { default: o.default as string } : {}) };
  }
  const { values } = parseArgs({ args: argv, options, strict: true });
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  try {
    const code = await command.run(values as Record<string, string | boolean>, []);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-metrics-cli-'));
}

const proto = (over: Partial<ClipProtocol> = {}): ClipProtocol => ({ ...PROTOCOLS.fvd16, realSelection: 'first', seed: 3, ...over });

test('real clips: one per video, first N eligible in order, seeded random offsets inside each video; short videos discarded', () => {
  const lengths = [40, 10, 16, 100, 30, 50];
  const sel = selectRealClips(lengths, proto({ numReal: 3 }));
  assert.deepEqual(
    sel.clips.map((c) => c.video),
    [0, 2, 3],
  );
  assert.equal(sel.discarded, 1);
  for (const c of sel.clips) assert.ok(c.start >= 0 && c.start + 16 <= lengths[c.video]);
  assert.equal(sel.clips[1].start, 0, 'a 16-frame video has one window');
  assert.deepEqual(selectRealClips(lengths, proto({ numReal: 3 })), sel, 'seeded');
  const run1 = selectRealClips(lengths, proto({ numReal: 3 }), 1);
  assert.deepEqual(
    run1.clips.map((c) => c.video),
    [0, 2, 3],
  );
  assert.notDeepEqual(
    run1.clips.map((c) => c.start),
    sel.clips.map((c) => c.start),
    'run 1 re-draws the offsets',
  );
  const rnd = selectRealClips(lengths, proto({ numReal: 3, realSelection: 'random' }));
  assert.equal(new Set(rnd.clips.map((c) => c.video)).size, 3);
  assert.ok(rnd.clips.every((c) => lengths[c.video] >= 16));
  const strided = selectRealClips(lengths, proto({ numReal: 10, frames: 16, stride: 8 })); // span 121
  assert.equal(strided.clips.length, 0);
  assert.deepEqual(strided.shortfall, { requested: 10, available: 0 });
  const fake = selectFakeClips([20, 8, 16], proto({ numFake: 5 }));
  assert.deepEqual(fake.clips, [
    { video: 0, start: 0 },
    { video: 2, start: 0 },
  ]);
  assert.deepEqual(selectWindowClips([48, 32, 48], 16, 2, 10).clips, [
    { video: 0, start: 32 },
    { video: 2, start: 32 },
  ]);
  assert.throws(() => selectRealClips(lengths, proto({ numReal: 1 })), /numReal must be an integer >= 2/);
});

test('lvdm metrics on feature arrays (.npy float32 vs .npz float64): values equal the library, JSON carries the protocol', async () => {
  const dir = tmp();
  const x = features({ seed: 11, n: 120, d: 16, rank: 16, shift: 0.3 });
  const y = features({ seed: 23, n: 100, d: 16, rank: 16, shift: -0.2 });
  const x32 = Float32Array.from(x.data);
  writeNpy(path.join(dir, 'real.npy'), { shape: [x.n, x.d], data: x32 });
  writeNpz(path.join(dir, 'fake.npz'), new Map([['features', { shape: [y.n, y.d], data: y.data }]]), { compress: true });
  const r = await runCli(['--real', path.join(dir, 'real.npy'), '--fake', path.join(dir, 'fake.npz'), '--json', '--quiet', '--kid-subsets', '5', '--subset-size', '50', '--seed', '7']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as Record<string, unknown>;
  const xr = { n: x.n, d: x.d, data: Float64Array.from(x32) };
  assert.equal(j.fvd, frechetDistance(xr, y).fd);
  assert.equal(j.kvd, kvd(xr, y));
  assert.equal((j.kvd_subsets as { mean: number }).mean, kvdSubsets(xr, y, { subsets: 5, subsetSize: 50, seed: 7 }).mean);
  assert.equal(j.n_real, 120);
  assert.equal(j.n_fake, 100);
  assert.equal(j.feature_dim, 16);
  assert.equal(j.feature_source, 'precomputed');
  const p = j.protocol as Record<string, unknown>;
  assert.equal(p.covariance, 'unbiased (n - 1)');
  assert.equal(p.seed, 7);
  assert.ok(p.real && p.fake && p.feature_extractor);
  const b = await runCli(['--real', path.join(dir, 'real.npy'), '--fake', path.join(dir, 'fake.npz'), '--json', '--covariance', 'biased', '--n-real', '60']);
  const jb = JSON.parse(b.out) as Record<string, unknown>;
  assert.equal(jb.n_real, 60);
  const first60 = { n: 60, d: 16, data: Float64Array.from(x32.subarray(0, 60 * 16)) };
  assert.equal(jb.fvd, frechetDistance(first60, y, { covariance: 'biased' }).fd);
  // Repeated runs with random real subsets report mean and std.
  const runs = await runCli(['--real', path.join(dir, 'real.npy'), '--fake', path.join(dir, 'fake.npz'), '--json', '--runs', '3', '--n-real', '80', '--real-selection', 'random']);
  const jr = JSON.parse(runs.out) as Record<string, number | unknown[]>;
  assert.equal((jr.runs as unknown[]).length, 3);
  assert.ok((jr.fvd_std as number) > 0);
  // Readable summary.
  const text = await runCli(['--real', path.join(dir, 'real.npy'), '--fake', path.join(dir, 'fake.npz')]);
  assert.match(text.out, /^fvd\s+\d/m);
  assert.match(text.out, /covariance unbiased/);
  fs.rmSync(dir, { recursive: true });
});

test('lvdm metrics errors: mismatched features, videos without an extractor, malformed files, bad options', async () => {
  const dir = tmp();
  writeNpy(path.join(dir, 'a.npy'), { shape: [10, 4], data: new Float32Array(40).map((_, i) => Math.sin(i)) });
  writeNpy(path.join(dir, 'b.npy'), { shape: [10, 5], data: new Float32Array(50).map((_, i) => Math.cos(i)) });
  writeNpy(path.join(dir, 'v.npy'), { shape: [2, 16, 8, 8, 3], data: new Uint8Array(2 * 16 * 8 * 8 * 3) });
  writeNpy(path.join(dir, 'i.npy'), { shape: [10, 4], data: new Int32Array(40) });
  fs.writeFileSync(path.join(dir, 'junk.npz'), 'not a zip');
  const a = path.join(dir, 'a.npy');
  await assert.rejects(() => runCli(['--real', a, '--fake', path.join(dir, 'b.npy')]), /feature dimensions differ: real 4, generated 5/);
  await assert.rejects(() => runCli(['--real', path.join(dir, 'v.npy'), '--fake', a]), /video inputs need a feature extractor: pass --i3d FILE .* or --features synthetic-motion/);
  await assert.rejects(() => runCli(['--real', path.join(dir, 'i.npy'), '--fake', a]), /i\.npy: expected features \(N x D float32\/float64\) or videos/);
  await assert.rejects(() => runCli(['--real', path.join(dir, 'junk.npz'), '--fake', a]), /junk\.npz: not a valid \.npz/);
  await assert.rejects(() => runCli(['--real', a, '--fake', a, '--covariance', 'n-1']), /--covariance: expected one of unbiased \| biased/);
  await assert.rejects(() => runCli(['--real', a]), /--real and --fake are required/);
  await assert.rejects(() => runCli(['--real', a, '--fake', a, '--features', 'inception']), /unknown extractor 'inception'/);
  await assert.rejects(() => runCli(['--real', path.join(dir, 'missing.npy'), '--fake', a]), /missing\.npy: not found/);
  fs.rmSync(dir, { recursive: true });
});

function syntheticVideos(family: 'ucf' | 'shapes', seed: number, n: number, t: number, size: number): Uint8Array {
  const per = t * size * size * 3;
  const out = new Uint8Array(n * per);
  for (let i = 0; i < n; i++) out.set(renderSyntheticFrames({ family, seed, index: i, height: size, width: size }, 0, t), i * per);
  return out;
}

test('videos with --features synthetic-motion: metrics are named fvd_proxy/kvd_proxy; real features are cached; windows', async () => {
  const dir = tmp();
  const real = path.join(dir, 'real.npz');
  const fake = path.join(dir, 'fake.npz');
  writeNpz(real, new Map([['videos', { shape: [6, 20, 32, 32, 3], data: syntheticVideos('ucf', 1, 6, 20, 32) }]]));
  writeNpz(fake, new Map([['videos', { shape: [6, 16, 32, 32, 3], data: syntheticVideos('shapes', 2, 6, 16, 32) }]]), { compress: true });
  const cache = path.join(dir, 'cache');
  const args = ['--real', real, '--fake', fake, '--features', 'synthetic-motion', '--frames', '8', '--n-real', '6', '--n-fake', '6', '--json', '--quiet', '--cache-dir', cache];
  const r1 = await runCli(args);
  assert.equal(r1.code, 0, r1.err);
  const j1 = JSON.parse(r1.out) as Record<string, unknown>;
  assert.equal(j1.fvd, undefined, 'never plain fvd without I3D');
  assert.equal(typeof j1.fvd_proxy, 'number');
  assert.equal(typeof j1.kvd_proxy, 'number');
  assert.equal(j1.feature_dim, 128);
  assert.equal(j1.feature_source, 'synthetic-motion');
  const ex = (j1.protocol as Record<string, Record<string, unknown>>).feature_extractor;
  assert.match(String(ex.weights_sha256), /^[0-9a-f]{64}$/);
  assert.deepEqual(j1.real_features_cached, [false]);
  const r2 = await runCli(args);
  const j2 = JSON.parse(r2.out) as Record<string, unknown>;
  assert.deepEqual(j2.real_features_cached, [true]);
  assert.equal(j2.fvd_proxy, j1.fvd_proxy);
  // Same videos on both sides, clip = whole video: identical features, FVD ~ 0.
  const same = await runCli(['--real', fake, '--fake', fake, '--features', 'synthetic-motion', '--frames', '16', '--n-real', '6', '--n-fake', '6', '--json', '--no-cache']);
  const js = JSON.parse(same.out) as Record<string, number>;
  assert.ok(Math.abs(js.fvd_proxy) < 1e-6, `FVD of identical clips ${js.fvd_proxy}`);
  // Frame windows along the generated videos.
  const win = await runCli(['--real', real, '--fake', fake, '--features', 'synthetic-motion', '--window', '8', '--n-real', '6', '--n-fake', '6', '--json', '--no-cache']);
  const jw = JSON.parse(win.out) as Record<string, unknown>;
  assert.equal((jw.fvd_proxy_by_window as number[]).length, 2);
  assert.deepEqual(
    (jw.windows as { frames: number[] }[]).map((w) => w.frames),
    [
      [0, 8],
      [8, 16],
    ],
  );
  fs.rmSync(dir, { recursive: true });
});

test('videos with --i3d: FVD(all-0, all-255 videos) from the pipeline equals the --check-weights self-check', async () => {
  const dir = tmp();
  const wfile = path.join(dir, 'i3d.safetensors');
  saveSafetensors(wfile, i3dTensors(randomI3DWeights(5), 'pytorch', { includeGamma: true }));
  const t = 15;
  const per = t * 32 * 32 * 3;
  const zeros = path.join(dir, 'zeros.npz');
  const full = path.join(dir, 'full.npz');
  writeNpz(zeros, new Map([['videos', { shape: [2, t, 32, 32, 3], data: new Uint8Array(2 * per) }]]));
  writeNpz(full, new Map([['videos', { shape: [2, t, 32, 32, 3], data: new Uint8Array(2 * per).fill(255) }]]));
  const r = await runCli(['--real', zeros, '--fake', full, '--i3d', wfile, '--frames', String(t), '--n-real', '2', '--n-fake', '2', '--json', '--no-cache', '--quiet']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as Record<string, unknown>;
  assert.equal(j.feature_dim, 400);
  assert.equal(j.feature_source, 'i3d');
  const ex = (j.protocol as Record<string, Record<string, unknown>>).feature_extractor;
  assert.equal(ex.extractor, 'i3d');
  assert.equal(ex.resize, 'tf1-legacy');
  assert.equal(ex.bn_eps, 1e-3);
  assert.match(String(ex.weights_sha256), /^[0-9a-f]{64}$/);
  assert.match(r.err, /not in the known-weights list/);
  // Identical clips within each set: zero covariances, FVD = ||f(0) - f(255)||^2 = the self-check.
  const c = await runCli(['--i3d', wfile, '--check-weights', '--json']);
  assert.equal(c.code, 0, c.err);
  const jc = JSON.parse(c.out) as Record<string, unknown>;
  assert.equal(jc.layout, 'pytorch');
  assert.equal(jc.num_classes, 400);
  assert.equal(jc.known, null);
  const self = jc.self_check_fvd_zeros_vs_255 as number;
  assert.ok(self > 0 && Math.abs((j.fvd as number) - self) <= 1e-4 * self, `self-check ${self} vs pipeline FVD ${String(j.fvd)}`);
  fs.rmSync(dir, { recursive: true });
});

test('a folder of video files is read in sorted order with ffmpeg', { skip: spawnSync('ffmpeg', ['-version']).status !== 0 && 'ffmpeg missing' }, async () => {
  const dir = tmp();
  const folder = path.join(dir, 'vids');
  fs.mkdirSync(path.join(folder, 'b'), { recursive: true });
  const frames = renderSyntheticFrames({ family: 'shapes', seed: 1, index: 0, height: 32, width: 48 }, 0, 12);
  for (const [name, n] of [
    ['b/x.mkv', 12],
    ['a.mkv', 10],
  ] as const) {
    const enc = spawnSync('ffmpeg', ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '48x32', '-r', '10', '-i', 'pipe:0', '-frames:v', String(n), '-c:v', 'ffv1', '-y', path.join(folder, name)], {
      input: Buffer.from(frames),
    });
    assert.equal(enc.status, 0, enc.stderr.toString());
  }
  const src = openVideoSource(folder);
  assert.equal(src.count, 2);
  assert.match(src.key(0), /a\.mkv$/);
  assert.equal(await src.frameCount(0), 10);
  assert.equal(await src.frameCount(1), 12);
  const f = await src.readFrames(1, 2, 3, 2); // frames 2, 4, 6 (lossless ffv1)
  assert.deepEqual([f.count, f.height, f.width], [3, 32, 48]);
  const fsz = 32 * 48 * 3;
  for (const [k, t] of [[0, 2], [1, 4], [2, 6]]) assert.ok(Buffer.from(f.data.subarray(k * fsz, (k + 1) * fsz)).equals(Buffer.from(frames.subarray(t * fsz, (t + 1) * fsz))), `frame ${t}`);
  await assert.rejects(() => src.readFrames(0, 5, 4, 2), /frames 5\.\.11 \(stride 2\) requested, video has 10/);
  src.close();
  fs.rmSync(dir, { recursive: true });
});
