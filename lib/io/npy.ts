/**
 * NumPy `.npy` and `.npz` files (numpy.lib.format, version 1.0/2.0/3.0 headers; `.npz` is a ZIP
 * archive of `<name>.npy` members, stored or deflated, with ZIP64 where sizes need it).
 *
 * Supported dtypes: float32 ('<f4'), float64 ('<f8'), uint8 ('|u1'), int32 ('<i4'), int64 ('<i8',
 * read as BigInt64Array). Big-endian files are byte-swapped on read; Fortran-order arrays are
 * reordered to C order on read. Writing is always little-endian C order.
 *
 * Whole-file API: `readNpy`, `writeNpy`, `readNpz`, `writeNpz` (and the in-memory
 * `encode*` / `decode*`). Large files: `openNpyArray` gives row-wise access to one array of a
 * `.npy` or `.npz` without loading it; `NpzStreamWriter` writes arrays row block by row block.
 * Video sample sets are `N x T x H x W x 3` uint8 arrays, e.g.
 * `writeNpz('samples.npz', new Map([['videos', { shape: [n, t, h, w, 3], data }]]))`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

export type NpyDType = 'float32' | 'float64' | 'uint8' | 'int32' | 'int64';
export type NpyData = Float32Array | Float64Array | Uint8Array | Int32Array | BigInt64Array;

/** What writers take: the dtype follows from the typed array. */
export interface NpyArrayInput {
  shape: number[];
  data: NpyData;
}

export interface NpyArray extends NpyArrayInput {
  dtype: NpyDType;
}

export interface NpyHeader {
  dtype: NpyDType;
  shape: number[];
  /** Byte offset of the array data from the start of the .npy bytes. */
  dataOffset: number;
  fortranOrder: boolean;
  littleEndian: boolean;
}

export interface NpzWriteOptions {
  /** Deflate members (np.savez_compressed). Default false (np.savez). */
  compress?: boolean;
  /** zlib level 1-9 when compressing (default 6). */
  level?: number;
}

const ITEM_BYTES: Record<NpyDType, number> = { float32: 4, float64: 8, uint8: 1, int32: 4, int64: 8 };
const DESCR: Record<NpyDType, string> = { float32: '<f4', float64: '<f8', uint8: '|u1', int32: '<i4', int64: '<i8' };
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function dtypeOfData(data: NpyData): NpyDType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  throw new Error('npy: unsupported typed array (expected Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array)');
}

export function itemBytes(dtype: NpyDType): number {
  return ITEM_BYTES[dtype];
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkShape(shape: readonly number[], what: string): void {
  for (const s of shape) if (!Number.isInteger(s) || s < 0) throw new Error(`${what}: invalid shape [${shape.join(', ')}]`);
}

// ---------------------------------------------------------------------------------------------
// .npy header

/** The .npy header bytes (magic, version, padded dict) for an array of this dtype and shape. */
export function npyHeaderBytes(dtype: NpyDType, shape: readonly number[]): Uint8Array {
  checkShape(shape, 'npy');
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // Version 1.0 has a uint16 header length; 2.0 a uint32 one. Total header length is a multiple of 64.
  let version = 1;
  let pre = 10;
  let total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  if (total - pre > 0xffff) {
    version = 2;
    pre = 12;
    total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  }
  const hlen = total - pre;
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  const text = dict + ' '.repeat(hlen - dict.length - 1) + '\n';
  for (let i = 0; i < text.length; i++) out[pre + i] = text.charCodeAt(i);
  return out;
}

/** Parses the header at the start of `buf` (which need only hold the header). */
export function parseNpyHeader(buf: Uint8Array, source = '<buffer>'): NpyHeader {
  if (buf.length < 10 || MAGIC.some((m, i) => buf[i] !== m)) throw new Error(`${source}: not a .npy file (missing \\x93NUMPY magic)`);
  const major = buf[6];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let hlen: number;
  let pre: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    pre = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new Error(`${source}: truncated .npy header`);
    hlen = dv.getUint32(8, true);
    pre = 12;
  } else {
    throw new Error(`${source}: unsupported .npy format version ${major}.${buf[7]}`);
  }
  if (buf.length < pre + hlen) throw new Error(`${source}: truncated .npy header (needs ${pre + hlen} bytes, have ${buf.length})`);
  const text = Buffer.from(buf.subarray(pre, pre + hlen)).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shapeM) throw new Error(`${source}: malformed .npy header ${JSON.stringify(text.trim())}`);
  const shape = shapeM[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const v = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(v) || v < 0) throw new Error(`${source}: malformed shape (${shapeM[1]}) in .npy header`);
      return v;
    });
  const d = descr[1];
  const order = d[0];
  const kind = d.slice(1);
  const table: Record<string, NpyDType> = { f4: 'float32', f8: 'float64', u1: 'uint8', i4: 'int32', i8: 'int64' };
  const dtype = table[kind];
  if (dtype === undefined || !['<', '>', '|', '='].includes(order))
    throw new Error(`${source}: unsupported dtype '${d}' (supported: float32, float64, uint8, int32, int64)`);
  return { dtype, shape, dataOffset: pre + hlen, fortranOrder: fortran[1] === 'True', littleEndian: order !== '>' };
}

