/**
 * safetensors (huggingface/safetensors format): 8-byte little-endian header length N, N bytes of
 * JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
 * then the raw little-endian tensor bytes. Used for parameters and checkpoints so weights move
 * between LVDM.ts and PyTorch (`safetensors.torch.load_file`).
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './atomic';
import { floatToHalf, halfToFloat } from './half';
import { INT4_METADATA, INT4_SCALE_SUFFIX, dequantizeInt4 } from './int4';
import { INT8_METADATA, INT8_SCALE_SUFFIX, dequantizeInt8 } from './int8';

export { floatToHalf, halfToFloat };

export type SafeDType = 'F32' | 'F64' | 'F16' | 'I32' | 'I64' | 'I8' | 'U8' | 'BF16';
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: TypedArray;
}

const BYTES: Record<SafeDType, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I32: 4, I64: 8, I8: 1, U8: 1 };

function dtypeOf(a: TypedArray): SafeDType {
  if (a instanceof Float32Array) return 'F32';
  if (a instanceof Float64Array) return 'F64';
  if (a instanceof Int32Array) return 'I32';
  return 'U8';
}

/** A tensor to write: its values (a Uint8Array is U8), (dtype 'F16') IEEE binary16 bit patterns from `floatToHalf`, or int8 values. */
export type TensorToWrite = { shape: number[]; data: TypedArray } | { shape: number[]; data: Uint16Array; dtype: 'F16' } | { shape: number[]; data: Int8Array; dtype: 'I8' };

