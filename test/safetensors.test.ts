// lib/io/safetensors.ts: round trips, the byte format checked by an independent numpy reader
// (test/python/safetensors_ref.py) in both directions, and errors on malformed files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { decodeSafetensors, encodeSafetensors, floatToHalf, halfToFloat, loadSafetensors, saveSafetensors, toHalfArray, type TensorToWrite, TypedArray } from '../lib/io/safetensors';
import { Rng } from '../lib/nn/rng';
import { INT4_CONVENTION, INT4_GROUP, INT4_METADATA, dequantizeInt4, quantizeInt4 } from '../lib/io/int4';
import { INT8_CONVENTION, INT8_METADATA, dequantizeInt8, quantizableInt8, quantizeInt8 } from '../lib/io/int8';

const SCRIPT = path.join(__dirname, 'python', 'safetensors_ref.py');
let dir = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-safetensors-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the reference script; a missing python3 or numpy fails the test with a clear message. */
function python(args: string[]): string {
  const r = spawnSync('python3', [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    assert.fail(
      code === 'ENOENT'
        ? 'python3 was not found on PATH: this test needs python3 with numpy to check the safetensors byte format independently'
        : `could not run python3: ${r.error.message}`,
    );
  }
  if (r.status !== 0) {
    const hint = /No module named 'numpy'/.test(r.stderr) ? ' (numpy is required: install python3-numpy)' : '';
    assert.fail(`python3 ${path.basename(SCRIPT)} ${args.join(' ')} exited with ${r.status}${hint}:\n${r.stderr}`);
  }
  return r.stdout;
}

function sample(): Map<string, { shape: number[]; data: TypedArray }> {
  const rng = new Rng(1);
  const big = new Float32Array(40);
  big.set(rng.normalArray(40));
  const view = big.subarray(3, 3 + 12); // a view with a non-zero byteOffset
  return new Map<string, { shape: number[]; data: TypedArray }>([
    ['encoder.conv.weight', { shape: [2, 3, 4], data: rng.normalArray(24) }],
    ['encoder.conv.bias', { shape: [3], data: Float32Array.from([1.5, -0, 3e-38]) }],
    ['view', { shape: [3, 4], data: view }],
    ['double', { shape: [2, 2], data: Float64Array.from([Math.PI, -1e300, 5e-324, 0.1]) }],
    ['ints', { shape: [5], data: Int32Array.from([-2147483648, -1, 0, 1, 2147483647]) }],
    ['bytes', { shape: [2, 3], data: Uint8Array.from([0, 1, 127, 128, 254, 255]) }],
    ['scalar', { shape: [], data: Float32Array.from([7.25]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

const META = { format: 'pt', 'lvdm.note': 'unicode ✓ "quoted" \\ back', empty: '' };

test('encode/decode and save/load round trip F32/F64/I32/U8 tensors and metadata exactly', () => {
  const t = sample();
  const file = path.join(dir, 'roundtrip.safetensors');
  saveSafetensors(file, t, META);
  for (const got of [loadSafetensors(file), decodeSafetensors(encodeSafetensors(t, META))]) {
    assert.deepEqual(got.metadata, META);
    assert.deepEqual([...got.tensors.keys()].sort(), [...t.keys()].sort());
    for (const [name, want] of t) {
      const g = got.tensors.get(name)!;
      assert.deepEqual(g.shape, want.shape, name);
      assert.equal(g.data.constructor, want.data.constructor, `${name} array type`);
      assert.deepEqual(Array.from(g.data), Array.from(want.data), name);
    }
    assert.equal(got.tensors.get('double')!.dtype, 'F64');
    assert.equal(got.tensors.get('ints')!.dtype, 'I32');
    assert.equal(got.tensors.get('bytes')!.dtype, 'U8');
  }
  // No metadata -> empty record, and no __metadata__ key in the header.
  const bare = encodeSafetensors(new Map([['x', { shape: [1], data: Float32Array.from([1]) }]]));
  assert.deepEqual(decodeSafetensors(bare).metadata, {});
  const n = Number(new DataView(bare.buffer, bare.byteOffset).getBigUint64(0, true));
  assert.ok(!Buffer.from(bare.subarray(8, 8 + n)).toString('utf8').includes('__metadata__'));
  // Data starts 8-byte aligned (header padded with spaces).
  assert.equal((8 + n) % 8, 0);
  // Saving leaves no temp file behind.
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), []);
});

test('a wrong value count for the shape is refused, naming the tensor', () => {
  assert.throws(() => encodeSafetensors(new Map([['bad.t', { shape: [2, 3], data: new Float32Array(5) }]])), /bad\.t/);
});

test('a file we write is valid per an independent numpy reader, with identical values', () => {
  const t = sample();
  const file = path.join(dir, 'for-python.safetensors');
  saveSafetensors(file, t, META);
  const out = JSON.parse(python(['read', file])) as {
    metadata: Record<string, string>;
    tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
    header_size: number;
  };
  assert.deepEqual(out.metadata, META);
  const dtypes: Record<string, string> = { 'encoder.conv.weight': 'F32', 'encoder.conv.bias': 'F32', view: 'F32', double: 'F64', ints: 'I32', bytes: 'U8', scalar: 'F32', empty: 'F32' };
  assert.deepEqual(Object.keys(out.tensors).sort(), [...t.keys()].sort());
  for (const [name, want] of t) {
    const got = out.tensors[name];
    assert.equal(got.dtype, dtypes[name], name);
    assert.deepEqual(got.shape, want.shape, name);
    // numpy widened float32 to float64 exactly; compare as doubles.
    assert.deepEqual(got.values, Array.from(want.data), name);
  }
});

test('a file numpy writes per the spec (F16, BF16, I64, unsorted, unpadded) reads back exactly', () => {
  const file = path.join(dir, 'from-python.safetensors');
  const expected = JSON.parse(python(['write', file])) as Record<string, number[]>;
  const got = loadSafetensors(file);
  assert.deepEqual(got.metadata, { format: 'pt', note: 'written by numpy' });
  const shapes: Record<string, number[]> = { 'z.half': [2, 3], 'a.long': [2, 3], 'm.float': [2, 3, 2], 'b.double': [5], int: [4], bytes: [6], brain: [4], scalar: [], empty: [0, 3] };
  // F16/BF16 are widened to F32, I64 narrowed to I32 (values in range).
  const dtypes: Record<string, string> = { 'z.half': 'F32', 'a.long': 'I32', 'm.float': 'F32', 'b.double': 'F64', int: 'I32', bytes: 'U8', brain: 'F32', scalar: 'F32', empty: 'F32' };
  assert.deepEqual([...got.tensors.keys()].sort(), Object.keys(expected).sort());
  for (const [name, values] of Object.entries(expected)) {
    const t = got.tensors.get(name)!;
    assert.deepEqual(t.shape, shapes[name], name);
    assert.equal(t.dtype, dtypes[name], name);
    assert.deepEqual(Array.from(t.data), values, name);
  }
  // An int64 outside the int32 range is refused, naming the file and the tensor.
  const big = path.join(dir, 'i64big.safetensors');
  python(['write-i64big', big]);
  assert.throws(
    () => loadSafetensors(big),
    (e: Error) => e.message.includes(big) && e.message.includes("'big'") && /int32/.test(e.message),
  );
});

/** A valid file's bytes with a custom header and data. */
function craft(header: unknown, data: Uint8Array, headerLen?: number): Uint8Array {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('malformed files raise errors naming the file', () => {
  const good = encodeSafetensors(sample(), META);
  const f32 = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
  const ok = { x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } };
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /shorter than 8 bytes/],
    ['truncated-header', good.subarray(0, 40), /header length/],
    ['truncated-data', good.subarray(0, good.length - 5), /does not fit/],
    ['huge-header-length', craft(ok, f32, 1e9), /header length/],
    ['zero-header-length', craft(ok, f32, 0), /header length/],
    ['bad-json', craft('{"x": {"dtype": "F32", ', f32), /not valid JSON/],
    ['json-array', craft([1, 2], f32), /not a JSON object/],
    ['json-null', craft('null', f32), /not a JSON object/],
    ['offsets-past-end', craft({ x: { dtype: 'F32', shape: [4], data_offsets: [4, 20] } }, f32), /'x'.*does not fit/],
    ['offsets-wrong-size', craft({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, f32), /'x'.*does not fit/],
    ['offsets-negative', craft({ x: { dtype: 'F32', shape: [4], data_offsets: [-8, 8] } }, f32), /'x'.*malformed/],
    ['offsets-reversed', craft({ x: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, f32), /'x'/],
    ['offsets-fractional', craft({ x: { dtype: 'F32', shape: [1], data_offsets: [0.5, 4.5] } }, f32), /'x'.*malformed/],
    ['unknown-dtype', craft({ x: { dtype: 'F8', shape: [4], data_offsets: [0, 16] } }, f32), /'x'.*malformed/],
    ['prototype-dtype', craft({ x: { dtype: 'constructor', shape: [4], data_offsets: [0, 16] } }, f32), /'x'.*malformed/],
    ['negative-shape', craft({ x: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, f32), /'x'.*malformed/],
    ['missing-offsets', craft({ x: { dtype: 'F32', shape: [4] } }, f32), /'x'.*malformed/],
    ['entry-not-object', craft({ x: 3 }, f32), /'x'.*malformed/],
    ['metadata-not-strings', craft({ __metadata__: { a: 1 }, ...ok }, f32), /__metadata__/],
  ];
  for (const [name, bytes, re] of cases) {
    const file = path.join(dir, `${name}.safetensors`);
    fs.writeFileSync(file, bytes);
    assert.throws(
      () => loadSafetensors(file),
      (e: Error) => {
        assert.ok(e.message.includes(file), `${name}: message does not name the file: ${e.message}`);
        assert.match(e.message, re, `${name}: ${e.message}`);
        return true;
      },
      name,
    );
  }
  const missing = path.join(dir, 'nope.safetensors');
  assert.throws(() => loadSafetensors(missing), (e: Error) => e.message.includes(missing) && /not found/.test(e.message));
});

test("floatToHalf rounds float32 to binary16 exactly as numpy's float16 cast (nearest, ties to even)", () => {
  const rng = new Rng(7);
  const values: number[] = [0, -0, 1, -1, 65504, -65504, 65519.99, 65520, 1e9, -1e9, Infinity, -Infinity, 2 ** -14, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, 3e-38, 5.96e-8, 6.1e-5, 0.1, 1 / 3];
  // Exact ties between two halves (odd and even mantissas) and their float32 neighbours.
  for (let h = 0x0001; h < 0x7bff; h += 997) {
    const mid = (halfToFloat(h) + halfToFloat(h + 1)) / 2;
    values.push(mid, Math.fround(mid * (1 + 2 ** -22)), Math.fround(mid * (1 - 2 ** -22)), -mid);
  }
  for (const scale of [1e-6, 1e-3, 1, 100, 3e4]) for (let i = 0; i < 2000; i++) values.push(rng.normal() * scale);
  const x = Float32Array.from(values);
  const file = path.join(dir, 'half-input.f32');
  fs.writeFileSync(file, Buffer.from(x.buffer));
  const expected = JSON.parse(python(['half', file])) as number[];
  const got = Array.from(x, (v) => floatToHalf(v));
  const bad = got.map((h, i) => (h === expected[i] ? -1 : i)).filter((i) => i >= 0);
  assert.deepEqual(bad.slice(0, 5).map((i) => [x[i], got[i].toString(16), expected[i].toString(16)]), []);
  // Every half survives half -> float -> half (NaNs aside).
  for (let h = 0; h < 0x10000; h++) if (!Number.isNaN(halfToFloat(h))) assert.equal(floatToHalf(halfToFloat(h)), h);
  assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
});

test('F16 tensors write as safetensors F16 (read back by numpy) and load widened to float32', () => {
  const w = Float32Array.from([0.1, -2.5, 3e-6, 1000.7, 0]);
  const file = path.join(dir, 'half.safetensors');
  saveSafetensors(file, new Map([['w', { shape: [5], data: toHalfArray(w, 'w'), dtype: 'F16' as const }]]), { precision: 'fp16' });
  const ref = JSON.parse(python(['read', file])) as { tensors: Record<string, { dtype: string; values: number[] }> };
  assert.equal(ref.tensors.w.dtype, 'F16');
  const back = loadSafetensors(file).tensors.get('w')!;
  assert.equal(back.dtype, 'F32');
  assert.deepEqual(Array.from(back.data), ref.tensors.w.values);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(back.data[i] - w[i]) <= Math.abs(w[i]) * 2 ** -11 + 2 ** -25, `${w[i]} -> ${back.data[i]}`);
  assert.throws(() => toHalfArray(Float32Array.from([1, 7e4]), 'unet.out.weight'), /unet\.out\.weight: value 70000 at index 1 is beyond the float16 range/);
});

test('int8 kernels: per-output-channel scales bound the error by half a step, and load back widened (numpy reads the same bytes)', () => {
  const rng = new Rng(3);
  const shape = [3, 3, 8, 16]; // a conv kernel [kh, kw, in, out]
  const w = rng.normalArray(3 * 3 * 8 * 16);
  for (let i = 5; i < w.length; i += 16) w[i] = 0; // output channel 5 all zero
  for (let i = 7; i < w.length; i += 16) w[i] *= 100; // channel 7 a hundred times larger
  const { q, scale } = quantizeInt8(w, shape, 'k');
  for (let c = 0; c < 16; c++) {
    let max = 0;
    for (let i = c; i < w.length; i += 16) max = Math.max(max, Math.abs(w[i]));
    assert.equal(scale[c], Math.fround(max / 127), `scale[${c}]`);
  }
  assert.equal(scale[5], 0);
  let extremes = 0;
  for (let i = 0; i < w.length; i++) {
    const s = scale[i % 16];
    assert.ok(q[i] >= -127 && q[i] <= 127);
    assert.ok(Math.abs(q[i] * s - w[i]) <= s / 2 + 1e-7 * Math.abs(w[i]), `w[${i}] ${w[i]} -> ${q[i]} x ${s}`);
    if (Math.abs(q[i]) === 127) extremes++;
  }
  assert.ok(extremes >= 15, 'each non-zero channel reaches +-127 at its largest value');

  const file = path.join(dir, 'int8.safetensors');
  const bias = Float32Array.from([0.5, -1]);
  saveSafetensors(
    file,
    new Map<string, TensorToWrite>([
      ['conv.weight', { shape, data: q, dtype: 'I8' }],
      ['conv.weight.int8_scale', { shape: [16], data: scale }],
      ['conv.bias', { shape: [2], data: bias }],
    ]),
    { [INT8_METADATA]: INT8_CONVENTION },
  );
  const ref = JSON.parse(python(['read', file])) as { tensors: Record<string, { dtype: string; values: number[] }> };
  assert.equal(ref.tensors['conv.weight'].dtype, 'I8');
  assert.deepEqual(ref.tensors['conv.weight'].values, Array.from(q));
  const back = loadSafetensors(file);
  assert.deepEqual([...back.tensors.keys()].sort(), ['conv.bias', 'conv.weight']);
  const k = back.tensors.get('conv.weight')!;
  assert.equal(k.dtype, 'F32');
  assert.deepEqual(k.shape, shape);
  const sc = ref.tensors['conv.weight.int8_scale'].values;
  assert.deepEqual(Array.from(k.data), ref.tensors['conv.weight'].values.map((v, i) => Math.fround(v * sc[i % 16])));
  assert.deepEqual(Array.from(back.tensors.get('conv.bias')!.data), Array.from(bias));

  // Without the convention's metadata, int8 is just int8 (widened to int32) and scales stay tensors.
  const plain = decodeSafetensors(encodeSafetensors(new Map([['q', { shape: [3], data: Int8Array.from([-128, 0, 127]), dtype: 'I8' as const }]])));
  assert.equal(plain.tensors.get('q')!.dtype, 'I32');
  assert.deepEqual(Array.from(plain.tensors.get('q')!.data), [-128, 0, 127]);
  // A quantised tensor without its scale, or a scale without its tensor, is an error naming it.
  const noScale = encodeSafetensors(new Map([['conv.weight', { shape, data: q, dtype: 'I8' as const }]]), { [INT8_METADATA]: INT8_CONVENTION });
  assert.throws(() => decodeSafetensors(noScale, 'm.safetensors'), /m\.safetensors: int8 tensor 'conv\.weight' \[3,3,8,16\] needs a float scale tensor 'conv\.weight\.int8_scale' of shape \[16\]/);
  const orphan = encodeSafetensors(new Map([['x.int8_scale', { shape: [2], data: bias }]]), { [INT8_METADATA]: INT8_CONVENTION });
  assert.throws(() => decodeSafetensors(orphan, 'm.safetensors'), /scale tensor 'x\.int8_scale' has no int8 tensor 'x'/);
  assert.deepEqual(Array.from(dequantizeInt8(Int8Array.from([2, -3]), Float32Array.from([0.5]), 't')), [1, -1.5]);
  assert.equal(quantizableInt8([1024]), false, 'vectors stay float');
  assert.equal(quantizableInt8([4, 8]), false, 'small kernels stay float');
  assert.equal(quantizableInt8([32, 32]), true);
  // Kernels facing the data (<= 8 input or output channels: a UNet's first and last convolutions,
  // an autoencoder's pixel and latent ones) stay float, however large.
  assert.equal(quantizableInt8([3, 3, 5, 32]), false, 'latents + mask in');
  assert.equal(quantizableInt8([3, 3, 32, 4]), false, 'v out');
  assert.equal(quantizableInt8([3, 3, 3, 64, 8]), false, 'an encoder onto 2 x 4 latent channels');
  assert.equal(quantizableInt8([3, 3, 3, 9, 64]), true);
  assert.equal(quantizableInt8([3, 3, 64, 9]), true);
  assert.throws(() => quantizeInt8(Float32Array.from([1, NaN]), [1, 2], 'unet.w'), /unet\.w: value NaN at index 1 is not finite/);
});

test('int4 kernels: per-group scales (rounded up to float16) bound the error by half a step, and load back widened (numpy unpacks the same bytes)', () => {
  const rng = new Rng(4);
  const shape = [3, 3, 12, 6]; // a conv kernel [kh, kw, in, out]: 108 rows, groups of 32 -> 4 (the last of 12 rows)
  const out = 6;
  const w = rng.normalArray(3 * 3 * 12 * 6);
  for (let i = 2; i < w.length; i += out) w[i] = 0; // output channel 2 all zero
  w[40 * out + 4] = 50; // one large weight in group 1 of channel 4: only that group's scale grows
  const { packed, scale, groups } = quantizeInt4(w, shape, 'k');
  assert.equal(groups, 4);
  assert.equal(packed.length, w.length / 2);
  const rows = w.length / out;
  for (let g = 0; g < groups; g++)
    for (let c = 0; c < out; c++) {
      let max = 0;
      for (let r = g * INT4_GROUP; r < Math.min(rows, (g + 1) * INT4_GROUP); r++) max = Math.max(max, Math.abs(w[r * out + c]));
      const s = halfToFloat(scale[g * out + c]);
      // The smallest float16 at or above max / 7.
      assert.ok(s >= max / 7 && (max === 0 ? s === 0 : halfToFloat(scale[g * out + c] - 1) < max / 7), `scale[${g}, ${c}] ${s} for max ${max}`);
    }
  assert.ok(halfToFloat(scale[1 * out + 4]) > 7, 'the large weight sets its own group scale');
  assert.ok(halfToFloat(scale[0 * out + 4]) < 1, 'and not the other groups of its channel');

  const file = path.join(dir, 'int4.safetensors');
  const bias = Float32Array.from([0.5, -1]);
  saveSafetensors(
    file,
    new Map<string, TensorToWrite>([
      ['conv.weight', { shape: [3, 3, 12, 3], data: packed }],
      ['conv.weight.int4_scale', { shape: [groups, out], data: scale, dtype: 'F16' }],
      ['conv.bias', { shape: [2], data: bias }],
    ]),
    { [INT4_METADATA]: INT4_CONVENTION },
  );
  const ref = JSON.parse(python(['int4', file, 'conv.weight'])) as number[];
  const back = loadSafetensors(file);
  assert.deepEqual([...back.tensors.keys()].sort(), ['conv.bias', 'conv.weight']);
  const k = back.tensors.get('conv.weight')!;
  assert.equal(k.dtype, 'F32');
  assert.deepEqual(k.shape, shape);
  assert.deepEqual(Array.from(k.data), ref.map((v) => Math.fround(v)));
  let extremes = 0;
  for (let i = 0; i < w.length; i++) {
    const s = halfToFloat(scale[Math.floor(i / out / INT4_GROUP) * out + (i % out)]);
    assert.ok(Math.abs(k.data[i] - w[i]) <= s / 2 + 1e-7 * Math.abs(w[i]), `w[${i}] ${w[i]} -> ${k.data[i]} (scale ${s})`);
    if (Math.abs(k.data[i]) === 7 * s && s > 0) extremes++;
  }
  assert.ok(extremes >= 15, `non-zero groups reach +-7 at their largest value (${extremes})`);
  assert.deepEqual(Array.from(back.tensors.get('conv.bias')!.data), Array.from(bias));

  // Errors name the file and tensor: a scale without its tensor, a wrong scale shape, an odd last axis, nibble 0.
  const orphan = encodeSafetensors(new Map([['x.int4_scale', { shape: [1, 2], data: bias }]]), { [INT4_METADATA]: INT4_CONVENTION });
  assert.throws(() => decodeSafetensors(orphan, 'm.safetensors'), /m\.safetensors: scale tensor 'x\.int4_scale' has no int4 tensor 'x'/);
  const badScale = encodeSafetensors(
    new Map<string, TensorToWrite>([
      ['conv.weight', { shape: [3, 3, 12, 3], data: packed }],
      ['conv.weight.int4_scale', { shape: [groups, 3], data: scale.subarray(0, groups * 3), dtype: 'F16' }],
    ]),
    { [INT4_METADATA]: INT4_CONVENTION },
  );
  assert.throws(() => decodeSafetensors(badScale, 'm.safetensors'), /m\.safetensors: int4 tensor 'conv\.weight' \(U8 \[3,3,12,3\]\) needs packed U8 values \[\.\.\., channels \/ 2\] and a float scale tensor 'conv\.weight\.int4_scale' of shape \[groups, 6\], got F32 \[4,3\]/);
  assert.throws(() => quantizeInt4(new Float32Array(9), [3, 3], 'unet.w'), /unet\.w: cannot pack shape \[3,3\] into int4 \(rank >= 2 and an even last axis expected\)/);
  assert.throws(() => quantizeInt4(Float32Array.from([1, Infinity]), [1, 2], 'unet.w'), /unet\.w: value Infinity at index 1 is not finite/);
  assert.throws(() => dequantizeInt4(Uint8Array.from([0x80]), Float32Array.from([1, 1]), 2, 't'), /t: nibble 0 at index 0 is outside the int4 convention/);
  assert.deepEqual(Array.from(dequantizeInt4(Uint8Array.from([0x1f]), Float32Array.from([0.5, 2]), 2, 't')), [3.5, -14]);
});