// ---------------------------------------------------------------------------------------------
// Typed-array views over bytes

/** Copies `count` items of `dtype` from `bytes` (any alignment) into a new typed array. */
function typedFromBytes(bytes: Uint8Array, dtype: NpyDType, count: number, littleEndian: boolean): NpyData {
  const nb = count * ITEM_BYTES[dtype];
  const own = new Uint8Array(nb);
  own.set(bytes.subarray(0, nb));
  if (!littleEndian && ITEM_BYTES[dtype] > 1) {
    const w = ITEM_BYTES[dtype];
    for (let i = 0; i < nb; i += w) own.subarray(i, i + w).reverse();
  }
  switch (dtype) {
    case 'float32':
      return new Float32Array(own.buffer, 0, count);
    case 'float64':
      return new Float64Array(own.buffer, 0, count);
    case 'uint8':
      return own;
    case 'int32':
      return new Int32Array(own.buffer, 0, count);
    case 'int64':
      return new BigInt64Array(own.buffer, 0, count);
  }
}

function bytesOf(data: NpyData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function emptyLike(dtype: NpyDType, n: number): NpyData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'uint8':
      return new Uint8Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
  }
}

/** Fortran (column-major) order to C order. */
function fortranToC(data: NpyData, shape: number[]): NpyData {
  const n = data.length;
  const out = emptyLike(dtypeOfData(data), n);
  const rank = shape.length;
  if (rank <= 1) return data;
  const cStrides = new Array<number>(rank);
  const fStrides = new Array<number>(rank);
  let c = 1;
  let f = 1;
  for (let k = rank - 1; k >= 0; k--) {
    cStrides[k] = c;
    c *= shape[k];
  }
  for (let k = 0; k < rank; k++) {
    fStrides[k] = f;
    f *= shape[k];
  }
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let fo = 0;
    for (let k = 0; k < rank; k++) fo += idx[k] * fStrides[k];
    (out as unknown as { [i: number]: number | bigint })[i] = (data as unknown as { [i: number]: number | bigint })[fo];
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// .npy whole-array

function validateInput(arr: NpyArrayInput, what: string): NpyDType {
  const dtype = dtypeOfData(arr.data);
  checkShape(arr.shape, what);
  const n = numel(arr.shape);
  if (n !== arr.data.length) throw new Error(`${what}: ${arr.data.length} values do not match shape [${arr.shape.join(', ')}] (${n} values)`);
  return dtype;
}

export function encodeNpy(arr: NpyArrayInput): Uint8Array {
  const dtype = validateInput(arr, 'npy');
  const head = npyHeaderBytes(dtype, arr.shape);
  const out = new Uint8Array(head.length + arr.data.byteLength);
  out.set(head, 0);
  out.set(bytesOf(arr.data), head.length);
  return out;
}

export function decodeNpy(buf: Uint8Array, source = '<buffer>'): NpyArray {
  const h = parseNpyHeader(buf, source);
  const n = numel(h.shape);
  const need = h.dataOffset + n * ITEM_BYTES[h.dtype];
  if (buf.length < need) throw new Error(`${source}: truncated .npy data (shape [${h.shape.join(', ')}] ${h.dtype} needs ${need} bytes, file has ${buf.length})`);
  let data = typedFromBytes(buf.subarray(h.dataOffset), h.dtype, n, h.littleEndian);
  if (h.fortranOrder) data = fortranToC(data, h.shape);
  return { dtype: h.dtype, shape: h.shape, data };
}

export function readNpy(file: string): NpyArray {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found (expected a .npy file)`);
  return decodeNpy(fs.readFileSync(file), file);
}

/** Writes a .npy file atomically (temp file in the same folder, then rename). */
export function writeNpy(file: string, arr: NpyArrayInput): void {
  const dtype = validateInput(arr, file);
  withAtomicFd(file, (fd) => {
    writeAll(fd, npyHeaderBytes(dtype, arr.shape));
    writeAll(fd, bytesOf(arr.data));
  });
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (zlib.crc32 where available, else a table)

let crcTable: Uint32Array | null = null;

export function crc32(data: Uint8Array, prev = 0): number {
  if (data.length === 0) return prev >>> 0; // node's zlib.crc32 returns 0 for an empty view of an empty buffer
  const native = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
  if (typeof native === 'function') return native(data, prev) >>> 0;
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let c = (prev ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// ZIP reading

interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const U32 = 0xffffffff;

/** Random-access byte source: a file descriptor or an in-memory buffer. */
interface ByteSource {
  size: number;
  read(pos: number, len: number): Uint8Array;
  close(): void;
  name: string;
}

function bufferSource(buf: Uint8Array, name: string): ByteSource {
  return { size: buf.length, read: (pos, len) => buf.subarray(pos, Math.min(buf.length, pos + len)), close: () => undefined, name };
}

function fileSource(file: string): ByteSource {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  return {
    size,
    name: file,
    read(pos, len) {
      const n = Math.max(0, Math.min(len, size - pos));
      const out = new Uint8Array(n);
      let done = 0;
      while (done < n) {
        const r = fs.readSync(fd, out, done, n - done, pos + done);
        if (r <= 0) break;
        done += r;
      }
      return out.subarray(0, done);
    },
    close: () => fs.closeSync(fd),
  };
}

function u64(dv: DataView, off: number): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('zip: 64-bit field exceeds 2^53');
  return Number(v);
}

function readCentralDirectory(src: ByteSource): ZipEntry[] {
  const what = `${src.name}: not a valid .npz (zip) file`;
  const tailLen = Math.min(src.size, 22 + 0xffff + 20);
  const tail = src.read(src.size - tailLen, tailLen);
  const tdv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tdv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${what} (no end-of-central-directory record)`);
  let count = tdv.getUint16(eocd + 10, true);
  let cdSize = tdv.getUint32(eocd + 12, true);
  let cdOffset = tdv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === U32 || cdOffset === U32) {
    const loc = eocd - 20;
    if (loc < 0 || tdv.getUint32(loc, true) !== 0x07064b50) throw new Error(`${what} (ZIP64 locator missing)`);
    const z64off = u64(tdv, loc + 8);
    const rec = src.read(z64off, 56);
    const rdv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    if (rec.length < 56 || rdv.getUint32(0, true) !== 0x06064b50) throw new Error(`${what} (ZIP64 end record missing)`);
    count = u64(rdv, 32);
    cdSize = u64(rdv, 40);
    cdOffset = u64(rdv, 48);
  }
  if (cdOffset + cdSize > src.size) throw new Error(`${what} (central directory outside the file; truncated?)`);
  const cd = src.read(cdOffset, cdSize);
  const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || dv.getUint32(p, true) !== 0x02014b50) throw new Error(`${what} (bad central directory entry ${k})`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let csize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nlen = dv.getUint16(p + 28, true);
    const elen = dv.getUint16(p + 30, true);
    const clen = dv.getUint16(p + 32, true);
    let lho = dv.getUint32(p + 42, true);
    const name = Buffer.from(cd.subarray(p + 46, p + 46 + nlen)).toString(flags & 0x800 ? 'utf8' : 'latin1');
    let e = p + 46 + nlen;
    const eend = e + elen;
    while (e + 4 <= eend) {
      const id = dv.getUint16(e, true);
      const sz = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (usize === U32) {
          usize = u64(dv, q);
          q += 8;
        }
        if (csize === U32) {
          csize = u64(dv, q);
          q += 8;
        }
        if (lho === U32) {
          lho = u64(dv, q);
          q += 8;
        }
      }
      e += 4 + sz;
    }
    if (flags & 0x1) throw new Error(`${src.name}: member '${name}' is encrypted`);
    entries.push({ name, method, crc, compressedSize: csize, size: usize, localHeaderOffset: lho });
    p = eend + clen;
  }
  return entries;
}