export function encodeSafetensors(tensors: Map<string, TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`safetensors: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: 'dtype' in t ? t.dtype : dtypeOf(t.data), shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (allowed by the format).
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hbytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let pos = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

export function saveSafetensors(file: string, tensors: Map<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** float32 values as binary16 bits (floatToHalf each); throws, naming `what`, on a finite value beyond the half range. */
export function toHalfArray(data: Float32Array, what: string): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const h = floatToHalf(data[i]);
    if ((h & 0x7c00) === 0x7c00 && Number.isFinite(data[i])) throw new Error(`${what}: value ${data[i]} at index ${i} is beyond the float16 range (|x| <= 65504); keep this file in float32`);
    out[i] = h;
  }
  return out;
}

/**
 * Parses a safetensors buffer. F16/BF16 are widened to F32, I64 narrowed to I32 (checked), I8
 * widened to I32; in a file marked with lvdm's int8 convention (lib/io/int8.ts) each I8 tensor
 * and its `<name>.int8_scale` become one F32 tensor, and with the int4 convention (lib/io/int4.ts)
 * each packed U8 tensor and its `<name>.int4_scale`.
 */
export function decodeSafetensors(buf: Uint8Array, source = '<buffer>'): SafetensorsFile {
  if (buf.length < 8) throw new Error(`${source}: not a safetensors file (shorter than 8 bytes)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n <= 0 || 8 + n > buf.length) throw new Error(`${source}: not a safetensors file (header length ${n} does not fit the file size ${buf.length})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(buf.subarray(8, 8 + n)).toString('utf8'));
  } catch (e) {
    throw new Error(`${source}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${source}: safetensors header is not a JSON object`);
  const header = parsed as Record<string, unknown>;
  const base = 8 + n;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      const m = raw ?? {};
      if (typeof m !== 'object' || Array.isArray(m) || Object.values(m).some((v) => typeof v !== 'string'))
        throw new Error(`${source}: safetensors __metadata__ must map strings to strings`);
      metadata = m as Record<string, string>;
      continue;
    }
    const info = raw as { dtype: SafeDType; shape: number[]; data_offsets: [number, number] } | null;
    if (
      !info ||
      typeof info !== 'object' ||
      typeof info.dtype !== 'string' ||
      !Object.prototype.hasOwnProperty.call(BYTES, info.dtype) ||
      !Array.isArray(info.shape) ||
      !info.shape.every(isIndex) ||
      !Array.isArray(info.data_offsets) ||
      info.data_offsets.length !== 2 ||
      !info.data_offsets.every(isIndex)
    )
      throw new Error(`${source}: tensor '${name}' has a malformed header entry (dtype ${String(info?.dtype)}, shape ${JSON.stringify(info?.shape)}, data_offsets ${JSON.stringify(info?.data_offsets)})`);
    const [b, e] = info.data_offsets;
    const count = info.shape.reduce((a, c) => a * c, 1);
    if (e < b || e - b !== count * BYTES[info.dtype] || base + e > buf.length)
      throw new Error(`${source}: tensor '${name}' byte range [${b}, ${e}) does not fit shape [${info.shape}] ${info.dtype} or the file`);
    // Copy into a fresh, 0-aligned buffer. (Not buf.slice: on a Node Buffer, e.g. from readFileSync,
    // slice is a view into a shared pool, and the typed arrays below read from its buffer's start.)
    const bytes = new Uint8Array(e - b);
    bytes.set(buf.subarray(base + b, base + e));
    let data: TypedArray;
    switch (info.dtype) {
      case 'F32':
        data = new Float32Array(bytes.buffer, 0, count);
        break;
      case 'F64':
        data = new Float64Array(bytes.buffer, 0, count);
        break;
      case 'I32':
        data = new Int32Array(bytes.buffer, 0, count);
        break;
      case 'U8':
        data = bytes;
        break;
      case 'I8':
        data = Int32Array.from(new Int8Array(bytes.buffer, 0, count));
        break;
      case 'I64': {
        const big = new BigInt64Array(bytes.buffer, 0, count);
        const out = new Int32Array(count);
        for (let i = 0; i < count; i++) {
          const v = Number(big[i]);
          if (!Number.isSafeInteger(v) || v > 2147483647 || v < -2147483648) throw new Error(`${source}: tensor '${name}' has int64 values out of int32 range`);
          out[i] = v;
        }
        data = out;
        break;
      }
      case 'F16': {
        const u16 = new Uint16Array(bytes.buffer, 0, count);
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = halfToFloat(u16[i]);
        data = out;
        break;
      }
      case 'BF16': {
        const u16 = new Uint16Array(bytes.buffer, 0, count);
        const u32 = new Uint32Array(count);
        for (let i = 0; i < count; i++) u32[i] = u16[i] << 16;
        data = new Float32Array(u32.buffer);
        break;
      }
    }
    tensors.set(name, { dtype: info.dtype === 'F16' || info.dtype === 'BF16' ? 'F32' : info.dtype === 'I64' || info.dtype === 'I8' ? 'I32' : info.dtype, shape: info.shape, data });
  }
  if (metadata[INT8_METADATA] !== undefined) widenInt8(tensors, header, source);
  if (metadata[INT4_METADATA] !== undefined) widenInt4(tensors, source);
  return { tensors, metadata };
}

/** lvdm's int8 convention: every I8 tensor times its per-channel scales, as F32 (the scales removed). */
function widenInt8(tensors: Map<string, SafeTensor>, header: Record<string, unknown>, source: string): void {
  for (const [name, raw] of Object.entries(header)) {
    if ((raw as { dtype?: string } | null)?.dtype !== 'I8') continue;
    const t = tensors.get(name)!;
    const s = tensors.get(name + INT8_SCALE_SUFFIX);
    const c = t.shape[t.shape.length - 1];
    if (!s || s.dtype !== 'F32' || s.shape.length !== 1 || s.shape[0] !== c)
      throw new Error(`${source}: int8 tensor '${name}' [${t.shape}] needs a float scale tensor '${name}${INT8_SCALE_SUFFIX}' of shape [${c}] (${INT8_METADATA} convention)`);
    tensors.set(name, { dtype: 'F32', shape: t.shape, data: dequantizeInt8(t.data as Int32Array, s.data as Float32Array, `${source}: tensor '${name}'`) });
    tensors.delete(name + INT8_SCALE_SUFFIX);
  }
  for (const name of tensors.keys()) if (name.endsWith(INT8_SCALE_SUFFIX)) throw new Error(`${source}: scale tensor '${name}' has no int8 tensor '${name.slice(0, -INT8_SCALE_SUFFIX.length)}'`);
}

/** lvdm's int4 convention: every packed U8 tensor with a `<name>.int4_scale` widened to F32 [..., 2 x last] (the scales removed). */
function widenInt4(tensors: Map<string, SafeTensor>, source: string): void {
  for (const [key, s] of [...tensors]) {
    if (!key.endsWith(INT4_SCALE_SUFFIX)) continue;
    const name = key.slice(0, -INT4_SCALE_SUFFIX.length);
    const t = tensors.get(name);
    if (!t) throw new Error(`${source}: scale tensor '${key}' has no int4 tensor '${name}'`);
    const out = 2 * t.shape[t.shape.length - 1];
    if (t.dtype !== 'U8' || t.shape.length < 2 || s.dtype !== 'F32' || s.shape.length !== 2 || s.shape[1] !== out)
      throw new Error(`${source}: int4 tensor '${name}' (${t.dtype} [${t.shape}]) needs packed U8 values [..., channels / 2] and a float scale tensor '${key}' of shape [groups, ${out}], got ${s.dtype} [${s.shape}] (${INT4_METADATA} convention)`);
    const shape = [...t.shape.slice(0, -1), out];
    tensors.set(name, { dtype: 'F32', shape, data: dequantizeInt4(t.data as Uint8Array, s.data as Float32Array, out, `${source}: tensor '${name}'`) });
    tensors.delete(key);
  }
}

export function loadSafetensors(file: string): SafetensorsFile {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found (expected a .safetensors file)`);
  return decodeSafetensors(fs.readFileSync(file), file);
}
