/**
 * Prompt following of a text-to-video model trained on `synthetic-captioned` (issue 15), against
 * the classifier-free guidance scale s (eps = eps_u + s (eps_c - eps_u)):
 *   1. two attribute classifiers (lib/t2v/classifier.ts), fine-tuned from the synthetic-motion
 *      weights on real captioned clips (content seed 777, disjoint from the diffusion model's
 *      training videos) and on their autoencoder reconstructions (the decoder's domain, which
 *      generated videos share); their accuracy on real held-out clips (seed 999) and on those
 *      clips' reconstructions are the ceilings a generated video is read against;
 *   2. n prompts, every caption of the family in a seeded order (balanced attributes);
 *   3. per guidance scale, n videos (same noise for every scale: sample i uses Rng(seed).fork(i)),
 *      classified; accuracy per attribute (colour, shape, direction, count) and all four, with the
 *      sampling wall time.
 * s = 0 is the unconditional branch alone (empty prompt): its accuracy should sit at chance.
 *
 *   node --import tsx experiments/t2v-prompt-following.ts --model runs/t2v/lvdm/lvdm.safetensors \
 *     --out runs/t2v/eval [--cfg 0,1,3,7.5] [--n 96] [--steps 25] [--classifier-steps 300] [--seed 1]
 * Writes <out>/results.json and <out>/grid-s<scale>.png; prints a markdown table.
 * `--classifier-only --frames F --size S` trains (and caches) the classifier without a model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { writeJsonAtomic } from '../lib/io/atomic';
import { floatToUint8, videoGrid, writePng } from '../lib/io/image';
import { upscaleNearest } from '../lib/autoencoder/outputs';
import { clipsToTensor, loadAutoencoder } from '../lib/autoencoder/io';
import { loadLvdm, resolveAutoencoder } from '../lib/lvdm/weights';
import { LatentCodec } from '../lib/lvdm/latents';
import { generateVideos } from '../lib/lvdm/generate';
import { CaptionClassifier, captionedClips } from '../lib/t2v/classifier';
import { PromptFollowing, chanceLevels, dominantColour, promptFollowing } from '../lib/t2v/score';
import { CAPTION_ATTRIBUTES, CaptionAttributes, allCaptions } from '../data/captioned';

const CLASSIFIER_DATA_SEED = 777;
const HELDOUT_DATA_SEED = 999;

const CLASSIFIER_FILE = 'classifier.safetensors';
const RECON_CLASSIFIER_FILE = 'classifier-recon.safetensors';

/** The cached classifier in `file`, or a newly trained one (saved there). */
function classifierFor(file: string, seed: number, steps: number, frames: number, size: number, transform?: (v: Uint8Array[]) => Uint8Array[]): CaptionClassifier {
  if (fs.existsSync(file)) return CaptionClassifier.load(file);
  const c = CaptionClassifier.fromProxy(seed);
  c.train({ steps, batch: 16, lr: 1e-3, seed, dataSeed: CLASSIFIER_DATA_SEED, frames, size, transform, log });
  c.save(file);
  return c;
}

/** uint8 clips -> their autoencoder reconstructions (posterior mean, decoded). */
function reconstruct(ae: LatentCodec, videos: Uint8Array[], frames: number, height: number, width: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < videos.length; i += 16) {
    const x = clipsToTensor(videos.slice(i, i + 16), frames, height, width);
    const y = tf.tidy(() => ae.decode(ae.encode(x).mean));
    const data = floatToUint8(y.dataSync());
    const per = frames * height * width * 3;
    for (let j = 0; j < y.shape[0]; j++) out.push(data.slice(j * per, (j + 1) * per));
    tf.dispose([x, y]);
  }
  return out;
}

