/**
 * Minimal ZIP archive reader/writer for PyTorch's serialization format (PKWARE APPNOTE 6.3:
 * local headers, central directory, end-of-central-directory record; ZIP64 extra fields when a
 * size or offset does not fit 32 bits). PyTorch (`torch.save`, zipfile format since 1.6) stores
 * entries uncompressed and pads each local header's extra field so the data starts 64-byte
 * aligned; the reader also inflates deflated entries (node:zlib). No encryption, no spanning.
 */
import * as zlib from 'node:zlib';
import { crc32 } from '../io/npy';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the local file header. */
  headerOffset: number;
}

/** Reads the central directory of a ZIP archive held in memory. */
export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dv: DataView;

  constructor(readonly buf: Uint8Array, readonly source = '<buffer>') {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const eocd = this.findEocd();
    let count = this.dv.getUint16(eocd + 10, true);
    let cdOffset = this.dv.getUint32(eocd + 16, true);
    if (cdOffset === 0xffffffff || count === 0xffff) {
      // ZIP64: the locator sits right before the EOCD record.
      const loc = eocd - 20;
      if (loc < 0 || this.dv.getUint32(loc, true) !== 0x07064b50) throw new Error(`${source}: ZIP64 end-of-central-directory locator missing`);
      const z64 = this.u64(loc + 8);
      if (this.dv.getUint32(z64, true) !== 0x06064b50) throw new Error(`${source}: ZIP64 end-of-central-directory record missing`);
      count = this.u64(z64 + 32);
      cdOffset = this.u64(z64 + 48);
    }
    let p = cdOffset;
    for (let i = 0; i < count; i++) {
      if (p + 46 > buf.length || this.dv.getUint32(p, true) !== 0x02014b50) throw new Error(`${source}: corrupt ZIP central directory (entry ${i})`);
      const method = this.dv.getUint16(p + 10, true);
      const crc = this.dv.getUint32(p + 16, true);
      let compressedSize = this.dv.getUint32(p + 20, true);
      let size = this.dv.getUint32(p + 24, true);
      const nameLen = this.dv.getUint16(p + 28, true);
      const extraLen = this.dv.getUint16(p + 30, true);
      const commentLen = this.dv.getUint16(p + 32, true);
      let headerOffset = this.dv.getUint32(p + 42, true);
      const name = Buffer.from(buf.subarray(p + 46, p + 46 + nameLen)).toString('utf8');
      // ZIP64 extended information: only the fields that are 0xffffffff in the record, in order.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = this.dv.getUint16(e, true);
        const len = this.dv.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          if (size === 0xffffffff) (size = this.u64(q)), (q += 8);
          if (compressedSize === 0xffffffff) (compressedSize = this.u64(q)), (q += 8);
          if (headerOffset === 0xffffffff) headerOffset = this.u64(q);
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, crc32: crc, headerOffset });
      p = eEnd + commentLen;
    }
  }

  private u64(off: number): number {
    const v = this.dv.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${this.source}: ZIP64 value too large`);
    return Number(v);
  }

  private findEocd(): number {
    const min = Math.max(0, this.buf.length - 22 - 0xffff);
    for (let i = this.buf.length - 22; i >= min; i--) if (this.dv.getUint32(i, true) === 0x06054b50) return i;
    throw new Error(`${this.source}: not a ZIP archive (no end-of-central-directory record)`);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The entry's bytes (a view for stored entries; inflated otherwise). CRC-checked. */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.source}: no entry '${name}' in the archive`);
    const h = e.headerOffset;
    if (this.dv.getUint32(h, true) !== 0x04034b50) throw new Error(`${this.source}: corrupt local header for '${name}'`);
    const start = h + 30 + this.dv.getUint16(h + 26, true) + this.dv.getUint16(h + 28, true);
    if (start + e.compressedSize > this.buf.length) throw new Error(`${this.source}: entry '${name}' runs past the end of the file`);
    const raw = this.buf.subarray(start, start + e.compressedSize);
    let data: Uint8Array;
    if (e.method === 0) data = raw;
    else if (e.method === 8) data = new Uint8Array(zlib.inflateRawSync(raw));
    else throw new Error(`${this.source}: entry '${name}' uses unsupported compression method ${e.method}`);
    if (data.length !== e.size) throw new Error(`${this.source}: entry '${name}' has ${data.length} bytes, expected ${e.size}`);
    if (crc32(data) !== e.crc32) throw new Error(`${this.source}: CRC mismatch in entry '${name}'`);
    return data;
  }
}

/**
 * Writes a stored (uncompressed) ZIP archive whose entry data start at multiples of `align`
 * (PyTorch's writer uses 64; the padding goes into the local header's extra field, id 0x4246 "FB").
 * No ZIP64: total size must stay below 4 GiB.
 */
export function writeZip(entries: { name: string; data: Uint8Array }[], align = 64): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const base = offset + 30 + nameBytes.length;
    const pad = (align - ((base + 4) % align)) % align;
    const extraLen = 4 + pad;
    const local = new Uint8Array(30 + nameBytes.length + extraLen);
    const dv = new DataView(local.buffer);
    const crc = crc32(data);
    dv.setUint32(0, 0x04034b50, true);
    dv.setUint16(4, 20, true); // version needed
    dv.setUint16(6, 0, true); // flags
    dv.setUint16(8, 0, true); // stored
    dv.setUint16(10, 0, true); // time
    dv.setUint16(12, 0x21, true); // date 1980-01-01
    dv.setUint32(14, crc, true);
    dv.setUint32(18, data.length, true);
    dv.setUint32(22, data.length, true);
    dv.setUint16(26, nameBytes.length, true);
    dv.setUint16(28, extraLen, true);
    local.set(nameBytes, 30);
    dv.setUint16(30 + nameBytes.length, 0x4246, true);
    dv.setUint16(32 + nameBytes.length, pad, true);
    const cd = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(12, 0, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(42, offset, true);
    cd.set(nameBytes, 46);
    central.push(cd);
    parts.push(local, data);
    offset += local.length + data.length;
    if (offset > 0xffffffff) throw new Error('writeZip: archive larger than 4 GiB (ZIP64 not supported by this writer)');
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const part of [...parts, ...central, eocd]) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}
