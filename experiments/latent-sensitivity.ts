/**
 * How sensitive autoencoders' decoders are to errors in the normalised latent space the diffusion
 * model works in (issue 12; lib/autoencoder/sensitivity.ts): decoded PSNR of real clips whose
 * normalised latents are perturbed by sigma * N(0, I). A decoder whose output collapses under small
 * sigma gives poor samples even when it reconstructs well (sigma = 0).
 *
 *   node --import tsx experiments/latent-sensitivity.ts AE.safetensors [AE2.safetensors ...] --clips FLOOR.npz [--sigma 0,0.05,0.1,0.2,0.4] [--seed 0]
 * FLOOR.npz: uint8 videos [N, T, H, W, 3], e.g. a run's store/real/<key>/floor.npz. Prints a
 * markdown table, one row per autoencoder.
 */
import { parseArgs } from 'node:util';
import { initBackend } from '../lib/backend';
import { readNpz } from '../lib/io/npy';
import { loadAutoencoder } from '../lib/autoencoder/io';
import { latentNoisePsnr } from '../lib/autoencoder/sensitivity';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { clips: { type: 'string' }, sigma: { type: 'string', default: '0,0.05,0.1,0.2,0.4' }, seed: { type: 'string', default: '0' } },
  });
  if (!values.clips || positionals.length === 0) throw new Error('usage: latent-sensitivity.ts AE.safetensors [...] --clips FLOOR.npz');
  const sigmas = values.sigma.split(',').map(Number);
  if (sigmas.some((s) => !Number.isFinite(s) || s < 0)) throw new Error(`--sigma: expected comma-separated numbers >= 0, got '${values.sigma}'`);
  const arr = readNpz(values.clips).get('videos');
  if (!arr || arr.shape.length !== 5 || arr.shape[4] !== 3) throw new Error(`${values.clips}: expected 'videos' uint8 [N, T, H, W, 3]`);
  const [n, ...shape] = arr.shape;
  const per = shape[0] * shape[1] * shape[2] * 3;
  const clips = Array.from({ length: n }, (_, i) => (arr.data as Uint8Array).slice(i * per, (i + 1) * per));
  await initBackend({ quiet: true });
  console.log(`| autoencoder | ${sigmas.map((s) => `PSNR at sigma ${s} (dB)`).join(' | ')} |`);
  console.log(`|---|${sigmas.map(() => '---').join('|')}|`);
  for (const file of positionals) {
    const loaded = loadAutoencoder(file);
    const p = await latentNoisePsnr(loaded, clips, [shape[0], shape[1], shape[2]], sigmas, Number(values.seed));
    loaded.dispose();
    console.log(`| ${file} | ${p.map((v) => v.toFixed(1)).join(' | ')} |`);
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