function dataStart(src: ByteSource, e: ZipEntry): number {
  const h = src.read(e.localHeaderOffset, 30);
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  if (h.length < 30 || dv.getUint32(0, true) !== 0x04034b50) throw new Error(`${src.name}: bad local header for member '${e.name}'`);
  return e.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
}

function memberBytes(src: ByteSource, e: ZipEntry): Uint8Array {
  const start = dataStart(src, e);
  const raw = src.read(start, e.compressedSize);
  if (raw.length < e.compressedSize) throw new Error(`${src.name}: member '${e.name}' is truncated`);
  let out: Uint8Array;
  if (e.method === 0) out = raw;
  else if (e.method === 8) {
    try {
      out = zlib.inflateRawSync(raw);
    } catch (err) {
      throw new Error(`${src.name}: member '${e.name}' does not inflate (${(err as Error).message})`);
    }
  } else throw new Error(`${src.name}: member '${e.name}' uses unsupported compression method ${e.method} (only stored/deflate)`);
  if (out.length !== e.size) throw new Error(`${src.name}: member '${e.name}' has ${out.length} bytes, directory says ${e.size}`);
  if (crc32(out) !== e.crc) throw new Error(`${src.name}: member '${e.name}' fails its CRC-32 check (corrupt file)`);
  return out;
}

