/**
 * Where a reference-UNet training step's time goes, per tfjs kernel: calls, wall ms and process
 * CPU ms per step (mean of 3 steps after 2 warm-ups), and the serial share 2 x wall - CPU, which
 * on 2 threads is the time the kernel kept only one core busy. Sorted by serial share: the
 * kernels to parallelise or fuse first.
 *   node --import tsx bench/profile-kernels.ts [--model reference|shapes] [--shapes] [--top 30] [--precision fp32|bf16] [--channels N]
 * `--shapes` splits each kernel by its input shapes; `--model shapes` profiles the shipped demo short
 * model's step (bench/shapes.ts) instead of the reference UNet, `--channels N` at N base channels;
 * `--precision bf16` runs the convolutions in bfloat16 (lib/backend/precision.ts). Uses the selected
 * backend (LVDM_BACKEND).
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend, setPrecision, type Precision } from '../lib/backend';
import { referenceTrainer } from './unet';
import { shapesShortTrainer } from './shapes';

interface Cost {
  calls: number;
  wall: number;
  cpu: number;
}

/** Wraps every kernel of `backend` to add its wall and CPU time to `log` under `keyOf(name, inputs)`. */
function instrument(backend: string, log: Map<string, Cost>, keyOf: (name: string, inputs: tf.NamedTensorInfoMap) => string): void {
  for (const k of tf.getKernelsForBackend(backend)) {
    const inner = k.kernelFunc;
    const name = k.kernelName;
    (k as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = inner(args);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const key = keyOf(name, args.inputs);
      const a = log.get(key) ?? { calls: 0, wall: 0, cpu: 0 };
      a.calls++;
      a.wall += wall;
      a.cpu += (c.user + c.system) / 1000;
      log.set(key, a);
      return out;
    };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { shapes: { type: 'boolean' }, top: { type: 'string' }, model: { type: 'string' }, precision: { type: 'string' }, channels: { type: 'string' } } });
  const info = await initBackend();
  setPrecision((values.precision ?? 'fp32') as Precision, 'profile-kernels --precision');
  const model = values.model ?? 'reference';
  if (model !== 'reference' && model !== 'shapes') throw new Error(`profile-kernels: --model must be 'reference' or 'shapes', got '${model}'`);
  const trainer = model === 'shapes' ? shapesShortTrainer(values.channels !== undefined ? Number(values.channels) : undefined).trainer : referenceTrainer();
  for (let s = 0; s < 2; s++) await trainer.trainStep(s);
  const log = new Map<string, Cost>();
  const keyOf = values.shapes
    ? (name: string, inputs: tf.NamedTensorInfoMap) => `${name} ${Object.values(inputs).map((t) => (t ? t.shape.join('x') : '-')).join(',')}`
    : (name: string) => name;
  instrument(tf.getBackend(), log, keyOf);
  const steps = 3;
  let wall = 0;
  let cpu = 0;
  for (let s = 2; s < 2 + steps; s++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await trainer.trainStep(s);
    wall += performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1000;
  }
  const rows = [...log.entries()].map(([key, a]) => ({ key, calls: a.calls / steps, wall: a.wall / steps, cpu: a.cpu / steps }));
  rows.sort((a, b) => 2 * b.wall - b.cpu - (2 * a.wall - a.cpu));
  const sum = (f: (r: (typeof rows)[number]) => number): number => rows.reduce((t, r) => t + f(r), 0);
  console.log(`backend ${info.name}, ${info.threads ?? 1} thread(s); per training step (mean of ${steps}): wall ${(wall / steps).toFixed(0)} ms, CPU ${(cpu / steps).toFixed(0)} ms`);
  console.log(`inside kernels: ${sum((r) => r.calls).toFixed(0)} calls, wall ${sum((r) => r.wall).toFixed(0)} ms, CPU ${sum((r) => r.cpu).toFixed(0)} ms, serial share ${sum((r) => 2 * r.wall - r.cpu).toFixed(0)} ms`);
  console.log(`${'calls'.padStart(6)} ${'wall ms'.padStart(8)} ${'CPU ms'.padStart(8)} ${'serial'.padStart(8)}  kernel`);
  for (const r of rows.slice(0, Number(values.top ?? 30))) {
    console.log(`${r.calls.toFixed(0).padStart(6)} ${r.wall.toFixed(1).padStart(8)} ${r.cpu.toFixed(1).padStart(8)} ${(2 * r.wall - r.cpu).toFixed(1).padStart(8)}  ${r.key}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
