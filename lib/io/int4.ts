/**
 * Int4 weight storage for shipped models (half of int8's bytes; for wide models under the 20 MB
 * budget of issue 12). Symmetric, one scale per group of INT4_GROUP consecutive input positions of
 * each output channel: a kernel [..., out] (tfjs's layout) is read as rows [K, out], K = the product
 * of the other axes, and row group g = rows [g G, (g + 1) G) of channel c has
 *   scale[g, c] = max |w[k, c]| / 7 (rounded up to float16),   q = round(w / scale) in [-7, 7],
 *   w~ = q * scale                                              (|w - w~| <= scale / 2).
 * Groups along the input axis are the usual remedy for 4-bit rounding of a whole channel (one large
 * weight would flatten the rest): "round to nearest with group size g" in GPTQ (Frantar et al. 2022)
 * and AWQ (Lin et al. 2023), whose calibration this does without.
 * In a safetensors file the values are tensor `<name>` (dtype U8, shape [..., out / 2]: two values
 * per byte along the last axis, the even channel in the low nibble, stored as q + 8) and the scales
 * tensor `<name>.int4_scale` (F16, [ceil(K / G), out]); the file's metadata key INT4_METADATA marks
 * the convention, and `decodeSafetensors` widens such tensors back to float32 on load.
 */
import { floatToHalf, halfToFloat } from './half';
import { quantizableInt8 } from './int8';

export const INT4_METADATA = 'lvdm.int4';
export const INT4_SCALE_SUFFIX = '.int4_scale';
export const INT4_GROUP = 32;
export const INT4_CONVENTION = `symmetric per output channel (last axis) and group of ${INT4_GROUP} rows: w = (nibble - 8) * scale, two nibbles per byte (even channel low), scales [groups, out] in <name>.int4_scale`;

/** The smallest float16 value >= s (s >= 0): a scale that never pushes max |w| / scale above 7. */
function halfCeil(s: number): number {
  const h = floatToHalf(s);
  return halfToFloat(h) >= s ? h : h + 1;
}

/** Kernels stored as int4: those int8 would quantise, with an even number of output channels (two per byte). */
export function quantizableInt4(shape: readonly number[]): boolean {
  return quantizableInt8(shape) && shape[shape.length - 1] % 2 === 0;
}

/** Index of the scale of value i of a kernel with `out` output channels: [group of its row, its channel]. */
function groupOf(i: number, out: number): number {
  return Math.floor(i / out / INT4_GROUP) * out + (i % out);
}

/**
 * Packs a kernel [..., out] (out even) into int4 nibbles and float16 group scales (as bit patterns),
 * with the shapes they are stored under.
 */
export function quantizeInt4(
  data: Float32Array,
  shape: readonly number[],
  what: string,
): { packed: Uint8Array; packedShape: number[]; scale: Uint16Array; scaleShape: number[]; groups: number } {
  const out = shape[shape.length - 1];
  if (shape.length < 2 || out % 2 !== 0 || data.length % out !== 0) throw new Error(`${what}: cannot pack shape [${shape}] into int4 (rank >= 2 and an even last axis expected)`);
  const rows = data.length / out;
  const groups = Math.ceil(rows / INT4_GROUP);
  const scale = new Uint16Array(groups * out);
  const value = new Float32Array(groups * out);
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (!Number.isFinite(a)) throw new Error(`${what}: value ${data[i]} at index ${i} is not finite; keep this file in float32`);
    const j = groupOf(i, out);
    if (a > value[j]) value[j] = a;
  }
  for (let j = 0; j < value.length; j++) {
    scale[j] = halfCeil(value[j] / 7);
    value[j] = halfToFloat(scale[j]);
  }
  const packed = new Uint8Array(data.length / 2);
  for (let i = 0; i < data.length; i++) {
    const s = value[groupOf(i, out)];
    const q = s === 0 ? 0 : Math.max(-7, Math.min(7, Math.round(data[i] / s)));
    packed[i >> 1] |= (q + 8) << ((i & 1) * 4);
  }
  return { packed, packedShape: [...shape.slice(0, -1), out / 2], scale, scaleShape: [groups, out], groups };
}

/** Widens packed int4 values [..., out / 2] with float scales [groups, out] back to float32 [..., out]. */
export function dequantizeInt4(packed: Uint8Array, scale: Float32Array, out: number, what: string): Float32Array {
  const n = packed.length * 2;
  const groups = Math.ceil(n / out / INT4_GROUP);
  if (out < 2 || n % out !== 0 || scale.length !== groups * out) throw new Error(`${what}: ${n} int4 values of ${out} channels need ${groups} x ${out} group scales, got ${scale.length}`);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const nibble = (packed[i >> 1] >> ((i & 1) * 4)) & 15;
    if (nibble === 0) throw new Error(`${what}: nibble 0 at index ${i} is outside the int4 convention (values 1-15 store -7..7)`);
    w[i] = (nibble - 8) * scale[groupOf(i, out)];
  }
  return w;
}
