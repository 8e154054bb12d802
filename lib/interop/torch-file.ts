/**
 * PyTorch checkpoint files (`torch.save`, zip format, PyTorch >= 1.6; Lightning `.ckpt` files are
 * the same): `<archive>/data.pkl` (the pickled object; tensors as persistent-id storages),
 * `<archive>/data/<key>` (raw little-endian storage bytes), `<archive>/version`, optionally
 * `<archive>/byteorder`. Read with the safe unpickler (lib/interop/pickle.ts); written as an
 * OrderedDict of float32 tensors that `torch.load` (also `weights_only=True`) reads.
 */
import * as fs from 'node:fs';
import { ZipReader, writeZip } from './zip';
import { halfToFloat } from '../io/safetensors';
import { PyDict, PyValue, TensorRef, TorchDType, isTensorRef, unpickle } from './pickle';

const DTYPE_BYTES: Record<TorchDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface TorchFile {
  source: string;
  root: PyValue;
  /** Reads a tensor's elements (C order) as float32 (f16/bf16/f64/int widened or narrowed). */
  read(t: TensorRef): Float32Array;
}

function storageToFloat(bytes: Uint8Array, dtype: TorchDType, numel: number): Float32Array {
  const copy = new Uint8Array(numel * DTYPE_BYTES[dtype]);
  copy.set(bytes.subarray(0, copy.length));
  const b = copy.buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(b);
    case 'F64':
      return Float32Array.from(new Float64Array(b));
    case 'F16': {
      const u = new Uint16Array(b);
      const out = new Float32Array(numel);
      for (let i = 0; i < numel; i++) out[i] = halfToFloat(u[i]);
      return out;
    }
    case 'BF16': {
      const u = new Uint16Array(b);
      const w = new Uint32Array(numel);
      for (let i = 0; i < numel; i++) w[i] = u[i] << 16;
      return new Float32Array(w.buffer);
    }
    case 'I64':
      return Float32Array.from(new BigInt64Array(b), (v) => Number(v));
    case 'I32':
      return Float32Array.from(new Int32Array(b));
    case 'I16':
      return Float32Array.from(new Int16Array(b));
    case 'I8':
      return Float32Array.from(new Int8Array(b));
    default:
      return Float32Array.from(copy);
  }
}

/** Opens a PyTorch zip checkpoint held in memory. */
export function openTorchFile(buf: Uint8Array, source = '<buffer>', metadata: 'inert' | 'refuse' = 'inert'): TorchFile {
  if (buf.length >= 2 && buf[0] === 0x80 && buf[1] === 0x02)
    throw new Error(`${source}: legacy (pre-1.6, non-zip) torch serialization is not supported; re-save it with torch.save in PyTorch >= 1.6`);
  const zip = new ZipReader(buf, source);
  const pkl = zip.names().find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (!pkl) throw new Error(`${source}: no data.pkl in the archive (not a PyTorch checkpoint)`);
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const bo = zip.entries.has(`${prefix}byteorder`) ? Buffer.from(zip.read(`${prefix}byteorder`)).toString('utf8').trim() : 'little';
  if (bo !== 'little') throw new Error(`${source}: byte order '${bo}' is not supported (little-endian only)`);
  const root = unpickle(zip.read(pkl), { source: `${source} (${pkl})`, metadata });
  const cache = new Map<string, Float32Array>();
  return {
    source,
    root,
    read(t: TensorRef): Float32Array {
      const st = t.storage;
      let all = cache.get(st.key);
      if (!all) {
        const bytes = zip.read(`${prefix}data/${st.key}`);
        if (bytes.length < st.numel * DTYPE_BYTES[st.dtype]) throw new Error(`${source}: storage ${st.key} has ${bytes.length} bytes, expected ${st.numel * DTYPE_BYTES[st.dtype]}`);
        all = storageToFloat(bytes, st.dtype, st.numel);
        cache.set(st.key, all);
      }
      const n = t.shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      if (n === 0) return out;
      // Last element reachable must lie inside the storage.
      const last = t.offset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0);
      if (t.offset < 0 || last >= all.length) throw new Error(`${source}: tensor view (offset ${t.offset}, shape [${t.shape}], stride [${t.stride}]) exceeds storage ${st.key}`);
      const rank = t.shape.length;
      const idx = new Array<number>(rank).fill(0);
      let src = t.offset;
      for (let i = 0; i < n; i++) {
        out[i] = all[src];
        for (let d = rank - 1; d >= 0; d--) {
          idx[d]++;
          src += t.stride[d];
          if (idx[d] < t.shape[d]) break;
          src -= t.stride[d] * t.shape[d];
          idx[d] = 0;
        }
      }
      return out;
    },
  };
}

