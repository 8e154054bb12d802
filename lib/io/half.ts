// IEEE 754 binary16 <-> number, for float16 weights (safetensors F16, shipped models, int4 scales).

/** IEEE 754 binary16 -> number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * number -> IEEE 754 binary16 bits, rounding the float32 value to the nearest half, ties to even
 * (numpy's float16 cast). Subnormals are kept; values beyond the largest half (65504) round to
 * infinity, as in numpy.
 */
export function floatToHalf(x: number): number {
  F32[0] = x;
  const u = U32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // inf, NaN (quiet)
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): the value is m x 2^-24 with m = full mantissa >> (14 - e) rounded.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const full = man | 0x800000;
    const shift = 14 - e;
    const m = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (m + (rest > half || (rest === half && m & 1) ? 1 : 0)); // a carry into 0x400 is the smallest normal
  }
  const m = man >>> 13;
  const rest = man & 0x1fff;
  const h = sign | (e << 10) | m;
  return h + (rest > 0x1000 || (rest === 0x1000 && m & 1) ? 1 : 0); // a carry overflows into the exponent, to inf at the top
}