function arrayName(member: string): string {
  return member.endsWith('.npy') ? member.slice(0, -4) : member;
}

function decodeNpzFrom(src: ByteSource): Map<string, NpyArray> {
  const out = new Map<string, NpyArray>();
  for (const e of readCentralDirectory(src)) {
    if (e.name.endsWith('/')) continue;
    out.set(arrayName(e.name), decodeNpy(memberBytes(src, e), `${src.name}:${e.name}`));
  }
  return out;
}

export function decodeNpz(buf: Uint8Array, source = '<buffer>'): Map<string, NpyArray> {
  return decodeNpzFrom(bufferSource(buf, source));
}

/** Reads every array of a .npz file (names without the '.npy' suffix, as numpy.load gives them). */
export function readNpz(file: string): Map<string, NpyArray> {
  const src = fileSource(file);
  try {
    return decodeNpzFrom(src);
  } finally {
    src.close();
  }
}

/** Array names and headers of a .npz file without reading the data. */
export function listNpz(file: string): Map<string, NpyHeader> {
  const src = fileSource(file);
  try {
    const out = new Map<string, NpyHeader>();
    for (const e of readCentralDirectory(src)) {
      if (e.name.endsWith('/')) continue;
      out.set(arrayName(e.name), headerOfMember(src, e));
    }
    return out;
  } finally {
    src.close();
  }
}

