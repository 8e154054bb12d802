/**
 * Text conditioning of the text-to-video model: prompts -> CLIP tokens -> CLIP text transformer ->
 * the UNet's cross-attention context. Lives in the diffusion model's ParamStore under
 * `cond_stage_model.transformer.` (LDM/LVDM's name for the FrozenCLIPEmbedder), so its weights
 * train, checkpoint, EMA and load with the UNet's.
 *
 * Conditioning keys: the training batch carries `tokens` [B, L] (int32) and `token_mask` [B, L];
 * `encodeCond` turns them into the UNet's `context` [B, L, width] and `context_mask` [B, L]
 * (inside the gradient tape when the encoder trains).
 */
import * as tf from '@tensorflow/tfjs';
import { TextConfig } from '../config/schema';
import { ParamStore, Scope } from '../nn/params';
import { Cond } from '../diffusion/types';
import { ClipTextModel, hfClipTextValues } from './clip';
import { ClipTokenizer, buildWordVocab } from './tokenizer';

export const TEXT_PREFIX = 'cond_stage_model.transformer';

/** The tokenizer a text config names: vocab.json + merges.txt, or a word vocabulary. */
export function tokenizerFromConfig(cfg: TextConfig, source = 'text'): ClipTokenizer {
  if (cfg.vocab || cfg.merges) {
    if (!cfg.vocab || !cfg.merges) throw new Error(`${source}: 'text.vocab' and 'text.merges' go together (CLIP's vocab.json and merges.txt)`);
    return ClipTokenizer.fromFiles(cfg.vocab, cfg.merges);
  }
  if (!cfg.words) throw new Error(`${source}: the text encoder needs a tokenizer: 'text.vocab' + 'text.merges' (CLIP files) or 'text.words' (a word list)`);
  return new ClipTokenizer(buildWordVocab(cfg.words), `${source}: text.words`);
}

export class TextConditioner {
  readonly tokenizer: ClipTokenizer;
  readonly model: ClipTextModel;

  /** Builds the encoder's parameters in `store` (drawn from its Rng). */
  constructor(store: ParamStore, readonly cfg: TextConfig, source = 'text') {
    this.tokenizer = tokenizerFromConfig(cfg, source);
    this.model = new ClipTextModel(new Scope(store, TEXT_PREFIX), {
      vocabSize: this.tokenizer.vocabSize,
      width: cfg.width,
      layers: cfg.layers,
      heads: cfg.heads,
      contextLength: cfg.context_length,
      mlpWidth: cfg.mlp_ratio * cfg.width,
    });
  }

  /** Whether the encoder's parameters train with the UNet. */
  get trainable(): boolean {
    return this.cfg.train ?? !this.cfg.weights;
  }

  /** Loads `text.weights` (HF CLIPTextModel safetensors) into the store; freezes the encoder unless it trains. */
  loadPretrained(store: ParamStore): void {
    if (this.cfg.weights) {
      const names = store.names().filter((n) => n.startsWith(`${TEXT_PREFIX}.`));
      store.load(hfClipTextValues(this.cfg.weights, this.model, names), { strict: false, source: this.cfg.weights });
    }
    if (!this.trainable) store.freeze(`${TEXT_PREFIX}.`);
  }

  /** Host tokens of prompts as conditioning tensors `tokens` [B, L] int32 and `token_mask` [B, L]. */
  tokenize(prompts: readonly string[]): Cond {
    const t = this.tokenizer.tokenize(prompts, { contextLength: this.cfg.context_length, pad: this.cfg.pad });
    const L = t.contextLength;
    return { tokens: tf.tensor2d(t.ids, [t.batch, L], 'int32'), token_mask: tf.tensor2d(t.mask, [t.batch, L]) };
  }

  /** {tokens, token_mask, ...rest} -> {context, context_mask?, ...rest} (the other keys pass through). */
  encodeCond(cond: Cond): Cond {
    const { tokens, token_mask: mask, ...rest } = cond;
    if (!tokens) throw new Error(`text encoder: conditioning has no 'tokens' (keys: ${Object.keys(cond).join(', ')})`);
    const out: Record<string, tf.Tensor> = { ...rest, context: this.model.apply(tokens as tf.Tensor2D) };
    if (this.cfg.mask_padding && mask) out.context_mask = mask.clone();
    return out;
  }

  /** Prompts -> the UNet's conditioning {context, context_mask} (caller disposes). */
  encode(prompts: readonly string[]): Cond {
    const tok = this.tokenize(prompts);
    try {
      return this.encodeCond(tok);
    } finally {
      tf.dispose(Object.values(tok));
    }
  }
}
