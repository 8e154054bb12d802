"""Independent safetensors reader/writer for test/safetensors.test.ts (numpy + stdlib only).

Follows the format description (huggingface/safetensors README): 8-byte little-endian u64 header
size N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
then the byte buffer; offsets are relative to the buffer start, tensors cover it contiguously.

  python3 safetensors_ref.py read FILE         -> JSON on stdout: metadata, tensors (values as lists)
  python3 safetensors_ref.py write FILE        -> writes a spec file; JSON of the expected values
  python3 safetensors_ref.py write-i64big FILE -> a file with an int64 value outside int32
  python3 safetensors_ref.py half FILE         -> FILE: raw little-endian float32 values; prints
                                                  numpy's float16 cast of each as bit patterns
  python3 safetensors_ref.py int4 FILE NAME    -> the int4 tensor NAME of FILE widened to float32
                                                  (lvdm's convention, lib/io/int4.ts), as a list
"""
import json
import struct
import sys

import numpy as np

DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"), "BF16": None,
}


def fail(msg):
    sys.stderr.write("spec violation: " + msg + "\n")
    sys.exit(3)


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        fail("header size %d beyond the file" % n)
    hbytes = raw[8:8 + n]
    text = hbytes.decode("utf-8")
    if not text.startswith("{"):
        fail("header must start with '{'")
    if text.rstrip(" ") != text.rstrip():
        fail("header padding must be spaces")
    header = json.loads(text)
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail("__metadata__ must map str to str")
    spans = []
    out = {}
    for name, info in header.items():
        if set(info.keys()) != {"dtype", "shape", "data_offsets"}:
            fail("tensor %s has keys %s" % (name, sorted(info.keys())))
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            fail("unknown dtype " + dt)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        width = 2 if dt == "BF16" else DTYPES[dt].itemsize
        if e - b != count * width:
            fail("tensor %s: %d bytes for %d x %s" % (name, e - b, count, dt))
        spans.append((b, e, name))
        chunk = data[b:e]
        if dt == "BF16":
            u32 = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
            arr = u32.view(np.float32)
        else:
            arr = np.frombuffer(chunk, dtype=DTYPES[dt])
        out[name] = {"dtype": dt, "shape": shape, "values": [v.item() for v in arr.reshape(-1)]}
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            fail("tensor %s starts at %d, expected %d (gap or overlap)" % (name, b, pos))
        pos = e
    if pos != len(data):
        fail("tensors cover %d bytes, the buffer has %d" % (pos, len(data)))
    json.dump({"metadata": meta, "tensors": out, "header_size": n}, sys.stdout)


def write_file(path, entries, meta):
    header = {"__metadata__": meta} if meta else {}
    blobs = []
    off = 0
    for name, dt, shape, blob in entries:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header).encode("utf-8")  # no padding: readers must not assume alignment
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)


def write(path):
    rng = np.random.default_rng(0)
    f16 = (rng.standard_normal(6) * 10).astype("<f2")
    f16[0] = np.float16(6.1e-5)   # subnormal-adjacent
    f16[1] = np.float16(3.0e-7)   # subnormal
    f16[2] = np.float16(-65504.0) # max magnitude
    f16[3] = np.float16(-0.0)
    i64 = np.array([[-2147483648, 2147483647, 0], [-5, 7, 123456789]], dtype="<i8")
    f32 = rng.standard_normal((2, 3, 2)).astype("<f4")
    f64 = (rng.standard_normal(5) * 1e10).astype("<f8")
    i32 = np.array([-7, 0, 2147483647, -2147483648], dtype="<i4")
    u8 = np.arange(250, 256, dtype="u1")
    bf16_src = np.array([1.0, -2.5, 3.140625, 1e-3], dtype="<f4")
    bf16 = (bf16_src.view("<u4") >> 16).astype("<u2")
    scalar = np.array(4.5, dtype="<f4")
    empty = np.zeros((0, 3), dtype="<f4")
    # Written in an order that is neither sorted nor the order readers might assume.
    entries = [
        ("z.half", "F16", [2, 3], f16.tobytes()),
        ("a.long", "I64", [2, 3], i64.tobytes()),
        ("m.float", "F32", [2, 3, 2], f32.tobytes()),
        ("b.double", "F64", [5], f64.tobytes()),
        ("int", "I32", [4], i32.tobytes()),
        ("bytes", "U8", [6], u8.tobytes()),
        ("brain", "BF16", [4], bf16.tobytes()),
        ("scalar", "F32", [], scalar.tobytes()),
        ("empty", "F32", [0, 3], empty.tobytes()),
    ]
    write_file(path, entries, {"format": "pt", "note": "written by numpy"})
    expected = {
        "z.half": [float(v) for v in f16.astype(np.float64)],
        "a.long": [int(v) for v in i64.reshape(-1)],
        "m.float": [float(v) for v in f32.astype(np.float64).reshape(-1)],
        "b.double": [float(v) for v in f64],
        "int": [int(v) for v in i32],
        "bytes": [int(v) for v in u8],
        "brain": [float(v) for v in (bf16.astype(np.uint32) << 16).view(np.float32).astype(np.float64)],
        "scalar": [4.5],
        "empty": [],
    }
    json.dump(expected, sys.stdout)


def write_i64big(path):
    write_file(path, [("big", "I64", [2], np.array([1, 2**40], dtype="<i8").tobytes())], {})


def half(path):
    x = np.fromfile(path, dtype="<f4")
    with np.errstate(over="ignore"):
        json.dump(x.astype(np.float16).view("<u2").tolist(), sys.stdout)


def int4(path, name, group=32):
    """Nibbles (low first) minus 8 times the F16 scale of their row group and channel."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]

    def tensor(key, dtype):
        info = header[key]
        b, e = info["data_offsets"]
        return np.frombuffer(data[b:e], dtype=dtype).reshape(info["shape"])

    packed = tensor(name, "u1")
    scale = tensor(name + ".int4_scale", "<f2").astype(np.float32)
    out = 2 * packed.shape[-1]
    nib = np.stack([packed & 15, packed >> 4], axis=-1).reshape(-1, out).astype(np.int32)
    if (nib == 0).any():
        fail("nibble 0 in " + name)
    rows = np.arange(nib.shape[0]) // group
    w = (nib - 8).astype(np.float32) * scale[rows, :]
    json.dump([float(v) for v in w.reshape(-1)], sys.stdout)


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "int4":
        int4(path, sys.argv[3])
    else:
        {"read": read, "write": write, "write-i64big": write_i64big, "half": half}[mode](path)
