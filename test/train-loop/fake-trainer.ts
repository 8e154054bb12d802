// A tiny deterministic Trainer for the training-loop tests (plain JS, no tensors): one parameter
// vector, momentum SGD on a seeded noisy quadratic. Hooks simulate a crash, a SIGKILL or a NaN.
import { Trainer } from '../../lib/train/loop';
import { NamedArray } from '../../lib/nn/params';
import { Rng, RngState } from '../../lib/nn/rng';

export interface FakeOptions {
  seed?: number;
  /** Throw an Error in trainStep(step) (a crash after some steps). */
  throwAt?: number;
  /** SIGKILL this process in trainStep(step). */
  killAt?: number;
  /** Return a NaN loss at trainStep(step) (after corrupting the weights, as a diverging step would). */
  nanAt?: number;
}

export class FakeTrainer implements Trainer {
  readonly kind = 'fake';
  w: Float32Array;
  mom = new Float32Array(4);
  rng: Rng;
  /** Steps actually executed in this process, with the logs returned. */
  readonly calls: { step: number; logs: Record<string, number> }[] = [];

  constructor(readonly opts: FakeOptions = {}) {
    const root = new Rng(opts.seed ?? 0);
    this.w = root.fork('init').normalArray(4);
    this.rng = root.fork('data');
  }

  async trainStep(step: number): Promise<Record<string, number>> {
    if (step === this.opts.killAt) process.kill(process.pid, 'SIGKILL');
    if (step === this.opts.throwAt) throw new Error(`simulated crash at step ${step}`);
    const x = this.rng.normalArray(4);
    let loss = 0;
    let gn = 0;
    for (let i = 0; i < 4; i++) {
      const d = this.w[i] - (0.5 * x[i] + 1);
      loss += (d * d) / 4;
      const g = d / 2;
      gn += g * g;
      this.mom[i] = 0.9 * this.mom[i] + g;
      this.w[i] -= 0.1 * this.mom[i];
    }
    if (step === this.opts.nanAt) {
      this.w.fill(NaN);
      loss = NaN;
    }
    const logs = { loss, grad_norm: Math.sqrt(gn) };
    this.calls.push({ step, logs });
    return logs;
  }

  checkpointTensors(): Map<string, NamedArray> {
    return new Map([
      ['model.w', { shape: [4], data: Float32Array.from(this.w) }],
      ['optim.mom', { shape: [4], data: Float32Array.from(this.mom) }],
    ]);
  }

  checkpointState(): Record<string, unknown> {
    return { rng: this.rng.state() };
  }

  restore(tensors: Map<string, NamedArray>, state: Record<string, unknown>, _step: number, source: string): void {
    const w = tensors.get('model.w');
    const m = tensors.get('optim.mom');
    if (!w || !m) throw new Error(`${source}: fake checkpoint lacks model.w / optim.mom`);
    this.w = Float32Array.from(w.data);
    this.mom = Float32Array.from(m.data);
    this.rng = Rng.fromState(state.rng as RngState);
  }
}