function headerOfMember(src: ByteSource, e: ZipEntry): NpyHeader {
  const label = `${src.name}:${e.name}`;
  if (e.method === 0) return parseNpyHeader(src.read(dataStart(src, e), Math.min(e.size, 1 << 16)), label);
  if (e.method !== 8) throw new Error(`${label}: unsupported compression method ${e.method}`);
  // Inflate just enough of the member to see the header.
  const start = dataStart(src, e);
  const chunk = src.read(start, Math.min(e.compressedSize, 1 << 16));
  let head: Uint8Array;
  try {
    head = zlib.inflateRawSync(chunk, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch (err) {
    throw new Error(`${label}: does not inflate (${(err as Error).message})`);
  }
  return parseNpyHeader(head, label);
}

// ---------------------------------------------------------------------------------------------
// Row-wise access to one (possibly huge) array

/** One array of a .npy / .npz file, read in blocks of leading-axis rows. */
export interface LazyNpyArray {
  readonly source: string;
  readonly dtype: NpyDType;
  readonly shape: number[];
  /** Values per leading-axis row. */
  readonly rowSize: number;
  /** Rows [start, start + count) as one typed array of count * rowSize values. */
  readRows(start: number, count: number): Promise<NpyData>;
  close(): void;
}

class StoredArray implements LazyNpyArray {
  readonly rowSize: number;
  constructor(
    readonly source: string,
    private readonly src: ByteSource,
    private readonly header: NpyHeader,
    private readonly base: number,
  ) {
    this.rowSize = numel(header.shape.slice(1));
  }
  get dtype(): NpyDType {
    return this.header.dtype;
  }
  get shape(): number[] {
    return this.header.shape;
  }
  async readRows(start: number, count: number): Promise<NpyData> {
    checkRows(this, start, count);
    const ib = ITEM_BYTES[this.header.dtype];
    const bytes = this.src.read(this.base + start * this.rowSize * ib, count * this.rowSize * ib);
    if (bytes.length < count * this.rowSize * ib) throw new Error(`${this.source}: truncated data at rows ${start}..${start + count}`);
    return typedFromBytes(bytes, this.header.dtype, count * this.rowSize, this.header.littleEndian);
  }
  close(): void {
    this.src.close();
  }
}

/** Sequential inflate of a deflated member; rewinds (re-inflates from the start) on a backwards read. */
class DeflatedArray implements LazyNpyArray {
  readonly rowSize: number;
  private pos = 0; // bytes of array data consumed
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private iter: AsyncIterator<Buffer> | null = null;
  private stream: fs.ReadStream | null = null;
  private skipHeader: number;
  constructor(
    readonly source: string,
    private readonly file: string,
    private readonly header: NpyHeader,
    private readonly start: number,
    private readonly compressedSize: number,
  ) {
    this.rowSize = numel(header.shape.slice(1));
    this.skipHeader = header.dataOffset;
  }
  get dtype(): NpyDType {
    return this.header.dtype;
  }
  get shape(): number[] {
    return this.header.shape;
  }
  private reset(): void {
    this.stream?.destroy();
    this.stream = fs.createReadStream(this.file, { start: this.start, end: this.start + this.compressedSize - 1 });
    const inflater = zlib.createInflateRaw();
    this.stream.pipe(inflater);
    this.iter = inflater[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.skipHeader = this.header.dataOffset;
  }
  /** Ensures at least n bytes are buffered (after the .npy header, which is dropped first). */
  private async fill(n: number): Promise<void> {
    for (;;) {
      if (this.skipHeader > 0 && this.pendingBytes > 0) {
        const drop = Math.min(this.skipHeader, this.pendingBytes);
        this.discard(drop);
        this.skipHeader -= drop;
        this.pos -= drop;
      }
      if (this.skipHeader === 0 && this.pendingBytes >= n) return;
      const r = await this.iter!.next();
      if (r.done) throw new Error(`${this.source}: deflated data ends early (corrupt or truncated file)`);
      this.pending.push(r.value);
      this.pendingBytes += r.value.length;
    }
  }
  private discard(n: number): void {
    let left = n;
    while (left > 0) {
      const head = this.pending[0];
      if (head.length <= left) {
        this.pending.shift();
        left -= head.length;
      } else {
        this.pending[0] = head.subarray(left);
        left = 0;
      }
    }
    this.pendingBytes -= n;
    this.pos += n;
  }
  private async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const step = Math.min(left, 1 << 24);
      await this.fill(step);
      this.discard(step);
      left -= step;
    }
  }
  private async take(n: number): Promise<Uint8Array> {
    await this.fill(n);
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const head = this.pending[0];
      const k = Math.min(head.length, n - o);
      out.set(head.subarray(0, k), o);
      o += k;
      if (k === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(k);
    }
    this.pendingBytes -= n;
    this.pos += n;
    return out;
  }
  async readRows(start: number, count: number): Promise<NpyData> {
    checkRows(this, start, count);
    const ib = ITEM_BYTES[this.header.dtype];
    const want = start * this.rowSize * ib;
    if (this.iter === null || want < this.pos) this.reset();
    if (want > this.pos) await this.skip(want - this.pos);
    const bytes = await this.take(count * this.rowSize * ib);
    return typedFromBytes(bytes, this.header.dtype, count * this.rowSize, this.header.littleEndian);
  }
  close(): void {
    this.stream?.destroy();
    this.stream = null;
    this.iter = null;
  }
}

function checkRows(a: LazyNpyArray, start: number, count: number): void {
  const n = a.shape.length ? a.shape[0] : 1;
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > n)
    throw new Error(`${a.source}: rows [${start}, ${start + count}) out of range (array has ${n} rows)`);
}

/**
 * Opens one array for row-wise reading: a `.npy` file, or member `key` of a `.npz` file (`key`
 * may be omitted when the archive holds exactly one array). Fortran-order arrays are refused here
 * (use readNpy/readNpz, which reorder them).
 */
