/**
 * A safe reader for the pickles inside PyTorch checkpoints (Python's pickle protocols 2-5, the
 * binary opcodes; PEP 307 / PEP 3154 / PEP 574). Nothing is ever imported or called: GLOBAL /
 * STACK_GLOBAL resolve only names from an allow-list, and REDUCE / NEWOBJ / BUILD are interpreted
 * for those names alone:
 *   - state-dict constructs: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 *     torch._utils._rebuild_parameter(_with_state), torch._tensor._rebuild_from_type_v2,
 *     torch.<Dtype>Storage (as persistent-id storage types), torch.Tensor / nn.Parameter (types);
 *   - optional inert metadata (Lightning checkpoints: callback states, hyper-parameters): classes of
 *     pytorch_lightning / lightning / omegaconf and a few builtins become records that are never
 *     executed and cannot stand in for tensors (`metadata: 'refuse'` rejects them too).
 * Anything else (e.g. `os.system`, `builtins.eval`, `subprocess.Popen`) is refused with an error
 * naming the global. Tensors are references to storages (data/<key> entries); they are
 * materialised only on request.
 */

export type TorchDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface StorageRef {
  kind: 'storage';
  dtype: TorchDType;
  key: string;
  location: string;
  numel: number;
}

export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

export interface PyTuple {
  kind: 'tuple';
  items: PyValue[];
}

export interface PyGlobal {
  kind: 'global';
  module: string;
  name: string;
}

/** An inert metadata object (never executed). */
export interface PyObject {
  kind: 'object';
  type: string;
  args: PyValue[];
  state?: PyValue;
}

export type PyDict = Map<PyValue, PyValue>;
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyGlobal | PyObject | StorageRef | TensorRef | Set<PyValue>;

const STORAGE_DTYPES: Record<string, TorchDType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const TENSOR_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.Tensor',
  'torch.nn.parameter.Parameter',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

const METADATA_MODULES = ['pytorch_lightning', 'lightning', 'lightning_fabric', 'omegaconf'];
const METADATA_GLOBALS = new Set([
  'builtins.set',
  'builtins.frozenset',
  'collections.defaultdict',
  'pathlib.PosixPath',
  'pathlib.WindowsPath',
  'argparse.Namespace',
  'torch.torch_version.TorchVersion',
  'numpy.core.multiarray.scalar',
  'numpy.dtype',
  '_codecs.encode',
  'typing.Any',
]);

export interface UnpickleOptions {
  /** Lightning metadata classes: inert records ('inert', default) or refused ('refuse'). */
  metadata?: 'inert' | 'refuse';
  source?: string;
}

function isTuple(v: PyValue): v is PyTuple {
  return typeof v === 'object' && v !== null && !(v instanceof Map) && !(v instanceof Set) && !(v instanceof Uint8Array) && !Array.isArray(v) && v.kind === 'tuple';
}

function isGlobal(v: PyValue, full?: string): v is PyGlobal {
  return typeof v === 'object' && v !== null && !(v instanceof Map) && !(v instanceof Set) && !(v instanceof Uint8Array) && !Array.isArray(v) && v.kind === 'global' && (full === undefined || `${v.module}.${v.name}` === full);
}

export function isTensorRef(v: PyValue | undefined): v is TensorRef {
  return typeof v === 'object' && v !== null && !(v instanceof Map) && !(v instanceof Set) && !(v instanceof Uint8Array) && !Array.isArray(v) && v.kind === 'tensor';
}

