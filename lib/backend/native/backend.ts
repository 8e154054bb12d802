// The 'libtorch' tfjs KernelBackend (structure after tfjs-node's NodeJSKernelBackend): each dataId
// maps to a native ATen tensor handle held by the addon. Values written from JS stay in JS until a
// kernel first needs them (then they are uploaded once); readSync copies out; disposeData frees
// the native tensor. Kernels (./kernels) call `run` with handles and numeric arguments.
import * as tf from '@tensorflow/tfjs';
import { TorchAddon } from './addon';

export const NATIVE_BACKEND = 'libtorch';

const DTYPE_CODE: Record<string, number> = { float32: 0, int32: 1, bool: 2 };
const CODE_DTYPE: tf.DataType[] = ['float32', 'int32', 'bool'];

interface Entry {
  /** Native handle, or -1 while the values are still only in JS. */
  handle: number;
  values: tf.BackendValues | null;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

/** One native result before it becomes a tfjs tensor. */
export interface RawOut {
  handle: number;
  dtype: tf.DataType;
  shape: number[];
}

export function dtypeCode(dtype: tf.DataType, what: string): number {
  const c = DTYPE_CODE[dtype];
  if (c === undefined) throw new Error(`${what}: dtype '${dtype}' is not supported by the ${NATIVE_BACKEND} backend`);
  return c;
}

export class NativeBackend extends tf.KernelBackend {
  private readonly data: tf.DataStorage<Entry>;

  constructor(readonly addon: TorchAddon) {
    super();
    this.data = new tf.DataStorage<Entry>(this, tf.engine());
  }

  override write(values: tf.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = {};
    this.data.set(dataId, { handle: -1, values, shape: shape.slice(), dtype, refCount: 1 });
    return dataId;
  }

  override move(dataId: tf.DataId, values: tf.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.data.set(dataId, { handle: -1, values, shape: shape.slice(), dtype, refCount });
  }

  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.BackendValues): tf.TensorInfo {
    const v = values ?? tf.util.getTypedArrayFromDType(dtype as 'float32', tf.util.sizeFromShape(shape));
    return { dataId: this.write(v, shape, dtype), shape, dtype };
  }

  override readSync(dataId: tf.DataId): tf.BackendValues {
    const e = this.data.get(dataId);
    if (e.values !== null) return e.values;
    const buf = this.addon.toData(e.handle);
    if (e.dtype === 'float32') return new Float32Array(buf);
    if (e.dtype === 'int32') return new Int32Array(buf);
    return new Uint8Array(buf);
  }

  override async read(dataId: tf.DataId): Promise<tf.BackendValues> {
    return this.readSync(dataId);
  }

  override refCount(dataId: tf.DataId): number {
    return this.data.has(dataId) ? this.data.get(dataId).refCount : 0;
  }

  override incRef(dataId: tf.DataId): void {
    this.data.get(dataId).refCount++;
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const e = this.data.get(dataId);
    e.refCount--;
    if (!force && e.refCount > 0) return false;
    if (e.handle >= 0) this.addon.dispose(e.handle);
    this.data.delete(dataId);
    return true;
  }

  override numDataIds(): number {
    return this.data.numDataIds();
  }

  override memory(): { unreliable: boolean; nativeBytes: number; nativeHandles: number } {
    const m = this.addon.memory();
    return { unreliable: false, nativeBytes: m.bytes, nativeHandles: m.handles };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const t0 = process.hrtime.bigint();
    f();
    return { kernelMs: Number(process.hrtime.bigint() - t0) / 1e6 };
  }

  override dispose(): void {
    // Tensors still alive belong to the engine; nothing global to release here.
  }

  /** Native handle of a kernel input, uploading JS-side values on first use. */
  handle(t: tf.TensorInfo, kernel: string): number {
    const e = this.data.get(t.dataId);
    if (e.handle >= 0) return e.handle;
    const v = e.values;
    if (v === null || !ArrayBuffer.isView(v)) throw new Error(`${kernel}: dtype '${e.dtype}' tensors are not supported by the ${NATIVE_BACKEND} backend`);
    const code = dtypeCode(e.dtype, kernel);
    const nums = v as unknown as ArrayLike<number>;
    const typed =
      e.dtype === 'float32'
        ? v instanceof Float32Array ? v : Float32Array.from(nums)
        : e.dtype === 'int32'
          ? v instanceof Int32Array ? v : Int32Array.from(nums)
          : v instanceof Uint8Array ? v : Uint8Array.from(nums);
    e.handle = this.addon.fromData(typed, e.shape, code);
    e.values = null;
    return e.handle;
  }

  /** Runs a native op on raw handles; results stay raw (free them or wrap them with `info`). */
  runRaw(op: string, handles: number[], args: number[]): RawOut[] {
    const packed = new Float64Array(1 + handles.length + args.length);
    packed[0] = handles.length;
    packed.set(handles, 1);
    packed.set(args, 1 + handles.length);
    const r = this.addon.run(op, packed);
    const out: RawOut[] = [];
    let i = 1;
    for (let k = 0; k < r[0]; k++) {
      const handle = r[i];
      const dtype = CODE_DTYPE[r[i + 1]];
      const rank = r[i + 2];
      out.push({ handle, dtype, shape: Array.from(r.subarray(i + 3, i + 3 + rank)) });
      i += 3 + rank;
    }
    return out;
  }

  /** Registers a raw result as a tfjs tensor's data. */
  info(raw: RawOut): tf.TensorInfo {
    const dataId = {};
    this.data.set(dataId, { handle: raw.handle, values: null, shape: raw.shape, dtype: raw.dtype, refCount: 1 });
    return { dataId, shape: raw.shape, dtype: raw.dtype };
  }

  /** Runs a native op on kernel inputs; every result becomes a tfjs tensor's data. */
  run(op: string, inputs: tf.TensorInfo[], args: number[], kernel = op): tf.TensorInfo[] {
    const handles = inputs.map((t) => this.handle(t, kernel));
    let raw: RawOut[];
    try {
      raw = this.runRaw(op, handles, args);
    } catch (e) {
      throw new Error(`${kernel} (${NATIVE_BACKEND} backend): ${(e as Error).message}`);
    }
    return raw.map((r) => this.info(r));
  }

  free(raw: RawOut): void {
    this.addon.dispose(raw.handle);
  }
}
