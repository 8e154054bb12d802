/**
 * The attribute classifier behind the prompt-following score (issue 15): a MotionNet (the
 * synthetic-motion proxy network, metrics/proxy/model.ts: frames + frame differences, three 3D
 * convolutions, mean pooling) with one softmax head per caption attribute of the
 * `synthetic-captioned` family (colour 4, shape 3, direction 4, count 2: 13 logits), fine-tuned
 * from the shipped synthetic-motion weights on real captioned clips, or on their autoencoder
 * reconstructions (`transform`), with cross-entropy summed over the attributes. Applied to generated videos, its per-attribute accuracy against the prompts'
 * attributes is the prompt-following score.
 */
import * as tf from '@tensorflow/tfjs';
import { NamedArray, ParamStore, Scope } from '../nn/params';
import { Rng } from '../nn/rng';
import { Adam } from '../train/optim';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { MotionNet, PROXY_SIZE } from '../../metrics/proxy/model';
import { PROXY_EXTRACTORS, proxyPreprocess } from '../../metrics/proxy/extractor';
import { renderSyntheticFrames, captionedAttributes } from '../../data/synthetic';
import { CAPTION_ATTRIBUTES, CAPTION_ATTRIBUTE_SIZES, CaptionAttribute, CaptionAttributes } from '../../data/captioned';

/** Logit ranges per attribute: [offset, size] in the 13 outputs. */
const RANGES: Record<CaptionAttribute, [number, number]> = (() => {
  let o = 0;
  const r = {} as Record<CaptionAttribute, [number, number]>;
  for (const a of CAPTION_ATTRIBUTES) {
    r[a] = [o, CAPTION_ATTRIBUTE_SIZES[a]];
    o += CAPTION_ATTRIBUTE_SIZES[a];
  }
  return r;
})();
const OUTPUTS = CAPTION_ATTRIBUTES.reduce((a, k) => a + CAPTION_ATTRIBUTE_SIZES[k], 0);

export interface ClassifierTrainOptions {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  /** Content seed of the training videos (evaluation uses other seeds). */
  dataSeed: number;
  frames: number;
  /** Render size of the clips (resized to 32 x 32 by the proxy preprocessing). */
  size: number;
  /** Applied to each batch of real clips before training (e.g. an autoencoder round trip, so the classifier learns the decoder's domain). */
  transform?: (videos: Uint8Array[]) => Uint8Array[];
  log?: (m: string) => void;
}

/** Real captioned clips (first `frames` frames) of videos `indices` under `dataSeed`, with their attributes. */
export function captionedClips(dataSeed: number, indices: readonly number[], frames: number, size: number): { videos: Uint8Array[]; attributes: CaptionAttributes[] } {
  return {
    videos: indices.map((index) => renderSyntheticFrames({ family: 'captioned', seed: dataSeed, index, height: size, width: size }, 0, frames)),
    attributes: indices.map((index) => captionedAttributes(dataSeed, index)),
  };
}

export class CaptionClassifier {
  readonly net: MotionNet;

  constructor(readonly store: ParamStore) {
    this.net = new MotionNet(new Scope(store), OUTPUTS);
  }

  /** A classifier whose convolutions start from the shipped synthetic-motion weights (head fresh). */
  static fromProxy(seed: number): CaptionClassifier {
    const c = new CaptionClassifier(new ParamStore(new Rng(seed)));
    const { tensors } = loadSafetensors(PROXY_EXTRACTORS['synthetic-motion'].file);
    const trunk = new Map<string, NamedArray>();
    for (const [k, t] of tensors) if (!k.startsWith('head.') && t.data instanceof Float32Array) trunk.set(k, { shape: t.shape, data: t.data });
    c.store.load(trunk, { strict: false, source: 'synthetic-motion' });
    return c;
  }