function asInt(v: PyValue, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(-Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new Error(`${what}: expected an integer`);
}

function intList(v: PyValue, what: string): number[] {
  const items = isTuple(v) ? v.items : Array.isArray(v) ? v : null;
  if (!items) throw new Error(`${what}: expected a tuple of integers`);
  return items.map((x) => asInt(x, what));
}

/**
 * Parses a pickle. `persistentLoad` resolves BINPERSID ids (torch: ('storage', type, key,
 * location, numel)).
 */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  const source = opts.source ?? '<pickle>';
  const metadata = opts.metadata ?? 'inert';
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  const need = (n: number): void => {
    if (pos + n > data.length) fail(`truncated pickle at byte ${pos}`);
  };
  const u8 = (): number => (need(1), data[pos++]);
  const u16 = (): number => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('length field too large');
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    pos += n;
    return data.subarray(pos - n, pos);
  };
  const utf8 = (n: number): string => Buffer.from(bytes(n)).toString('utf8');
  const line = (): string => {
    const start = pos;
    while (pos < data.length && data[pos] !== 0x0a) pos++;
    if (pos >= data.length) fail('unterminated GLOBAL name');
    return Buffer.from(data.subarray(start, pos++)).toString('utf8');
  };
  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail(`stack underflow at byte ${pos}`);
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail(`empty stack at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) fail(`MARK expected at byte ${pos}`);
    return stack.splice(m as number);
  };
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    if (TENSOR_GLOBALS.has(full)) return { kind: 'global', module, name };
    const isMeta = METADATA_GLOBALS.has(full) || METADATA_MODULES.some((m) => module === m || module.startsWith(`${m}.`));
    if (isMeta && metadata === 'inert') return { kind: 'global', module, name };
    return fail(
      `refusing to load: the pickle references the global '${full}', which is not a state-dict construct` +
        (isMeta ? ' (metadata objects are refused by this reader\'s settings)' : ' (only tensors, storages, OrderedDict and known Lightning metadata are accepted)'),
    );
  };
  const setItems = (target: PyValue, kv: PyValue[]): void => {
    if (!(target instanceof Map)) return fail(`SETITEM(S) on a non-dict at byte ${pos}`);
    for (let i = 0; i + 1 < kv.length; i += 2) target.set(kv[i], kv[i + 1]);
  };
  const call = (fn: PyValue, argsV: PyValue): PyValue => {
    if (!isGlobal(fn)) return fail(`REDUCE on a non-callable at byte ${pos}`);
    const args = isTuple(argsV) ? argsV.items : fail(`REDUCE arguments are not a tuple at byte ${pos}`);
    const full = `${fn.module}.${fn.name}`;
    switch (full) {
      case 'collections.OrderedDict':
        return new Map<PyValue, PyValue>();
      case 'torch._utils._rebuild_tensor_v2': {
        const st = args[0];
        if (typeof st !== 'object' || st === null || (st as StorageRef).kind !== 'storage') return fail(`_rebuild_tensor_v2 without a storage at byte ${pos}`);
        return { kind: 'tensor', storage: st as StorageRef, offset: asInt(args[1], '_rebuild_tensor_v2 offset'), shape: intList(args[2], '_rebuild_tensor_v2 size'), stride: intList(args[3], '_rebuild_tensor_v2 stride') };
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return isTensorRef(args[0]) ? args[0] : fail(`${full} without a tensor at byte ${pos}`);
      case 'torch._tensor._rebuild_from_type_v2': {
        // (func, type, args, state): only plain tensors / parameters.
        if (!isGlobal(args[1], 'torch.Tensor') && !isGlobal(args[1], 'torch.nn.parameter.Parameter')) return fail(`_rebuild_from_type_v2 of an unsupported type at byte ${pos}`);
        return call(args[0], args[2]);
      }
      default:
        if (TENSOR_GLOBALS.has(full)) return fail(`'${full}' cannot be called here (byte ${pos})`);
        return { kind: 'object', type: full, args };
    }
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`pickle ended with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push({ kind: 'tuple', items: [] });
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(dv.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longLE(bytes(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(longLE(bytes(u32())));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(u64()));
        break;
      case 0x54: // BINSTRING
        stack.push(Buffer.from(bytes(u32())).toString('latin1'));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(Buffer.from(bytes(u8())).toString('latin1'));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()).slice());
        break;
      case 0x74: // TUPLE
        stack.push({ kind: 'tuple', items: popMark() });
        break;
      case 0x85: // TUPLE1
        stack.push({ kind: 'tuple', items: [pop()] });
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push({ kind: 'tuple', items: [pop(), b] });
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push({ kind: 'tuple', items: [pop(), b, c] });
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const m = new Map<PyValue, PyValue>();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail(`APPEND on a non-list at byte ${pos}`);
        (l as PyValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail(`APPENDS on a non-list at byte ${pos}`);
        (l as PyValue[]).push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS on a non-set at byte ${pos}`);
        for (const it of items) (s as Set<PyValue>).add(it);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo entry ${i} missing at byte ${pos}`);
        stack.push(memo.get(i) as PyValue);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL with non-string names at byte ${pos}`);
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: // REDUCE: f(*args)
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args) (interpreted the same way for the allowed names)
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop();
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x51: {
        // BINPERSID: torch storages ('storage', storage_type, key, location, numel)
        const pid = pop();
        if (!isTuple(pid) || pid.items[0] !== 'storage') fail(`unsupported persistent id at byte ${pos} (expected a torch storage)`);
        const [, type, key, location, numel] = (pid as PyTuple).items;
        if (!isGlobal(type) || !(type.module === 'torch' && type.name in STORAGE_DTYPES)) fail(`persistent id with an unknown storage type at byte ${pos}`);
        stack.push({ kind: 'storage', dtype: STORAGE_DTYPES[(type as PyGlobal).name], key: String(key), location: String(location), numel: asInt(numel, 'storage numel') });
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state); dict state on an OrderedDict (state-dict _metadata) is dropped.
        const state = pop();
        const obj = top();
        if (typeof obj === 'object' && obj !== null && !(obj instanceof Map) && !Array.isArray(obj) && !(obj instanceof Set) && !(obj instanceof Uint8Array) && obj.kind === 'object') obj.state = state;
        break;
      }
      case 0x30: // POP
        if (marks.length && stack.length === marks[marks.length - 1]) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}') at byte ${pos - 1}`);
    }
  }
}
