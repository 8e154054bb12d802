/**
 * The CLIP text transformer (Radford et al., 2021; the ViT-L/14 text tower used by LDM/LVDM's
 * FrozenCLIPEmbedder): token + learned position embeddings, `layers` pre-LayerNorm residual blocks
 * (causal multi-head self-attention, then an MLP fc1 -> quick_gelu -> fc2), a final LayerNorm; the
 * output is the last hidden state [B, L, width] that the UNet's cross-attention reads.
 * ViT-L/14: width 768, 12 layers, 12 heads, MLP 3072, vocabulary 49408, context 77.
 *
 * Parameter names are those of Hugging Face's `CLIPTextModel` (below the model's scope):
 *   text_model.embeddings.token_embedding.weight            [vocab, width]
 *   text_model.embeddings.position_embedding.weight         [context, width]
 *   text_model.encoder.layers.{i}.layer_norm1.{weight,bias} [width]
 *   text_model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}  [width, width] / [width]
 *   text_model.encoder.layers.{i}.layer_norm2.{weight,bias}
 *   text_model.encoder.layers.{i}.mlp.fc1.{weight,bias}     [mlp, width] / [mlp]
 *   text_model.encoder.layers.{i}.mlp.fc2.{weight,bias}     [width, mlp] / [width]
 *   text_model.final_layer_norm.{weight,bias}
 * Here linear weights are held transposed ([in, out], tfjs layout); `loadHfClipText` transposes
 * the PyTorch [out, in] matrices of an HF safetensors export on the way in.
 */
import * as tf from '@tensorflow/tfjs';
import { NamedArray, Scope, init } from '../nn/params';
import { LayerNorm, Linear, quickGelu } from '../nn/layers';
import { loadSafetensors } from '../io/safetensors';
import { attentionCore, mergeHeads, splitHeads } from '../models/unet3d/attention';

export interface ClipTextConfig {
  vocabSize: number;
  width: number;
  layers: number;
  heads: number;
  /** Positions (77 for CLIP). */
  contextLength: number;
  /** MLP hidden size (4 x width in CLIP). */
  mlpWidth: number;
  eps?: number;
}

/** The text tower of CLIP ViT-L/14 (openai/clip-vit-large-patch14). */
export const CLIP_VIT_L14_TEXT: ClipTextConfig = { vocabSize: 49408, width: 768, layers: 12, heads: 12, contextLength: 77, mlpWidth: 3072 };

/** Vocabularies up to this size embed by one-hot matmul (differentiable on every backend); larger ones gather. */
const ONE_HOT_MAX_VOCAB = 4096;

class ClipLayer {
  readonly ln1: LayerNorm;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly out: Linear;
  readonly ln2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(s: Scope, readonly cfg: ClipTextConfig) {
    const w = cfg.width;
    const eps = cfg.eps ?? 1e-5;
    this.ln1 = new LayerNorm(s.child('layer_norm1'), w, eps);
    const a = s.child('self_attn');
    this.q = new Linear(a.child('q_proj'), w, w);
    this.k = new Linear(a.child('k_proj'), w, w);
    this.v = new Linear(a.child('v_proj'), w, w);
    this.out = new Linear(a.child('out_proj'), w, w);
    this.ln2 = new LayerNorm(s.child('layer_norm2'), w, eps);
    this.fc1 = new Linear(s.child('mlp').child('fc1'), w, cfg.mlpWidth);
    this.fc2 = new Linear(s.child('mlp').child('fc2'), cfg.mlpWidth, w);
  }

  /** x: [B*L, width]; causal: [L, L] logit bias. */
  apply(x: tf.Tensor2D, b: number, l: number, causal: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const heads = this.cfg.heads;
      const h = this.ln1.apply(x);
      const scale = 1 / Math.sqrt(this.cfg.width / heads);
      const q = splitHeads(tf.mul(this.q.apply(h), scale) as tf.Tensor2D, b, l, heads);
      const kT = splitHeads(this.k.apply(h), b, l, heads, true);
      const v = splitHeads(this.v.apply(h), b, l, heads);
      const y = tf.add(x, this.out.apply(mergeHeads(attentionCore(q, kT, v, undefined, causal), b, heads))) as tf.Tensor2D;
      return tf.add(y, this.fc2.apply(quickGelu(this.fc1.apply(this.ln2.apply(y))))) as tf.Tensor2D;
    });
  }
}