export function openNpyArray(file: string, key?: string): LazyNpyArray {
  const src = fileSource(file);
  try {
    if (!file.toLowerCase().endsWith('.npz')) {
      const header = parseNpyHeader(src.read(0, 1 << 16), file);
      if (header.fortranOrder) throw new Error(`${file}: Fortran-order array cannot be read row-wise (re-save with np.ascontiguousarray)`);
      const need = header.dataOffset + numel(header.shape) * ITEM_BYTES[header.dtype];
      if (src.size < need) throw new Error(`${file}: truncated .npy data (needs ${need} bytes, file has ${src.size})`);
      return new StoredArray(file, src, header, header.dataOffset);
    }
    const entries = readCentralDirectory(src).filter((e) => !e.name.endsWith('/'));
    let entry: ZipEntry | undefined;
    if (key === undefined) {
      if (entries.length !== 1)
        throw new Error(`${file}: holds ${entries.length} arrays (${entries.map((e) => arrayName(e.name)).join(', ')}); name the one to use`);
      entry = entries[0];
    } else {
      entry = entries.find((e) => arrayName(e.name) === key);
      if (!entry) throw new Error(`${file}: no array '${key}' (has: ${entries.map((e) => arrayName(e.name)).join(', ')})`);
    }
    const label = `${file}:${entry.name}`;
    const header = headerOfMember(src, entry);
    if (header.fortranOrder) throw new Error(`${label}: Fortran-order array cannot be read row-wise`);
    const need = header.dataOffset + numel(header.shape) * ITEM_BYTES[header.dtype];
    if (entry.size < need) throw new Error(`${label}: member has ${entry.size} bytes, shape [${header.shape.join(', ')}] needs ${need}`);
    const start = dataStart(src, entry);
    if (entry.method === 0) return new StoredArray(label, src, header, start + header.dataOffset);
    src.close();
    return new DeflatedArray(label, file, header, start, entry.compressedSize);
  } catch (e) {
    try {
      src.close();
    } catch {
      // already closed
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// ZIP writing

function writeAll(fd: number, data: Uint8Array, position?: number): void {
  let done = 0;
  while (done < data.length) {
    done += fs.writeSync(fd, data, done, data.length - done, position === undefined ? null : position + done);
  }
}

function withAtomicFd(file: string, body: (fd: number) => void): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    body(fd);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

// DOS date 1980-01-01 00:00: a fixed timestamp keeps identical content byte-identical.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

interface WrittenEntry {
  name: Buffer;
  method: number;
  crc: number;
  csize: number;
  usize: number;
  offset: number;
}

function localHeader(name: Buffer, method: number, crc: number, csize: number, usize: number, zip64: boolean): Uint8Array {
  const extraLen = zip64 ? 20 : 0;
  const h = new Uint8Array(30 + name.length + extraLen);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, 0x04034b50, true);
  dv.setUint16(4, zip64 ? 45 : 20, true);
  dv.setUint16(6, 0x800, true); // utf-8 names
  dv.setUint16(8, method, true);
  dv.setUint16(10, DOS_TIME, true);
  dv.setUint16(12, DOS_DATE, true);
  dv.setUint32(14, crc, true);
  dv.setUint32(18, zip64 ? U32 : csize, true);
  dv.setUint32(22, zip64 ? U32 : usize, true);
  dv.setUint16(26, name.length, true);
  dv.setUint16(28, extraLen, true);
  h.set(name, 30);
  if (zip64) {
    const e = 30 + name.length;
    dv.setUint16(e, 0x0001, true);
    dv.setUint16(e + 2, 16, true);
    dv.setBigUint64(e + 4, BigInt(usize), true);
    dv.setBigUint64(e + 12, BigInt(csize), true);
  }
  return h;
}

function centralDirectory(entries: WrittenEntry[], cdOffset: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let cdSize = 0;
  for (const e of entries) {
    const big = [e.usize >= U32, e.csize >= U32, e.offset >= U32];
    const extraLen = big.some((b) => b) ? 4 + 8 * big.filter((b) => b).length : 0;
    const h = new Uint8Array(46 + e.name.length + extraLen);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, 0x02014b50, true);
    dv.setUint16(4, (3 << 8) | 45, true); // made by unix, spec 4.5
    dv.setUint16(6, extraLen ? 45 : 20, true);
    dv.setUint16(8, 0x800, true);
    dv.setUint16(10, e.method, true);
    dv.setUint16(12, DOS_TIME, true);
    dv.setUint16(14, DOS_DATE, true);
    dv.setUint32(16, e.crc, true);
    dv.setUint32(20, big[1] ? U32 : e.csize, true);
    dv.setUint32(24, big[0] ? U32 : e.usize, true);
    dv.setUint16(28, e.name.length, true);
    dv.setUint16(30, extraLen, true);
    dv.setUint32(38, (0o100644 << 16) >>> 0, true); // -rw-r--r--
    dv.setUint32(42, big[2] ? U32 : e.offset, true);
    h.set(e.name, 46);
    if (extraLen) {
      let q = 46 + e.name.length;
      dv.setUint16(q, 0x0001, true);
      dv.setUint16(q + 2, extraLen - 4, true);
      q += 4;
      for (const [i, v] of [e.usize, e.csize, e.offset].entries()) {
        if (!big[i]) continue;
        dv.setBigUint64(q, BigInt(v), true);
        q += 8;
      }
    }
    parts.push(h);
    cdSize += h.length;
  }
  const n = entries.length;
  const need64 = n >= 0xffff || cdOffset >= U32 || cdSize >= U32;
  const endLen = (need64 ? 56 + 20 : 0) + 22;
  const end = new Uint8Array(endLen);
  const dv = new DataView(end.buffer);
  let p = 0;
  if (need64) {
    dv.setUint32(0, 0x06064b50, true);
    dv.setBigUint64(4, 44n, true);
    dv.setUint16(12, (3 << 8) | 45, true);
    dv.setUint16(14, 45, true);
    dv.setBigUint64(24, BigInt(n), true);
    dv.setBigUint64(32, BigInt(n), true);
    dv.setBigUint64(40, BigInt(cdSize), true);
    dv.setBigUint64(48, BigInt(cdOffset), true);
    dv.setUint32(56, 0x07064b50, true);
    dv.setBigUint64(64, BigInt(cdOffset + cdSize), true);
    dv.setUint32(72, 1, true);
    p = 76;
  }
  dv.setUint32(p, 0x06054b50, true);
  dv.setUint16(p + 8, Math.min(n, 0xffff), true);
  dv.setUint16(p + 10, Math.min(n, 0xffff), true);
  dv.setUint32(p + 12, Math.min(cdSize, U32), true);
  dv.setUint32(p + 16, Math.min(cdOffset, U32), true);
  parts.push(end);
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const q of parts) {
    out.set(q, o);
    o += q.length;
  }
  return out;
}

