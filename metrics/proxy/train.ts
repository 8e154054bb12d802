/**
 * Trains the `synthetic-motion` proxy extractor (MotionNet) on the synthetic video families and
 * writes metrics/proxy/synthetic-motion.safetensors. Reproduce the shipped file with:
 *
 *   node --import tsx metrics/proxy/train.ts --out metrics/proxy/synthetic-motion.safetensors
 *
 * (defaults: --steps 2500 --batch 24 --lr 2e-3 --seed 0; about 20-30 min on one wasm thread).
 *
 * Each sample is an 8-frame 32 x 32 clip (frame stride 1 or 2, random window) of
 *   p = 0.45   a synthetic-UCF video, labelled with its action (12 classes),
 *   p = 0.1    each, a shapes / sky / taichi video, labelled with its family,
 *   p = 0.25   any of the above with its frames randomly permuted, labelled 'shuffled'.
 * Training videos use data seed 101, the held-out accuracy check seed 202.
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '../../lib/backend';
import { saveSafetensors } from '../../lib/io/safetensors';
import { Rng } from '../../lib/nn/rng';
import { Adam } from '../../lib/train/optim';
import { SyntheticFamily, renderSyntheticFrames, syntheticVideoInfo } from '../../data/synthetic';
import { PROXY_CLASSES, PROXY_SIZE, createMotionNet } from './model';
import { proxyPreprocess } from './extractor';

export const TRAIN_FRAMES = 8;
export const TRAIN_DATA_SEED = 101;
export const HELDOUT_DATA_SEED = 202;
const VIDEOS_PER_FAMILY = 100000;
const FAMILY_LABEL: Record<string, number> = { shapes: 12, sky: 13, taichi: 14 };
const SHUFFLED = 15;

export interface Sample {
  clip: Uint8Array;
  label: number;
}

/** One training/evaluation clip drawn from `rng` (see the file comment for the mixture). */
export function drawSample(rng: Rng, dataSeed: number): Sample {
  const r = rng.uniform();
  const families: SyntheticFamily[] = ['ucf', 'shapes', 'sky', 'taichi'];
  let family: SyntheticFamily;
  let shuffle = false;
  if (r < 0.45) family = 'ucf';
  else if (r < 0.55) family = 'shapes';
  else if (r < 0.65) family = 'sky';
  else if (r < 0.75) family = 'taichi';
  else {
    family = rng.choice(families);
    shuffle = true;
  }
  const index = rng.int(0, VIDEOS_PER_FAMILY - 1);
  const stride = rng.int(1, 2);
  const start = rng.int(0, 200);
  const spec = { family, seed: dataSeed, index, height: PROXY_SIZE, width: PROXY_SIZE };
  let clip = renderSyntheticFrames(spec, start, TRAIN_FRAMES, stride);
  let label = family === 'ucf' ? syntheticVideoInfo(spec).label! : FAMILY_LABEL[family];
  if (shuffle) {
    let perm = rng.permutation(TRAIN_FRAMES);
    while (perm.every((v, i) => v === i)) perm = rng.permutation(TRAIN_FRAMES);
    const fsz = PROXY_SIZE * PROXY_SIZE * 3;
    const out = new Uint8Array(clip.length);
    perm.forEach((src, dst) => out.set(clip.subarray(src * fsz, (src + 1) * fsz), dst * fsz));
    clip = out;
    label = SHUFFLED;
  }
  return { clip, label };
}