const log = (m: string): void => {
  process.stderr.write(`[t2v ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

function row(name: string, r: PromptFollowing, extra = ''): string {
  return `| ${name} | ${CAPTION_ATTRIBUTES.map((a) => r.accuracy[a].toFixed(3)).join(' | ')} | ${r.all.toFixed(3)} | ${extra} |`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      ae: { type: 'string' },
      out: { type: 'string', default: 'runs/t2v/eval' },
      cfg: { type: 'string', default: '0,1,3,7.5' },
      n: { type: 'string', default: '96' },
      steps: { type: 'string', default: '25' },
      batch: { type: 'string', default: '16' },
      'classifier-steps': { type: 'string', default: '300' },
      seed: { type: 'string', default: '1' },
      'classifier-only': { type: 'boolean' },
      frames: { type: 'string', default: '4' },
      size: { type: 'string', default: '32' },
    },
  });
  const out = values.out!;
  fs.mkdirSync(out, { recursive: true });
  const seed = Number(values.seed);
  if (values['classifier-only']) {
    await initBackend({ quiet: false });
    const c = classifierFor(path.join(out, CLASSIFIER_FILE), seed, Number(values['classifier-steps']), Number(values.frames), Number(values.size));
    const real = captionedClips(HELDOUT_DATA_SEED, Array.from({ length: Number(values.n) }, (_, i) => i), Number(values.frames), Number(values.size));
    const score = promptFollowing(c.predict(real.videos, Number(values.frames), Number(values.size), Number(values.size)), real.attributes);
    console.log(JSON.stringify(score));
    c.dispose();
    return;
  }
  if (!values.model) throw new Error('--model lvdm.safetensors (a text-to-video model trained on synthetic-captioned) is required');
  const n = Number(values.n);
  const scales = values.cfg!.split(',').filter((v) => v.trim() !== '').map(Number);
  await initBackend({ quiet: false });
  const model = loadLvdm(values.model);
  if (!model.text) throw new Error(`${values.model}: not a text-to-video model`);
  const ae = loadAutoencoder(resolveAutoencoder(model, values.ae));
  const { frames, height, width } = model.state.clip;
  const t0 = Date.now();

  // 1. Classifier (cached in the output folder) and its ceilings on real / reconstructed clips.
  const steps = Number(values['classifier-steps']);
  const classifiers = {
    real: classifierFor(path.join(out, CLASSIFIER_FILE), seed, steps, frames, height),
    reconstruction: classifierFor(path.join(out, RECON_CLASSIFIER_FILE), seed, steps, frames, height, (v) => reconstruct(ae.ae, v, frames, height, width)),
  };
  const classifierSeconds = (Date.now() - t0) / 1000;
  const real = captionedClips(HELDOUT_DATA_SEED, Array.from({ length: n }, (_, i) => i), frames, height);
  const recon = reconstruct(ae.ae, real.videos, frames, height, width);
  const ceilings = Object.fromEntries(
    Object.entries(classifiers).map(([k, c]) => [
      k,
      { real: promptFollowing(c.predict(real.videos, frames, height, width), real.attributes), reconstruction: promptFollowing(c.predict(recon, frames, height, width), real.attributes) },
    ]),
  ) as Record<keyof typeof classifiers, { real: PromptFollowing; reconstruction: PromptFollowing }>;
  log(`classifiers ready (${classifierSeconds.toFixed(0)} s)`);

  // 2. Balanced prompts.
  const captions = allCaptions();
  const perm = new Rng(seed).fork('prompts').permutation(captions.length);
  const picked = Array.from({ length: n }, (_, i) => captions[perm[i % captions.length]]);
  const prompts = picked.map((c) => c.caption);
  const target: CaptionAttributes[] = picked.map((c) => c.attributes);

  // 3. Per guidance scale.
  const colourProbe = (videos: Uint8Array[], attrs: CaptionAttributes[]): number => videos.filter((v, i) => dominantColour(v) === attrs[i].colour).length / videos.length;
  const probeReal = colourProbe(real.videos, real.attributes);
  const probeRecon = colourProbe(recon, real.attributes);
  const points: { cfg: number; score: PromptFollowing; score_recon_classifier: PromptFollowing; colour_probe: number; sample_seconds: number; decode_seconds: number }[] = [];
  for (const s of scales) {
    const gen = await generateVideos(model, ae.ae, { n, batchSize: Number(values.batch), sampler: 'ddim', steps: Number(values.steps), eta: 0, seed, prompts, cfg: s });
    const score = promptFollowing(classifiers.real.predict(gen.videos, frames, height, width), target);
    const scoreRecon = promptFollowing(classifiers.reconstruction.predict(gen.videos, frames, height, width), target);
    points.push({ cfg: s, score, score_recon_classifier: scoreRecon, colour_probe: colourProbe(gen.videos, target), sample_seconds: gen.sampleSeconds, decode_seconds: gen.decodeSeconds });
    const grid = upscaleNearest(videoGrid(gen.videos.slice(0, 8), frames, height, width), 2);
    writePng(path.join(out, `grid-s${s}.png`), grid.data, grid.width, grid.height);
    log(`s = ${s}: all-correct ${score.all.toFixed(3)} (${gen.sampleSeconds.toFixed(0)} s sampling)`);
  }
  const result = {
    model: path.resolve(values.model),
    model_step: model.step,
    n,
    ddim_steps: Number(values.steps),
    seed,
    prompts_first8: prompts.slice(0, 8),
    chance: chanceLevels(),
    classifier: { steps, seconds: classifierSeconds, ceilings },
    colour_probe: { real: probeReal, reconstruction: probeRecon },
    points,
    wall_seconds: (Date.now() - t0) / 1000,
  };
  writeJsonAtomic(path.join(out, 'results.json'), result);
  const chance = chanceLevels();
  console.log(`| videos | ${CAPTION_ATTRIBUTES.join(' | ')} | all four | sampling wall time |`);
  console.log(`|---|${CAPTION_ATTRIBUTES.map(() => '---').join('|')}|---|---|`);
  console.log(`| chance | ${CAPTION_ATTRIBUTES.map((a) => chance[a].toFixed(3)).join(' | ')} | ${(1 / 96).toFixed(3)} | |`);
  for (const [k, c] of Object.entries(ceilings)) {
    console.log(row(`[${k} classifier] real held-out clips`, c.real));
    console.log(row(`[${k} classifier] their autoencoder reconstructions`, c.reconstruction));
  }
  console.log(`\ncolour probe (dominant saturated colour = prompt colour; chance 0.25): real ${probeReal.toFixed(3)}, reconstructions ${probeRecon.toFixed(3)}, ${points.map((p) => `s = ${p.cfg}: ${p.colour_probe.toFixed(3)}`).join(', ')}\n`);
  for (const p of points) {
    const name = `generated, s = ${p.cfg}${p.cfg === 0 ? ' (unconditional)' : p.cfg === 1 ? ' (no guidance)' : ''}`;
    console.log(row(`[real classifier] ${name}`, p.score, `${p.sample_seconds.toFixed(0)} s`));
    console.log(row(`[reconstruction classifier] ${name}`, p.score_recon_classifier));
  }
  classifiers.real.dispose();
  classifiers.reconstruction.dispose();
  model.dispose();
  ae.dispose();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