function normaliseArrays(arrays: Map<string, NpyArrayInput> | Record<string, NpyArrayInput>): [string, NpyArrayInput][] {
  const list = arrays instanceof Map ? [...arrays.entries()] : Object.entries(arrays);
  for (const [name] of list) if (name.length === 0) throw new Error('npz: empty array name');
  return list;
}

/** Streams a .npz to `fd`, starting at offset 0. */
function writeNpzToFd(fd: number, list: [string, NpyArrayInput][], opts: NpzWriteOptions): void {
  const entries: WrittenEntry[] = [];
  let offset = 0;
  for (const [key, arr] of list) {
    const dtype = validateInput(arr, `npz array '${key}'`);
    const name = Buffer.from(`${key}.npy`, 'utf8');
    const head = npyHeaderBytes(dtype, arr.shape);
    const body = bytesOf(arr.data);
    const usize = head.length + body.length;
    if (opts.compress) {
      const all = new Uint8Array(usize);
      all.set(head, 0);
      all.set(body, head.length);
      const crc = crc32(all);
      const comp = zlib.deflateRawSync(all, { level: opts.level ?? 6 });
      const zip64 = usize >= U32 || comp.length >= U32;
      const lh = localHeader(name, 8, crc, comp.length, usize, zip64);
      writeAll(fd, lh);
      writeAll(fd, comp);
      entries.push({ name, method: 8, crc, csize: comp.length, usize, offset });
      offset += lh.length + comp.length;
    } else {
      const crc = crc32(body, crc32(head));
      const lh = localHeader(name, 0, crc, usize, usize, usize >= U32);
      writeAll(fd, lh);
      writeAll(fd, head);
      writeAll(fd, body);
      entries.push({ name, method: 0, crc, csize: usize, usize, offset });
      offset += lh.length + usize;
    }
  }
  writeAll(fd, centralDirectory(entries, offset));
}

