import { initBackend } from '../lib/backend';
import { renderSyntheticFrames, SyntheticFamily } from '../data/synthetic';
import { loadProxyExtractor } from './proxy/extractor';
import { frechetDistance } from './frechet';
import { kvd } from './kvd';
import { Rng } from '../lib/nn/rng';
async function feats(ex: ReturnType<typeof loadProxyExtractor>, family: SyntheticFamily, seed: number, n: number, t: number, size: number, mode: 'normal' | 'shuffle' | 'static' | 'reverse') {
  const rng = new Rng(seed + 99);
  const out = new Float64Array(n * 128);
  for (let i = 0; i < n; i++) {
    let clip = renderSyntheticFrames({ family, seed, index: i, height: size, width: size }, 0, t);
    const fsz = size * size * 3;
    if (mode !== 'normal') {
      const perm = mode === 'shuffle' ? rng.permutation(t) : mode === 'static' ? new Array(t).fill(0) : Array.from({ length: t }, (_, k) => t - 1 - k);
      const c2 = new Uint8Array(clip.length);
      perm.forEach((s, d) => c2.set(clip.subarray(s * fsz, (s + 1) * fsz), d * fsz));
      clip = c2;
    }
    const f = await ex.extract(clip, 1, t, size, size);
    out.set(Array.from(f), i * 128);
  }
  return { n, d: 128, data: out };
}
async function main() {
  await initBackend({ quiet: true });
  const ex = loadProxyExtractor('synthetic-motion');
  const N = 200, T = 16, S = 64;
  const a = await feats(ex, 'ucf', 1000, N, T, S, 'normal');
  for (const [name, fam, seed, mode] of [['ucf same dist', 'ucf', 2000, 'normal'], ['ucf shuffled', 'ucf', 2000, 'shuffle'], ['ucf reversed', 'ucf', 2000, 'reverse'], ['ucf static', 'ucf', 2000, 'static'], ['shapes', 'shapes', 2000, 'normal'], ['taichi', 'taichi', 2000, 'normal']] as const) {
    const b = await feats(ex, fam, seed, N, T, S, mode);
    console.log(name.padEnd(16), 'fvd_proxy', frechetDistance(a, b).fd.toFixed(3), 'kvd_proxy', kvd(a, b).toExponential(3));
  }
}
main();
