/**
 * Int8 weight storage for shipped models: symmetric, one scale per output channel (the last axis,
 * tfjs's layout for dense [in, out] and convolution [..., in, out] kernels):
 *   scale[c] = max_i |w[i, c]| / 127,   q[i, c] = round(w[i, c] / scale[c]) in [-127, 127],
 *   w~[i, c] = q[i, c] * scale[c]       (|w - w~| <= scale[c] / 2).
 * In a safetensors file the int8 values are tensor `<name>` (dtype I8) and the scales tensor
 * `<name>.int8_scale` (float32, [channels]); the file's metadata key INT8_METADATA marks the
 * convention, and `decodeSafetensors` widens such tensors back to float32 on load.
 */

export const INT8_METADATA = 'lvdm.int8';
export const INT8_SCALE_SUFFIX = '.int8_scale';
export const INT8_CONVENTION = 'symmetric per output channel (last axis): w = q * scale, scale in <name>.int8_scale';

/** Kernels worth quantising: rank >= 2 and at least this many values (biases and norms stay float). */
export const INT8_MIN_VALUES = 1024;

/**
 * Kernels with at most this many input or output channels face the data (a UNet's first convolution
 * over the latents and mask, its last one onto v or eps; an autoencoder's pixel and latent
 * convolutions) and stay float16: the usual exception of first and last layers in weight
 * quantisation. Measured here: with them in int8 the taichi autoregressive model read FVD_proxy
 * +8.5% over 1,024 frames, in every seed; kept in float16, +1.5% (experiments/RESULTS.md).
 */
export const INT8_DATA_CHANNELS = 8;

export function quantizableInt8(shape: readonly number[]): boolean {
  if (shape.length < 2 || shape.reduce((a, b) => a * b, 1) < INT8_MIN_VALUES) return false;
  return Math.min(shape[shape.length - 2], shape[shape.length - 1]) > INT8_DATA_CHANNELS;
}

export function quantizeInt8(data: Float32Array, shape: readonly number[], what: string): { q: Int8Array; scale: Float32Array } {
  const c = shape[shape.length - 1];
  if (shape.length < 1 || c < 1 || data.length % c !== 0) throw new Error(`${what}: cannot quantise shape [${shape}] per last axis`);
  const scale = new Float32Array(c);
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (!Number.isFinite(a)) throw new Error(`${what}: value ${data[i]} at index ${i} is not finite; keep this file in float32`);
    if (a > scale[i % c]) scale[i % c] = a;
  }
  for (let k = 0; k < c; k++) scale[k] /= 127;
  const q = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const s = scale[i % c];
    q[i] = s === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(data[i] / s)));
  }
  return { q, scale };
}

export function dequantizeInt8(q: Int8Array | Int32Array, scale: Float32Array, what: string): Float32Array {
  const c = scale.length;
  if (c < 1 || q.length % c !== 0) throw new Error(`${what}: ${q.length} int8 values do not divide into ${c} channel scales`);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i] * scale[i % c];
  return out;
}
