/**
 * Corner probe of a short-video model on the shapes families (issue 12: where are the polygons'
 * corners lost?). Real clips are encoded and noised to step t0 (q_sample); then
 *   - "model": the short model denoises them (deterministic DDIM from t0, SDEdit-style: `startT`
 *     in lib/diffusion/samplers.ts, on the --steps trailing grid below t0), and the result is decoded;
 *   - "noise only" (--noise-only): the noisy latent itself, x_t / (sqrt(abar) * input scale), is
 *     decoded, with no model: what the decoder makes of that much latent noise.
 * Each set is read by the object-consistency tests and the shape kind (metrics/object-consistency-io.ts):
 * consistency, polygons (consistent squares and triangles / clips), regular outlines (consistent
 * clean discs, squares and triangles / clips: shape-kind.ts isRegularOutline) and the kinds over all
 * clips.
 * t0 = 0 is the reconstructions. A model that keeps the shapes it is given scores its decoder's
 * polygons at small t0; the noise-only rows say how much of a loss the noise alone explains.
 * `--reading motion` reads the other families instead (ucf's actor): the moving foreground
 * (metrics/moving-foreground.ts, the share of pixels away from each clip's per-pixel median) and
 * colourfulness (metrics/colourfulness.ts): at which noise level does the model stop keeping the
 * actor it is given?
 *
 *   node --import tsx experiments/corner-probe.ts MODEL.safetensors DECODER_AE.safetensors REAL.npz \
 *     [--t0 0,50,100,200,400] [--n 32] [--steps 25] [--noise-only] [--reading shapes|motion] [--out DIR]
 * REAL.npz is a run's store/real/<key>/real.npz (uint8 videos [N, T, H, W, 3]); DECODER_AE is the
 * autoencoder file whose encoder made the model's latents (its decoder decodes). --out keeps each
 * set as DIR/<model|noise>-<t0>/videos.npz for contact sheets (`lvdm consistency --sheet`).
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadLvdm } from '../lib/lvdm/weights';
import { loadAutoencoder, type LoadedAutoencoder } from '../lib/autoencoder/io';
import { writeNpz } from '../lib/io/npy';
import { encodeRealClips } from './real-latents';
import { floatToUint8 } from '../lib/io/image';
import { Rng } from '../lib/nn/rng';
import { qSample } from '../lib/diffusion/process';
import { sample } from '../lib/diffusion/samplers';
import { consistencyReadings } from '../metrics/object-consistency-io';
import { objectConsistency } from '../metrics/object-consistency';
import { movingForeground } from '../metrics/moving-foreground';
import { colourfulness } from '../metrics/colourfulness';
import { mean } from '../lib/results/stats';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      t0: { type: 'string', default: '0,50,100,200,400' },
      n: { type: 'string', default: '32' },
      steps: { type: 'string', default: '25' },
      seed: { type: 'string', default: '7' },
      'noise-only': { type: 'boolean', default: false },
      reading: { type: 'string', default: 'shapes' },
      out: { type: 'string' },
    },
  });
  if (positionals.length !== 3) throw new Error('usage: corner-probe.ts MODEL.safetensors DECODER_AE.safetensors REAL.npz [--t0 0,50,100] [--n 32] [--steps 25] [--noise-only] [--reading shapes|motion] [--out DIR]');
  const [modelFile, aeFile, realFile] = positionals;
  const reading = values.reading;
  if (reading !== 'shapes' && reading !== 'motion') throw new Error(`--reading: expected 'shapes' or 'motion', got '${reading}'`);
  await initBackend({ quiet: true });
  const model = loadLvdm(modelFile);
  const ae: LoadedAutoencoder = loadAutoencoder(aeFile);
  const { zn, n, frames, height, width } = encodeRealClips(realFile, Number(values.n), model, ae);
  const { shift, scale } = model.state.latent; // z_n = scale * (z + shift), input scale included
  const ab = model.schedule.alphasCumprod;
  const keep = values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'corner-probe-'));
  const read = async (name: string, z: tf.Tensor5D): Promise<string> => {
    const y = tf.tidy(() => ae.ae.decode(tf.sub(tf.div(z, scale), shift) as tf.Tensor5D).slice([0, 0, 0, 0, 0], [-1, frames, -1, -1, -1]));
    const u8 = floatToUint8(y.dataSync());
    y.dispose();
    const file = path.join(keep, name, 'videos.npz');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeNpz(file, { videos: { data: u8, shape: [n, frames, height, width, 3] } });
    if (reading === 'motion') return `${(100 * mean(movingForeground(u8, n, frames, height, width))).toFixed(2)}% | ${mean(colourfulness(u8, n, frames, height, width)).toFixed(1)}`;
    const r = await consistencyReadings(file);
    const k = objectConsistency(u8, [n, frames, height, width, 3]).kinds;
    return `${r.object.toFixed(3)} | ${r.polygons.toFixed(3)} | ${r.regular.toFixed(3)} | ${k.disc} / ${k.square} / ${k.triangle}`;
  };
  if (reading === 'motion') console.log(`| rows | t0 | sigma (normalised latent units) | moving foreground | colourfulness |\n|---|---|---|---|---|`);
  else console.log(`| rows | t0 | sigma (normalised latent units) | object consistency | polygons | regular outlines | kinds over all clips (disc / square / triangle) |\n|---|---|---|---|---|---|---|`);
  for (const t0 of String(values.t0).split(',').map(Number)) {
    if (!Number.isInteger(t0) || t0 < 0 || t0 >= model.schedule.T) throw new Error(`--t0: expected integers in [0, ${model.schedule.T - 1}], got ${t0}`);
    // sigma of x_t / (sqrt(abar) * input scale) in the autoencoder's normalised units
    const inputScale = model.state.latent.scale * (ae.latent ? 1 / ae.latent.scale : 1);
    const sigma = t0 === 0 ? 0 : Math.sqrt(1 - ab[t0]) / (Math.sqrt(ab[t0]) * inputScale);
    const noise = tf.tensor(new Rng(Number(values.seed)).fork(`t0-${t0}`).normalArray(zn.size), zn.shape) as tf.Tensor5D;
    const xt = t0 === 0 ? zn.clone() : qSample(model.schedule, zn, new Int32Array(n).fill(t0), noise);
    noise.dispose();
    if (values['noise-only'] && t0 > 0) {
      const rescaled = tf.div(xt, Math.sqrt(ab[t0])) as tf.Tensor5D;
      console.log(`| noise only | ${t0} | ${sigma.toFixed(2)} | ${await read(`noise-${t0}`, rescaled)} |`);
      rescaled.dispose();
    }
    const z = t0 === 0 ? xt.clone() : await sample(model.eps, model.schedule, xt.shape, { kind: 'ddim', steps: Number(values.steps), eta: 0, xT: xt, startT: t0 });
    xt.dispose();
    console.log(`| ${t0 === 0 ? 'reconstructions' : 'model'} | ${t0} | ${sigma.toFixed(2)} | ${await read(`model-${t0}`, z)} |`);
    z.dispose();
  }
  zn.dispose();
  if (!values.out) fs.rmSync(keep, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
