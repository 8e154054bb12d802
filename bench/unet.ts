/**
 * The reference UNet workload `unet-reference` (issue 3): LVDM's prediction UNet at a small
 * configuration - latent 16x16, 8 frames, 4 channels + 1 mask channel, batch 4, model channels 64,
 * multipliers [1, 2], one residual block per level, spatial + temporal (relative-position)
 * attention at downsample factor 2, 32 channels per head, scale-shift norm, no s embedding.
 * Reports parameters, GFLOP per forward, forward ms, training-step ms (forward + backward + AdamW,
 * the LvdmTrainer step), 50-step DDIM seconds and peak RSS. CPU-time columns (process user+system)
 * are given too: they are what to compare when other processes share the cores.
 */
import * as tf from '@tensorflow/tfjs';
import { BenchModule, BenchResult, timeMs } from './types';
import { ExperimentConfig } from '../lib/config/schema';
import { Rng } from '../lib/nn/rng';
import { REFERENCE_UNET, referenceUNetConfig, unetFlops } from '../lib/models/unet3d';
import { LatentCache, LvdmTrainer } from '../lib/lvdm';
import { sample } from '../lib/diffusion';

/** Median and best wall ms and median CPU ms of `fn`. */
export async function timeWallCpu(fn: () => unknown | Promise<unknown>, reps: number, warmup: number): Promise<{ wall: number; best: number; cpu: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    wall.push(await timeMs(fn, 1, 0));
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const med = (a: number[]): number => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return { wall: med(wall), best: Math.min(...wall), cpu: med(cpu) };
}

/** The reference UNet's trainer (AdamW, no EMA) over 8 cached random latents: the bench's workload. */
export function referenceTrainer(): LvdmTrainer {
  const { batch, frames, height, width, channels } = REFERENCE_UNET;
  const config = ExperimentConfig.parse({
    name: 'bench-unet-reference',
    seed: 0,
    data: { source: 'synthetic-shapes', frames, size: height },
    unet: referenceUNetConfig(),
    diffusion: { loss: 'l1', optim: { kind: 'adamw', lr: 1e-4, weight_decay: 0.01 }, train: { steps: 1000, batch_size: batch, ema_decay: 0 } },
  });
  const per = frames * height * width * channels;
  const n = 8;
  const latents = new LatentCache(new Rng(1).normalArray(n * per), new Float32Array(n * per).fill(-30), n, [frames, height, width, channels], { shift: 0, scale: 1 });
  return new LvdmTrainer({ config, latents });
}

export const run: BenchModule = async (opts) => {
  const { batch, frames, height, width, channels } = REFERENCE_UNET;
  const unet = referenceUNetConfig();
  const per = frames * height * width * channels;
  const trainer = referenceTrainer();
  const net = trainer.unet;
  // Live output layers (zero-initialised in LVDM) so sampling does real work on non-trivial values.
  const rng = new Rng(2);
  for (const [name, v] of trainer.store.entries()) {
    if (/proj_out|out_layers\.3|^out\.2/.test(name)) tf.tidy(() => v.assign(tf.tensor(rng.normalArray(v.size, 0, 0.02), v.shape)));
  }
  const x = tf.tensor5d(new Rng(3).normalArray(batch * per), [batch, frames, height, width, channels]);
  const t = new Int32Array([10, 250, 500, 999]);
  const mask = tf.zeros([batch, frames]);
  const quick = opts.quick;

  // Same protocol as bench/python/unet_reference.py: 2 warm-up runs, then the median of 8.
  const fwd = await timeWallCpu(() => tf.tidy(() => net.apply(x, t, { mask }).dataSync()), quick ? 2 : 8, quick ? 1 : 2);
  let step = 0;
  const train = await timeWallCpu(() => trainer.trainStep(step++), quick ? 2 : 8, quick ? 1 : 2);
  const ddimSteps = quick ? 5 : 50;
  const model = net.asEpsModel();
  const ddim = await timeWallCpu(
    async () => {
      const y = await sample(model, trainer.schedule, [batch, frames, height, width, channels], { kind: 'ddim', steps: ddimSteps, eta: 0, rng: new Rng(4), cond: { mask } });
      y.dispose();
    },
    1,
    0,
  );
  const scale = 50 / ddimSteps;
  const flops = unetFlops(unet, { batch, frames, height, width });
  const result: BenchResult = {
    name: 'unet-reference',
    params: trainer.store.numParams(),
    timings_ms: { forward_ms: fwd.wall, train_step_ms: train.wall, ddim50_ms: ddim.wall * scale },
    extra: {
      gflop_per_forward: flops.reference / 1e9,
      gflop_executed: flops.executed / 1e9,
      forward_best_ms: fwd.best,
      train_step_best_ms: train.best,
      forward_cpu_ms: fwd.cpu,
      train_step_cpu_ms: train.cpu,
      ddim50_s: (ddim.wall * scale) / 1000,
      forward_gflops_per_s: flops.executed / 1e6 / fwd.cpu,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
      shape: `${batch}x${frames}x${height}x${width}x${channels}+mask`,
    },
    note:
      `The public PyTorch model (bench/python/unet_reference.py, PyTorch 1.13 + OpenBLAS, 2 threads) on this machine: 3,280,708 params; ` +
      `forward 153-213 ms, train step 313-481 ms median (this machine's run-to-run spread), 376-389 ms typical.` +
      (quick ? ` Quick mode: DDIM timed over ${ddimSteps} steps and scaled to 50.` : '') +
      ' peak_rss_mb is the whole bench process.',
  };
  tf.dispose([x, mask]);
  trainer.dispose();
  return [result];
};
