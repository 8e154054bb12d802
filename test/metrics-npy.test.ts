import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  NpzStreamWriter,
  crc32,
  decodeNpy,
  decodeNpz,
  encodeNpy,
  encodeNpz,
  listNpz,
  openNpyArray,
  readNpy,
  readNpz,
  writeNpy,
  writeNpz,
} from '../lib/io/npy';
import { FIXTURES } from './metrics-helpers';

const NPY = path.join(FIXTURES, 'npy');

interface Expected {
  f32: number[];
  f32_shape: number[];
  f64: number[];
  f64_shape: number[];
  u8: number[];
  u8_shape: number[];
  i32: number[];
  i64: string[];
}

const expected = (): Expected => JSON.parse(fs.readFileSync(path.join(NPY, 'expected.json'), 'utf8')) as Expected;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-npy-'));
}

test('reads .npy files written by numpy (float32, float64, uint8 5-D, int32, int64, Fortran order, big-endian, scalar)', () => {
  const e = expected();
  const f32 = readNpy(path.join(NPY, 'f32.npy'));
  assert.equal(f32.dtype, 'float32');
  assert.deepEqual(f32.shape, e.f32_shape);
  assert.deepEqual(Array.from(f32.data as Float32Array), e.f32);
  const f64 = readNpy(path.join(NPY, 'f64.npy'));
  assert.equal(f64.dtype, 'float64');
  assert.deepEqual(Array.from(f64.data as Float64Array), e.f64);
  const u8 = readNpy(path.join(NPY, 'u8_video.npy'));
  assert.deepEqual(u8.shape, e.u8_shape);
  assert.deepEqual(Array.from(u8.data as Uint8Array), e.u8);
  assert.deepEqual(Array.from(readNpy(path.join(NPY, 'i32.npy')).data as Int32Array), e.i32);
  const i64 = readNpy(path.join(NPY, 'i64.npy'));
  assert.equal(i64.dtype, 'int64');
  assert.deepEqual(Array.from(i64.data as BigInt64Array, String), e.i64);
  // Fortran order and big-endian arrays come back in C order with native values.
  assert.deepEqual(Array.from(readNpy(path.join(NPY, 'f64_fortran.npy')).data as Float64Array), e.f64);
  assert.deepEqual(Array.from(readNpy(path.join(NPY, 'f64_bigendian.npy')).data as Float64Array), e.f64);
  const sc = readNpy(path.join(NPY, 'scalar.npy'));
  assert.deepEqual(sc.shape, []);
  assert.deepEqual(Array.from(sc.data as Float64Array), [2.5]);
});

test('reads numpy .npz archives, stored (np.savez, ZIP64 local headers) and deflated (np.savez_compressed)', () => {
  const e = expected();
  const stored = readNpz(path.join(NPY, 'stored.npz'));
  assert.deepEqual([...stored.keys()].sort(), ['features', 'labels', 'videos']);
  assert.deepEqual(Array.from(stored.get('features')!.data as Float32Array), e.f32);
  assert.deepEqual(Array.from(stored.get('videos')!.data as Uint8Array), e.u8);
  assert.deepEqual(Array.from(stored.get('labels')!.data as BigInt64Array, String), e.i64);
  const comp = readNpz(path.join(NPY, 'compressed.npz'));
  assert.deepEqual(Array.from(comp.get('features')!.data as Float64Array), e.f64);
  assert.deepEqual(Array.from(comp.get('videos')!.data as Uint8Array), e.u8);
  assert.deepEqual(Array.from(comp.get('ints')!.data as Int32Array), e.i32);
  const heads = listNpz(path.join(NPY, 'compressed.npz'));
  assert.deepEqual(heads.get('videos')!.shape, e.u8_shape);
  assert.equal(heads.get('features')!.dtype, 'float64');
});

