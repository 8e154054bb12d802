/** Text encoding for text-to-video: CLIP BPE tokenizer, CLIP text transformer, the UNet's text conditioner. */
export { ClipTokenizer, buildWordVocab, bytesToUnicode, cleanText, htmlUnescape, parseMerges, START_TOKEN, END_TOKEN, END_OF_WORD, CLIP_CONTEXT_LENGTH } from './tokenizer';
export type { TokenizerFiles, TokenizeOptions, TokenizedBatch } from './tokenizer';
export { ClipTextModel, CLIP_VIT_L14_TEXT, causalBias, hfClipTextValues } from './clip';
export type { ClipTextConfig } from './clip';
export { TextConditioner, TEXT_PREFIX, tokenizerFromConfig } from './conditioner';