export function encodeNpz(arrays: Map<string, NpyArrayInput> | Record<string, NpyArrayInput>, opts: NpzWriteOptions = {}): Uint8Array {
  const list = normaliseArrays(arrays);
  const chunks: Uint8Array[] = [];
  const entries: WrittenEntry[] = [];
  let offset = 0;
  for (const [key, arr] of list) {
    const npy = encodeNpy(arr);
    const name = Buffer.from(`${key}.npy`, 'utf8');
    const crc = crc32(npy);
    const data = opts.compress ? zlib.deflateRawSync(npy, { level: opts.level ?? 6 }) : npy;
    const lh = localHeader(name, opts.compress ? 8 : 0, crc, data.length, npy.length, npy.length >= U32 || data.length >= U32);
    chunks.push(lh, data);
    entries.push({ name, method: opts.compress ? 8 : 0, crc, csize: data.length, usize: npy.length, offset });
    offset += lh.length + data.length;
  }
  chunks.push(centralDirectory(entries, offset));
  const out = new Uint8Array(chunks.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/**
 * Writes a .npz archive atomically (np.savez layout: members `<name>.npy`). With
 * `{ compress: true }` members are deflated (np.savez_compressed).
 */
export function writeNpz(file: string, arrays: Map<string, NpyArrayInput> | Record<string, NpyArrayInput>, opts: NpzWriteOptions = {}): void {
  const list = normaliseArrays(arrays);
  withAtomicFd(file, (fd) => writeNpzToFd(fd, list, opts));
}

/**
 * Writes a stored (uncompressed) .npz whose arrays arrive in row blocks, so sample sets larger
 * than memory can be written: `beginArray('videos', 'uint8', [n, t, h, w, 3])`, then
 * `writeRows(block)` until all rows are written, `endArray()`, ..., `close()`. The file appears
 * (atomically renamed from a temp file) only on `close()`; `abort()` discards it.
 */
export class NpzStreamWriter {
  private readonly tmp: string;
  private fd: number | null;
  private offset = 0;
  private readonly entries: WrittenEntry[] = [];
  private cur: { name: Buffer; dtype: NpyDType; total: number; written: number; crc: number; headerAt: number; usize: number; zip64: boolean } | null = null;

  constructor(readonly file: string) {
    const dir = path.dirname(file);
    fs.mkdirSync(dir, { recursive: true });
    this.tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
    this.fd = fs.openSync(this.tmp, 'w');
  }

  private handle(): number {
    if (this.fd === null) throw new Error(`${this.file}: NpzStreamWriter already closed`);
    return this.fd;
  }

  beginArray(key: string, dtype: NpyDType, shape: number[]): void {
    const fd = this.handle();
    if (this.cur) throw new Error(`${this.file}: beginArray('${key}') before endArray() of the previous array`);
    checkShape(shape, `${this.file}:${key}`);
    const name = Buffer.from(`${key}.npy`, 'utf8');
    const head = npyHeaderBytes(dtype, shape);
    const total = numel(shape);
    const usize = head.length + total * ITEM_BYTES[dtype];
    const zip64 = usize >= U32;
    const lh = localHeader(name, 0, 0, usize, usize, zip64);
    writeAll(fd, lh);
    writeAll(fd, head);
    this.cur = { name, dtype, total, written: 0, crc: crc32(head), headerAt: this.offset, usize, zip64 };
    this.offset += lh.length + head.length;
  }

  /** Appends values (any number of whole or partial rows) of the current array. */
  writeRows(data: NpyData): void {
    const fd = this.handle();
    const c = this.cur;
    if (!c) throw new Error(`${this.file}: writeRows() outside beginArray()/endArray()`);
    if (dtypeOfData(data) !== c.dtype) throw new Error(`${this.file}: writeRows got ${dtypeOfData(data)} data for a ${c.dtype} array`);
    if (c.written + data.length > c.total) throw new Error(`${this.file}: more values written than the declared shape holds (${c.total})`);
    const b = bytesOf(data);
    writeAll(fd, b);
    c.crc = crc32(b, c.crc);
    c.written += data.length;
    this.offset += b.length;
  }

  endArray(): void {
    const fd = this.handle();
    const c = this.cur;
    if (!c) throw new Error(`${this.file}: endArray() without beginArray()`);
    if (c.written !== c.total) throw new Error(`${this.file}: array '${c.name.toString().slice(0, -4)}' got ${c.written} of ${c.total} values`);
    // Patch the CRC into the local header (offset 14).
    const crcBytes = new Uint8Array(4);
    new DataView(crcBytes.buffer).setUint32(0, c.crc, true);
    writeAll(fd, crcBytes, c.headerAt + 14);
    this.entries.push({ name: c.name, method: 0, crc: c.crc, csize: c.usize, usize: c.usize, offset: c.headerAt });
    this.cur = null;
  }

  /** Writes a whole array in one call. */
  addArray(key: string, arr: NpyArrayInput): void {
    const dtype = validateInput(arr, `${this.file}:${key}`);
    this.beginArray(key, dtype, arr.shape);
    this.writeRows(arr.data);
    this.endArray();
  }

  close(): void {
    const fd = this.handle();
    if (this.cur) throw new Error(`${this.file}: close() with array '${this.cur.name.toString().slice(0, -4)}' unfinished`);
    writeAll(fd, centralDirectory(this.entries, this.offset), this.offset);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    this.fd = null;
    fs.renameSync(this.tmp, this.file);
  }

  abort(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Converts int64 (BigInt64Array) data to numbers, checking they are exactly representable. */
export function int64ToNumbers(data: BigInt64Array, source = 'npy'): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (!Number.isSafeInteger(v)) throw new Error(`${source}: int64 value ${data[i]} is not exactly representable as a number`);
    out[i] = v;
  }
  return out;
}