export function readTorchFile(file: string, metadata: 'inert' | 'refuse' = 'inert'): TorchFile {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  return openTorchFile(fs.readFileSync(file), file, metadata);
}

/**
 * The state dict inside a checkpoint: `root['state_dict']` (Lightning) or the root itself when it
 * maps names to tensors. Non-tensor values (e.g. Lightning's `_metadata`) are skipped.
 */
export function stateDictOf(root: PyValue, source: string): Map<string, TensorRef> {
  if (!(root instanceof Map)) throw new Error(`${source}: the checkpoint is not a dict`);
  const inner = root.get('state_dict');
  const sd: PyDict = inner instanceof Map ? inner : root;
  const out = new Map<string, TensorRef>();
  for (const [k, v] of sd) if (typeof k === 'string' && isTensorRef(v)) out.set(k, v);
  if (out.size === 0) throw new Error(`${source}: no tensors found (expected a state dict or a Lightning checkpoint with 'state_dict')`);
  return out;
}

// ------------------------------------------------------------------------------------ writer

class PickleWriter {
  private readonly chunks: number[] = [];
  op(...b: number[]): this {
    this.chunks.push(...b);
    return this;
  }
  str(s: string): this {
    // BINUNICODE (protocol 1+): torch 1.13's weights_only unpickler lacks SHORT_BINUNICODE.
    const b = Buffer.from(s, 'utf8');
    this.op(0x58);
    this.u32(b.length);
    for (const x of b) this.chunks.push(x);
    return this;
  }
  u32(v: number): this {
    this.chunks.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op(0x4b, v);
    if (v >= -2147483648 && v <= 2147483647) {
      this.op(0x4a);
      return this.u32(v >>> 0);
    }
    throw new Error(`pickle writer: integer ${v} out of range`);
  }
  global(module: string, name: string): this {
    this.op(0x63);
    for (const x of Buffer.from(`${module}\n${name}\n`, 'utf8')) this.chunks.push(x);
    return this;
  }
  tuple(vals: number[]): this {
    this.op(0x28);
    for (const v of vals) this.int(v);
    return this.op(0x74);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/**
 * Serialises named float32 tensors as a PyTorch checkpoint: an OrderedDict (optionally wrapped as
 * {'state_dict': ...} like Lightning) of contiguous float32 tensors, one storage per tensor.
 * Protocol 2, the constructs torch.save itself emits; readable by `torch.load(weights_only=True)`.
 */
export function encodeTorchStateDict(tensors: Map<string, { shape: number[]; data: Float32Array }>, opts: { lightning?: boolean; archive?: string } = {}): Uint8Array {
  const archive = opts.archive ?? 'archive';
  const p = new PickleWriter().op(0x80, 2);
  if (opts.lightning) p.op(0x7d).str('state_dict'); // {} 'state_dict'
  p.global('collections', 'OrderedDict').op(0x29, 0x52); // OrderedDict()
  const entries: { name: string; data: Uint8Array }[] = [];
  let key = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`torch writer: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    p.str(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.op(0x28); // MARK (args)
    p.op(0x28).str('storage').global('torch', 'FloatStorage').str(String(key)).str('cpu').int(n).op(0x74, 0x51); // pid tuple, BINPERSID
    p.int(0).tuple(t.shape).tuple(stride).op(0x89); // offset, size, stride, requires_grad=False
    p.global('collections', 'OrderedDict').op(0x29, 0x52); // backward_hooks
    p.op(0x74, 0x52); // TUPLE, REDUCE
    p.op(0x73); // SETITEM
    entries.push({ name: `${archive}/data/${key}`, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
    key++;
  }
  if (opts.lightning) p.op(0x73);
  p.op(0x2e);
  return writeZip([{ name: `${archive}/data.pkl`, data: p.bytes() }, ...entries, { name: `${archive}/version`, data: Buffer.from('3\n') }]);
}