test('npy/npz round-trips every dtype, in memory and on disk, stored and deflated', () => {
  const arrays = new Map([
    ['a/f32', { shape: [2, 3], data: Float32Array.from([1.5, -2, 3e-8, Infinity, -0, 7]) }],
    ['f64', { shape: [3], data: Float64Array.from([Math.PI, -1e300, 5e-324]) }],
    ['u8', { shape: [1, 2, 2, 2, 3], data: Uint8Array.from({ length: 24 }, (_, i) => (i * 37) % 256) }],
    ['i32', { shape: [2, 2], data: Int32Array.from([-2147483648, 2147483647, 0, -1]) }],
    ['i64', { shape: [2], data: BigInt64Array.from([-(2n ** 62n), 12345678901234n]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const dir = tmpDir();
  for (const compress of [false, true]) {
    const back = decodeNpz(encodeNpz(arrays, { compress }));
    const file = path.join(dir, `rt-${compress}.npz`);
    writeNpz(file, arrays, { compress });
    const fromDisk = readNpz(file);
    for (const got of [back, fromDisk]) {
      for (const [k, v] of arrays) {
        assert.deepEqual(got.get(k)!.shape, v.shape, k);
        assert.deepEqual(Array.from(got.get(k)!.data as ArrayLike<unknown>), Array.from(v.data as ArrayLike<unknown>), k);
      }
    }
  }
  const one = { shape: [2, 2], data: Float64Array.from([1, 2, 3, 4]) };
  assert.deepEqual(Array.from(decodeNpy(encodeNpy(one)).data as Float64Array), [1, 2, 3, 4]);
  writeNpy(path.join(dir, 'x.npy'), one);
  assert.deepEqual(readNpy(path.join(dir, 'x.npy')).shape, [2, 2]);
  // Headers are padded so the data starts 64-byte aligned (numpy >= 1.14 convention).
  const bytes = encodeNpy(one);
  assert.equal((bytes.length - 32) % 64, 0);
  fs.rmSync(dir, { recursive: true });
});

test('writing the same arrays twice gives identical bytes (fixed timestamps)', () => {
  const a = new Map([['x', { shape: [3], data: Float32Array.from([1, 2, 3]) }]]);
  assert.deepEqual(encodeNpz(a), encodeNpz(a));
  assert.deepEqual(encodeNpz(a, { compress: true }), encodeNpz(a, { compress: true }));
});

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('NpzStreamWriter writes arrays row block by row block; openNpyArray reads rows back from stored and deflated members', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'videos.npz');
  const n = 5;
  const per = 3 * 4 * 4 * 3;
  const all = Uint8Array.from({ length: n * per }, (_, i) => (i * 13 + 7) % 251);
  const w = new NpzStreamWriter(file);
  w.beginArray('videos', 'uint8', [n, 3, 4, 4, 3]);
  w.writeRows(all.subarray(0, 2 * per));
  w.writeRows(all.subarray(2 * per));
  w.endArray();
  w.addArray('labels', { shape: [n], data: Int32Array.from([0, 1, 2, 3, 4]) });
  assert.equal(fs.existsSync(file), false, 'file appears only on close()');
  w.close();
  const back = readNpz(file);
  assert.deepEqual(Array.from(back.get('videos')!.data as Uint8Array), Array.from(all));
  assert.deepEqual(Array.from(back.get('labels')!.data as Int32Array), [0, 1, 2, 3, 4]);
  const lazy = openNpyArray(file, 'videos');
  assert.deepEqual(lazy.shape, [n, 3, 4, 4, 3]);
  assert.deepEqual(Array.from((await lazy.readRows(3, 2)) as Uint8Array), Array.from(all.subarray(3 * per, 5 * per)));
  assert.deepEqual(Array.from((await lazy.readRows(1, 1)) as Uint8Array), Array.from(all.subarray(per, 2 * per)));
  lazy.close();
  const zfile = path.join(dir, 'videos-z.npz');
  writeNpz(zfile, new Map([['videos', { shape: [n, 3, 4, 4, 3], data: all }]]), { compress: true });
  const lz = openNpyArray(zfile);
  for (const [s, c] of [[4, 1], [0, 2], [2, 3], [1, 1]] as const)
    assert.deepEqual(Array.from((await lz.readRows(s, c)) as Uint8Array), Array.from(all.subarray(s * per, (s + c) * per)), `rows ${s}+${c}`);
  await assert.rejects(() => lz.readRows(4, 2), /rows \[4, 6\) out of range/);
  lz.close();
  const npyFile = path.join(dir, 'v.npy');
  writeNpy(npyFile, { shape: [n, 3, 4, 4, 3], data: all });
  const ln = openNpyArray(npyFile);
  assert.deepEqual(Array.from((await ln.readRows(2, 1)) as Uint8Array), Array.from(all.subarray(2 * per, 3 * per)));
  ln.close();
  const bad = new NpzStreamWriter(path.join(dir, 'bad.npz'));
  bad.beginArray('x', 'float32', [2, 2]);
  assert.throws(() => bad.writeRows(new Float64Array(4)), /float64 data for a float32 array/);
  bad.writeRows(new Float32Array(2));
  assert.throws(() => bad.endArray(), /got 2 of 4 values/);
  bad.abort();
  assert.equal(fs.existsSync(path.join(dir, 'bad.npz')), false);
  fs.rmSync(dir, { recursive: true });
});

test('malformed, truncated and corrupt files are clear errors naming the file', () => {
  const dir = tmpDir();
  const notNpy = path.join(dir, 'not.npy');
  fs.writeFileSync(notNpy, 'hello world, not numpy');
  assert.throws(() => readNpy(notNpy), /not\.npy: not a \.npy file/);
  const good = encodeNpy({ shape: [10], data: new Float64Array(10) });
  const trunc = path.join(dir, 'trunc.npy');
  fs.writeFileSync(trunc, good.subarray(0, good.length - 8));
  assert.throws(() => readNpy(trunc), /trunc\.npy: truncated \.npy data/);
  const weird = new Uint8Array(good);
  const hdr = Buffer.from(weird.subarray(10, 80)).toString('latin1');
  weird.set(Buffer.from(hdr.replace("'<f8'", "'<c8'"), 'latin1'), 10);
  assert.throws(() => decodeNpy(weird, 'w.npy'), /w\.npy: unsupported dtype '<c8'/);
  const z = encodeNpz(new Map([['x', { shape: [64], data: new Float64Array(64).fill(1) }]]));
  const corrupt = new Uint8Array(z);
  corrupt[200] ^= 0xff; // inside the stored data
  assert.throws(() => decodeNpz(corrupt, 'c.npz'), /c\.npz: member 'x\.npy' fails its CRC-32 check/);
  assert.throws(() => decodeNpz(z.subarray(0, z.length - 30), 't.npz'), /t\.npz: not a valid \.npz/);
  assert.throws(() => readNpz(path.join(dir, 'missing.npz')), /missing\.npz: file not found/);
  assert.throws(() => encodeNpy({ shape: [3], data: new Float32Array(4) }), /4 values do not match shape \[3\]/);
  assert.throws(() => openNpyArray(path.join(NPY, 'stored.npz')), /holds 3 arrays \(.*\); name the one to use/);
  assert.throws(() => openNpyArray(path.join(NPY, 'stored.npz'), 'nope'), /no array 'nope'/);
  fs.rmSync(dir, { recursive: true });
});