function batchTensors(samples: Sample[]): { x: tf.Tensor5D; y: tf.Tensor2D } {
  const s = PROXY_SIZE;
  const per = TRAIN_FRAMES * s * s * 3;
  const x = new Float32Array(samples.length * per);
  samples.forEach((smp, i) => proxyPreprocess(smp.clip, TRAIN_FRAMES, s, s, x, i * per));
  const y = tf.oneHot(
    tf.tensor1d(
      samples.map((q) => q.label),
      'int32',
    ),
    PROXY_CLASSES.length,
  ) as tf.Tensor2D;
  return { x: tf.tensor5d(x, [samples.length, TRAIN_FRAMES, s, s, 3]), y };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'metrics/proxy/synthetic-motion.safetensors' },
      steps: { type: 'string', default: '2500' },
      batch: { type: 'string', default: '24' },
      lr: { type: 'string', default: '2e-3' },
      seed: { type: 'string', default: '0' },
      heldout: { type: 'string', default: '640' },
    },
  });
  const steps = Number(values.steps);
  const batch = Number(values.batch);
  const lr = Number(values.lr);
  const seed = Number(values.seed);
  const heldout = Number(values.heldout);
  await initBackend({ quiet: false });
  const { store, net } = createMotionNet(seed);
  const params = store.trainable();
  const opt = new Adam(params, { lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, kind: 'adam' });
  const rng = new Rng(seed).fork('data');
  const t0 = Date.now();
  let lossAvg = 0;
  let accAvg = 0;
  for (let step = 1; step <= steps; step++) {
    const warm = Math.min(1, step / 50);
    const cosine = 0.05 + 0.475 * (1 + Math.cos((Math.PI * step) / steps));
    const lrNow = lr * warm * cosine;
    const samples = Array.from({ length: batch }, () => drawSample(rng, TRAIN_DATA_SEED));
    const { x, y } = batchTensors(samples);
    const vars = params.map(([, v]) => v);
    let acc = 0;
    const { value, grads } = tf.variableGrads(() => {
      const logits = net.logits(net.features(x)); // [B, classes]
      acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32')).dataSync()[0]);
      return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
    }, vars);
    const byName = new Map<string, tf.Tensor>();
    for (const [name, v] of params) byName.set(name, grads[v.name]);
    opt.apply(byName, lrNow);
    const loss = value.dataSync()[0];
    lossAvg = step === 1 ? loss : 0.98 * lossAvg + 0.02 * loss;
    accAvg = step === 1 ? acc : 0.98 * accAvg + 0.02 * acc;
    tf.dispose([value, x, y, ...Object.values(grads)]);
    if (step % 50 === 0 || step === 1) {
      const el = (Date.now() - t0) / 1000;
      console.log(`step ${step}/${steps}  loss ${lossAvg.toFixed(4)}  acc ${accAvg.toFixed(3)}  lr ${lrNow.toExponential(2)}  ${(el / step).toFixed(2)} s/step`);
    }
  }
  // Held-out accuracy on other videos (data seed 202).
  const hr = new Rng(seed + 1).fork('heldout');
  let correct = 0;
  const perClass = new Array<number>(PROXY_CLASSES.length).fill(0);
  const perClassN = new Array<number>(PROXY_CLASSES.length).fill(0);
  for (let i = 0; i < heldout; i += 32) {
    const samples = Array.from({ length: Math.min(32, heldout - i) }, () => drawSample(hr, HELDOUT_DATA_SEED));
    const { x, y } = batchTensors(samples);
    const pred = tf.tidy(() => tf.argMax(net.logits(net.features(x)), 1));
    const p = pred.dataSync();
    samples.forEach((s, k) => {
      perClassN[s.label]++;
      if (p[k] === s.label) {
        correct++;
        perClass[s.label]++;
      }
    });
    tf.dispose([x, y, pred]);
  }
  const accuracy = correct / heldout;
  console.log(`held-out accuracy ${accuracy.toFixed(4)} on ${heldout} clips`);
  PROXY_CLASSES.forEach((c, k) => console.log(`  ${c.padEnd(18)} ${perClassN[k] ? (perClass[k] / perClassN[k]).toFixed(3) : '-'} (${perClassN[k]})`));
  const argv = process.argv.slice(2).join(' ');
  saveSafetensors(values.out!, store.snapshot(), {
    format: 'lvdm-motionnet-v1',
    classes: JSON.stringify(PROXY_CLASSES),
    train_command: `node --import tsx metrics/proxy/train.ts ${argv}`.trim(),
    steps: String(steps),
    batch: String(batch),
    lr: String(lr),
    seed: String(seed),
    train_data_seed: String(TRAIN_DATA_SEED),
    heldout_data_seed: String(HELDOUT_DATA_SEED),
    heldout_accuracy: accuracy.toFixed(4),
    heldout_clips: String(heldout),
    seconds: ((Date.now() - t0) / 1000).toFixed(0),
  });
  console.log(`wrote ${values.out}`);
  opt.dispose();
  store.dispose();
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
