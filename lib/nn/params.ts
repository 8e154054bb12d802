/**
 * Parameters as a named tree. Every trainable tensor lives in a `ParamStore` under a dotted name
 * (`encoder.down.0.conv.weight`), created through a `Scope` that carries the prefix. Names are what
 * checkpoints and safetensors files use, so weights move between runs and tools by name.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from './rng';

/** Fills a new parameter. `fanIn`/`fanOut` are computed from the shape by the caller. */
export type Initializer = (size: number, rng: Rng) => Float32Array;

export const init = {
  zeros: (): Initializer => (n) => new Float32Array(n),
  ones: (): Initializer => (n) => new Float32Array(n).fill(1),
  constant: (v: number): Initializer => (n) => new Float32Array(n).fill(v),
  normal: (std: number): Initializer => (n, rng) => rng.normalArray(n, 0, std),
  uniform: (bound: number): Initializer => (n, rng) => rng.uniformArray(n, -bound, bound),
  /** PyTorch's default for Linear/Conv weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
  torchDefault: (fanIn: number): Initializer => (n, rng) => rng.uniformArray(n, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn)),
  /** Glorot/Xavier uniform. */
  xavierUniform: (fanIn: number, fanOut: number): Initializer => (n, rng) => {
    const b = Math.sqrt(6 / (fanIn + fanOut));
    return rng.uniformArray(n, -b, b);
  },
};

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly frozen = new Set<string>();

  /** `rng` draws every initial value, in creation order, so a seed fixes the whole model. */
  constructor(readonly rng: Rng) {}

  add(name: string, shape: number[], initializer: Initializer, trainable = true): tf.Variable {
    if (this.vars.has(name)) throw new Error(`ParamStore: parameter '${name}' defined twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    const data = initializer(size, this.rng);
    // No tfjs name: tfjs variable names are global, and two models may share parameter names.
    // tf.variable shares the initial tensor's data and takes its own reference: dispose the initial
    // tensor, or it stays registered (and keeps the data alive after the variable is disposed).
    const t0 = tf.tensor(data, shape, 'float32');
    const v = tf.variable(t0, trainable);
    t0.dispose();
    this.vars.set(name, v);
    if (!trainable) this.frozen.add(name);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`ParamStore: no parameter '${name}'`);
    return v;
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  entries(): [string, tf.Variable][] {
    return [...this.vars.entries()];
  }

  /** Trainable parameters in creation order (stable across runs). */
  trainable(): [string, tf.Variable][] {
    return this.entries().filter(([n]) => !this.frozen.has(n));
  }

  /** Marks every parameter under `prefix` as not trainable (e.g. a pretrained, frozen text encoder). */
  freeze(prefix: string): void {
    for (const n of this.vars.keys()) if (n.startsWith(prefix)) this.frozen.add(n);
  }

  /** Marks exactly these parameters as not trainable (each must exist). */
  freezeNames(names: Iterable<string>): void {
    for (const n of names) {
      if (!this.vars.has(n)) throw new Error(`ParamStore: no parameter '${n}' to freeze`);
      this.frozen.add(n);
    }
  }

  /** Names under a prefix, e.g. `subset('decoder.')`. */
  withPrefix(prefix: string): [string, tf.Variable][] {
    return this.entries().filter(([n]) => n.startsWith(prefix));
  }

  numParams(prefix = ''): number {
    let n = 0;
    for (const [name, v] of this.vars) if (name.startsWith(prefix)) n += v.size;
    return n;
  }

  /** Copies of every parameter's values (synchronous read). */
  snapshot(): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>();
    // Explicit copy: on the cpu backend dataSync() returns the tensor's own storage.
    for (const [name, v] of this.vars) out.set(name, { shape: v.shape.slice(), data: new Float32Array(v.dataSync() as Float32Array) });
    return out;
  }

  /**
   * Assigns values by name. `strict` requires every parameter of the store to be present and no
   * extra names; shape mismatches always throw, naming the tensor.
   */
  load(values: Map<string, NamedArray>, opts: { strict?: boolean; source?: string } = {}): void {
    const src = opts.source ? ` (${opts.source})` : '';
    if (opts.strict !== false) {
      const missing = this.names().filter((n) => !values.has(n));
      if (missing.length) throw new Error(`missing parameters${src}: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}`);
      const extra = [...values.keys()].filter((n) => !this.vars.has(n));
      if (extra.length) throw new Error(`unexpected parameters${src}: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ', ...' : ''}`);
    }
    // Check everything before assigning anything, so a failed load leaves the store unchanged.
    for (const [name, arr] of values) {
      const v = this.vars.get(name);
      if (!v) continue;
      if (arr.shape.length !== v.shape.length || arr.shape.some((d, i) => d !== v.shape[i]))
        throw new Error(`parameter '${name}'${src}: shape [${arr.shape}] does not match the model's [${v.shape}]`);
      if (arr.data.length !== v.size) throw new Error(`parameter '${name}'${src}: ${arr.data.length} values for shape [${arr.shape}] (expected ${v.size})`);
    }
    for (const [name, arr] of values) {
      const v = this.vars.get(name);
      if (v) tf.tidy(() => v.assign(tf.tensor(arr.data, v.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

/** A prefix into a ParamStore; modules create their parameters through it. */
export class Scope {
  constructor(readonly store: ParamStore, readonly prefix = '') {}

  child(name: string | number): Scope {
    return new Scope(this.store, this.prefix ? `${this.prefix}.${name}` : String(name));
  }

  param(name: string, shape: number[], initializer: Initializer, trainable = true): tf.Variable {
    return this.store.add(this.prefix ? `${this.prefix}.${name}` : name, shape, initializer, trainable);
  }
}