export class ClipTextModel {
  readonly tokenEmbedding: tf.Variable;
  readonly positionEmbedding: tf.Variable;
  private readonly layers: ClipLayer[] = [];
  private readonly finalNorm: LayerNorm;
  /** Full parameter names (store keys) in creation order. */
  readonly prefix: string;

  constructor(scope: Scope, readonly cfg: ClipTextConfig) {
    if (cfg.width % cfg.heads !== 0) throw new Error(`text encoder: width ${cfg.width} is not divisible by ${cfg.heads} heads`);
    this.prefix = scope.prefix;
    const tm = scope.child('text_model');
    const emb = tm.child('embeddings');
    this.tokenEmbedding = emb.child('token_embedding').param('weight', [cfg.vocabSize, cfg.width], init.normal(0.02));
    this.positionEmbedding = emb.child('position_embedding').param('weight', [cfg.contextLength, cfg.width], init.normal(0.01));
    const enc = tm.child('encoder').child('layers');
    for (let i = 0; i < cfg.layers; i++) this.layers.push(new ClipLayer(enc.child(i), cfg));
    this.finalNorm = new LayerNorm(tm.child('final_layer_norm'), cfg.width, cfg.eps ?? 1e-5);
  }

  /** ids: [B, L] int32 (L <= contextLength) -> last hidden state [B, L, width]. */
  apply(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, l] = ids.shape;
      const { vocabSize, width, contextLength } = this.cfg;
      if (l > contextLength) throw new Error(`text encoder: ${l} tokens exceed the context length ${contextLength}`);
      const flat = tf.reshape(ids, [b * l]) as tf.Tensor1D;
      const tok =
        vocabSize <= ONE_HOT_MAX_VOCAB
          ? (tf.matMul(tf.cast(tf.oneHot(flat, vocabSize), 'float32') as tf.Tensor2D, this.tokenEmbedding as tf.Tensor2D) as tf.Tensor2D)
          : (tf.gather(this.tokenEmbedding, flat) as tf.Tensor2D);
      const pos = tf.slice(this.positionEmbedding, [0, 0], [l, width]);
      let x = tf.reshape(tf.add(tf.reshape(tok, [b, l, width]), pos), [b * l, width]) as tf.Tensor2D;
      const causal = causalBias(l);
      for (const layer of this.layers) x = layer.apply(x, b, l, causal);
      return tf.reshape(this.finalNorm.apply(x), [b, l, width]) as tf.Tensor3D;
    });
  }
}

/** [L, L] with 0 on and below the diagonal and -1e9 above it (token i sees tokens 0..i). */
export function causalBias(l: number): tf.Tensor2D {
  const m = new Float32Array(l * l);
  for (let i = 0; i < l; i++) for (let j = i + 1; j < l; j++) m[i * l + j] = -1e9;
  return tf.tensor2d(m, [l, l]);
}

/** HF keys whose PyTorch [out, in] matrices are transposed into this model's [in, out]. */
export function isLinearWeight(key: string): boolean {
  return /\.(q_proj|k_proj|v_proj|out_proj|fc1|fc2)\.weight$/.test(key);
}

/**
 * Values for `model`'s parameters from a safetensors export of Hugging Face `CLIPTextModel`
 * (`text_model.*` keys as documented above, F32/F16/BF16; `text_model.embeddings.position_ids` and
 * keys outside `text_model.` such as `text_projection.weight` are ignored). A missing key or a
 * shape that does not match the configured size is an error naming the key.
 */
export function hfClipTextValues(file: string, model: ClipTextModel, paramNames: readonly string[]): Map<string, NamedArray> {
  const { tensors } = loadSafetensors(file);
  const pre = model.prefix ? `${model.prefix}.` : '';
  const out = new Map<string, NamedArray>();
  for (const name of paramNames) {
    if (!name.startsWith(pre)) continue;
    const key = name.slice(pre.length);
    const t = tensors.get(key);
    if (!t) throw new Error(`${file}: missing key '${key}' (a CLIPTextModel export needs text_model.embeddings.*, text_model.encoder.layers.{0..${model.cfg.layers - 1}}.*, text_model.final_layer_norm.*)`);
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    if (isLinearWeight(key)) {
      const [o, i] = t.shape;
      if (t.shape.length !== 2) throw new Error(`${file}: '${key}' has shape [${t.shape}], expected a matrix`);
      const tr = new Float32Array(o * i);
      for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) tr[c * o + r] = data[r * i + c];
      out.set(name, { shape: [i, o], data: tr });
    } else {
      out.set(name, { shape: t.shape.slice(), data });
    }
  }
  return out;
}