  static load(file: string): CaptionClassifier {
    const c = new CaptionClassifier(new ParamStore(new Rng(0)));
    const values = new Map<string, NamedArray>();
    for (const [k, t] of loadSafetensors(file).tensors) values.set(k, { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) });
    c.store.load(values, { source: file });
    return c;
  }

  save(file: string): void {
    saveSafetensors(file, this.store.snapshot(), { kind: 'caption-classifier', attributes: JSON.stringify(CAPTION_ATTRIBUTE_SIZES) });
  }

  private input(videos: readonly Uint8Array[], t: number, h: number, w: number): tf.Tensor5D {
    const s = PROXY_SIZE;
    const per = t * s * s * 3;
    const x = new Float32Array(videos.length * per);
    videos.forEach((v, i) => proxyPreprocess(v, t, h, w, x, i * per));
    return tf.tensor5d(x, [videos.length, t, s, s, 3]);
  }

  /** Predicted attributes of uint8 clips [T, H, W, 3]. */
  predict(videos: readonly Uint8Array[], t: number, h: number, w: number, batch = 32): CaptionAttributes[] {
    const out: CaptionAttributes[] = [];
    for (let i = 0; i < videos.length; i += batch) {
      const x = this.input(videos.slice(i, i + batch), t, h, w);
      const logits = tf.tidy(() => this.net.logits(this.net.features(x)));
      const v = logits.dataSync();
      tf.dispose([x, logits]);
      for (let j = 0; j < logits.shape[0]; j++) {
        const row = v.subarray(j * OUTPUTS, (j + 1) * OUTPUTS);
        const pick = (a: CaptionAttribute): number => {
          const [o, n] = RANGES[a];
          let best = 0;
          for (let k = 1; k < n; k++) if (row[o + k] > row[o + best]) best = k;
          return best;
        };
        out.push({ colour: pick('colour'), shape: pick('shape'), direction: pick('direction'), count: pick('count') });
      }
    }
    return out;
  }

  /** Fine-tunes on random real captioned clips; returns the last logged mean loss. */
  train(o: ClassifierTrainOptions): number {
    const params = this.store.trainable();
    const opt = new Adam(params, { lr: o.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, kind: 'adam' });
    const rng = new Rng(o.seed).fork('caption-classifier');
    let avg = 0;
    try {
      for (let step = 1; step <= o.steps; step++) {
        const lr = o.lr * Math.min(1, step / 20) * 0.5 * (1 + Math.cos((Math.PI * (step - 1)) / o.steps));
        const clips = captionedClips(o.dataSeed, Array.from({ length: o.batch }, () => rng.int(0, 1_000_000)), o.frames, o.size);
        const x = this.input(o.transform ? o.transform(clips.videos) : clips.videos, o.frames, o.size, o.size);
        const targets = CAPTION_ATTRIBUTES.map((a) => tf.tidy(() => tf.oneHot(tf.tensor1d(clips.attributes.map((c) => c[a]), 'int32'), CAPTION_ATTRIBUTE_SIZES[a]) as tf.Tensor2D));
        const { value, grads } = tf.variableGrads(() => {
          const logits = this.net.logits(this.net.features(x));
          const losses = CAPTION_ATTRIBUTES.map((a, i) => {
            const [off, n] = RANGES[a];
            return tf.losses.softmaxCrossEntropy(targets[i], tf.slice(logits, [0, off], [-1, n]));
          });
          return tf.addN(losses) as tf.Scalar;
        }, params.map(([, v]) => v));
        const named = new Map<string, tf.Tensor>(params.map(([n, v]) => [n, grads[v.name]]));
        opt.apply(named, lr);
        const loss = value.dataSync()[0];
        avg = step === 1 ? loss : 0.95 * avg + 0.05 * loss;
        tf.dispose([x, value, ...targets, ...Object.values(grads)]);
        if (o.log && (step % 25 === 0 || step === o.steps)) o.log(`classifier step ${step}/${o.steps}: loss ${avg.toFixed(4)}`);
      }
    } finally {
      opt.dispose();
    }
    return avg;
  }

  dispose(): void {
    this.store.dispose();
  }
}
