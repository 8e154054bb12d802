/**
 * Long latent videos as streams: async generators that yield consecutive chunks of normalised
 * latents [n, c, h, w, C] in time order (the consumer disposes each chunk), so nothing grows with
 * the video length: only the last k latents (and the last keyframe) are kept between windows.
 *
 * - autoregressiveLatents: the baseline - a first unconditional window, then windows conditioned
 *   on the last k latents (prediction model with latent_stride 1).
 * - hierarchicalLatents: keyframes with the (sparse) prediction model; after each prediction
 *   window every new consecutive keyframe pair is filled by the interpolation model (all pairs of
 *   all videos in one batched call), and the filled latents are yielded.
 * Both stop exactly at plan.latents latents (plan.ts). Seeds: window j of video v draws from
 * Rng(seed).fork(`video-${v}`).fork(`<stage>-${j}`), so a video does not depend on n or batching,
 * and a stream given a latent journal (journal.ts) continues after an interruption from its last
 * finished window with the same numbers.
 */
import * as tf from '@tensorflow/tfjs';
import { LongVideoConfig } from '../config/schema';
import { Rng } from '../nn/rng';
import { NoiseSchedule } from '../diffusion/schedule';
import { EpsModel } from '../diffusion/types';
import { frameMask } from './conditioning';
import { LatentJournal } from './journal';
import { AutoregressivePlan, HierarchicalPlan, planAutoregressive, planHierarchical } from './plan';
import { WindowSampling, checkWindowSampling, microBatched, predictionMask, sampleConditionalWindow } from './sample';

/** A trained prediction or interpolation model, as generation needs it. */
export interface LongModel {
  eps: EpsModel;
  schedule: NoiseSchedule;
  spec: LongVideoConfig;
  /** Latent frame shape [h, w, c]. */
  latent: [number, number, number];
  /** Where it came from (for messages). */
  source: string;
}

export interface StreamOptions {
  /** Pixel frames wanted per video. */
  frames: number;
  /** Autoencoder temporal factor ft. */
  ft: number;
  n: number;
  seed: number;
  sampling: WindowSampling;
  /** Interpolation model sampling (default: the same as `sampling`). */
  interpSampling?: WindowSampling;
  /** Largest batch per network forward (guidance doubles the batch inside). */
  maxBatch: number;
  /** Called after each sampling call (stage, index, total). */
  onWindow?: (stage: string, index: number, total: number) => void;
  /** Records every finished window and continues the one an interrupted run left (journal.ts). */
  journal?: LatentJournal;
}

/** Where a run of prediction windows stands: the next window's index and the last k latents (owned). */
interface WindowsState {
  next: number;
  last: tf.Tensor5D | null;
}

/** The windows state a journal saved under `prefix` (the start when nothing was committed). */
function resumedWindows(journal: LatentJournal | undefined, prefix: string): WindowsState {
  return journal ? { next: journal.counter(`${prefix}next`, 0), last: journal.stateTensor(`${prefix}last`) } : { next: 0, last: null };
}

function videoRngs(seed: number, n: number, tag: string): Rng[] {
  const root = new Rng(seed);
  return Array.from({ length: n }, (_, v) => root.fork(`video-${v}`).fork(tag));
}

/** [n, a, ...] frames [from, to) of x. */
function frames(x: tf.Tensor5D, from: number, to: number): tf.Tensor5D {
  return tf.slice(x, [0, from, 0, 0, 0], [-1, to - from, -1, -1, -1]);
}

/** The first window's shape and the conditions tensor of a later window (last k latents + zeros). */
function conditionWindow(last: tf.Tensor5D, window: number): tf.Tensor5D {
  return tf.tidy(() => {
    const [n, k, h, w, c] = last.shape;
    return tf.concat([last, tf.zeros([n, window - k, h, w, c])], 1) as tf.Tensor5D;
  });
}

function checkModel(m: LongModel, role: LongVideoConfig['role'], what: string): void {
  if (m.spec.role !== role) throw new Error(`${m.source}: ${what} needs a ${role} model, got a ${m.spec.role} model (long.role)`);
}

/**
 * Windows of the prediction model from window `state.next` on, each yielding its new latents
 * [n, new, ...]: the first is unconditional (W latents), the rest condition on the last k latents
 * (W - k new). `state` is updated before each yield (its `last` is disposed at the end).
 */
async function* predictionWindows(m: LongModel, calls: number, o: StreamOptions, stage: string, sampling: WindowSampling, state: WindowsState): AsyncGenerator<tf.Tensor5D> {
  const { window: W, cond_frames: k } = m.spec;
  const [h, w, c] = m.latent;
  const model = microBatched(m.eps, o.maxBatch);
  try {
    for (let j = state.next; j < calls; j++) {
      const conditional = j > 0;
      const conditions = conditional ? conditionWindow(state.last!, W) : undefined;
      let out: tf.Tensor5D;
      try {
        out = await sampleConditionalWindow({
          model,
          schedule: m.schedule,
          spec: m.spec,
          shape: [o.n, W, h, w, c],
          mask: predictionMask(W, k, conditional),
          conditions,
          sampling,
          rngs: videoRngs(o.seed, o.n, `${stage}-${j}`),
        });
      } finally {
        conditions?.dispose();
      }
      o.onWindow?.(stage, j, calls);
      const fresh = conditional ? frames(out, k, W) : out.clone();
      state.last?.dispose();
      state.last = frames(out, W - k, W);
      state.next = j + 1;
      out.dispose();
      yield fresh;
    }
  } finally {
    state.last?.dispose();
    state.last = null;
  }
}

/** Yields chunks until exactly `total` latents were yielded (the last chunk is trimmed). */
async function* trimmed(src: AsyncGenerator<tf.Tensor5D>, total: number): AsyncGenerator<tf.Tensor5D> {
  let done = 0;
  try {
    for await (const chunk of src) {
      if (done >= total) {
        chunk.dispose();
        break;
      }
      const take = Math.min(chunk.shape[1], total - done);
      const out = take === chunk.shape[1] ? chunk : frames(chunk, 0, take);
      if (out !== chunk) chunk.dispose();
      done += take;
      yield out;
      if (done >= total) break;
    }
  } finally {
    await src.return(undefined);
  }
}

export function autoregressivePlanFor(pred: LongModel, o: Pick<StreamOptions, 'frames' | 'ft'>): AutoregressivePlan {
  return planAutoregressive(o.frames, o.ft, pred.spec.window, pred.spec.cond_frames);
}

/** The autoregressive baseline: plan.latents latents from a consecutive-latent prediction model. */
export function autoregressiveLatents(pred: LongModel, o: StreamOptions): { plan: AutoregressivePlan; latents: AsyncGenerator<tf.Tensor5D> } {
  checkModel(pred, 'prediction', 'autoregressive generation');
  if (pred.spec.latent_stride !== 1)
    throw new Error(
      `${pred.source}: autoregressive generation needs a prediction model on consecutive latents (long.latent_stride 1), got latent_stride ${pred.spec.latent_stride}; ` +
        `sparse models are for --mode hierarchical`,
    );
  checkWindowSampling(pred.spec, o.sampling, pred.source);
  const plan = autoregressivePlanFor(pred, o);
  const journal = o.journal;
  async function* run(): AsyncGenerator<tf.Tensor5D> {
    const state = resumedWindows(journal, '');
    try {
      if (journal) yield* journal.replay();
      for await (const fresh of predictionWindows(pred, plan.calls, o, 'ar', o.sampling, state)) {
        journal?.commit([fresh], { next: state.next }, { last: state.last });
        yield fresh;
      }
    } finally {
      state.last?.dispose(); // when the windows never started
    }
  }
  return { plan, latents: trimmed(run(), plan.latents) };
}

export function hierarchicalPlanFor(pred: LongModel, o: Pick<StreamOptions, 'frames' | 'ft'>): HierarchicalPlan {
  return planHierarchical(o.frames, o.ft, pred.spec.latent_stride, pred.spec.window, pred.spec.cond_frames);
}

/**
 * Hierarchical generation: keyframes from `pred` (spacing = its latent_stride S), every pair
 * filled by `interp` (window S + 1, first and last given).
 */
export function hierarchicalLatents(pred: LongModel, interp: LongModel, o: StreamOptions): { plan: HierarchicalPlan; latents: AsyncGenerator<tf.Tensor5D> } {
  checkModel(pred, 'prediction', 'hierarchical generation (--pred)');
  checkModel(interp, 'interpolation', 'hierarchical generation (--interp)');
  const S = pred.spec.latent_stride;
  if (interp.spec.window !== S + 1)
    throw new Error(
      `${interp.source}: the interpolation window (${interp.spec.window} latents) must be the keyframe spacing + 1 = ${S + 1} ` +
        `(the prediction model ${pred.source} has latent_stride ${S})`,
    );
  if (pred.latent.join() !== interp.latent.join()) throw new Error(`${pred.source} and ${interp.source}: latent shapes differ ([${pred.latent}] vs [${interp.latent}])`);
  const isamp = o.interpSampling ?? o.sampling;
  checkWindowSampling(pred.spec, o.sampling, pred.source);
  checkWindowSampling(interp.spec, isamp, interp.source);
  const plan = hierarchicalPlanFor(pred, o);
  const [h, w, c] = interp.latent;
  const imodel = microBatched(interp.eps, o.maxBatch);
  const imask = frameMask('interpolation', S + 1);
  const journal = o.journal;
  async function* run(): AsyncGenerator<tf.Tensor5D> {
    const keyState = resumedWindows(journal, 'key_');
    let prev: tf.Tensor5D | null = journal?.stateTensor('prev') ?? null; // last keyframe [n, 1, ...]
    let used = journal?.counter('used', 0) ?? 0; // keyframes consumed
    let pair = journal?.counter('pair', 0) ?? 0;
    const keys = predictionWindows(pred, plan.predCalls, o, 'key', o.sampling, keyState);
    try {
      if (journal) yield* journal.replay();
      if (used >= plan.keyframes) return;
      for await (const fresh of keys) {
        const emitted: tf.Tensor5D[] = []; // this window's chunks, yielded once it is committed
        const take = Math.min(fresh.shape[1], plan.keyframes - used);
        const kf = take === fresh.shape[1] ? fresh : frames(fresh, 0, take);
        if (kf !== fresh) fresh.dispose();
        used += take;
        // The very first keyframe is emitted on its own; later ones close a pair with their predecessor.
        const chain = prev ? (tf.concat([prev, kf], 1) as tf.Tensor5D) : kf.clone(); // [n, 1 + p, ...]
        kf.dispose();
        try {
          const p = chain.shape[1] - 1;
          if (!prev) emitted.push(frames(chain, 0, 1));
          if (p > 0) {
            // Pair windows [n * p, S + 1, ...], video-major: item v * p + i = (key i, key i + 1) of video v.
            const conditions = tf.tidy(() => {
              const parts: tf.Tensor5D[] = [];
              for (let i = 0; i < p; i++) {
                const a = frames(chain, i, i + 1);
                const b = frames(chain, i + 1, i + 2);
                parts.push(tf.concat([a, tf.zeros([o.n, S - 1, h, w, c]), b], 1) as tf.Tensor5D); // [n, S + 1, ...]
              }
              return tf.reshape(tf.stack(parts, 1), [o.n * p, S + 1, h, w, c]) as tf.Tensor5D;
            });
            const rngs: Rng[] = [];
            for (let v = 0; v < o.n; v++) for (let i = 0; i < p; i++) rngs.push(new Rng(o.seed).fork(`video-${v}`).fork(`interp-${pair + i}`));
            let filled: tf.Tensor5D;
            try {
              filled = await sampleConditionalWindow({ model: imodel, schedule: interp.schedule, spec: interp.spec, shape: [o.n * p, S + 1, h, w, c], mask: imask, conditions, sampling: isamp, rngs });
            } finally {
              conditions.dispose();
            }
            o.onWindow?.('interp', pair + p - 1, plan.pairs);
            pair += p;
            // Positions 1..S of every pair (the in-betweens and the closing keyframe), in time order.
            const chunk = tf.tidy(() => tf.reshape(tf.slice(tf.reshape(filled, [o.n, p, S + 1, h, w, c]), [0, 0, 1, 0, 0, 0], [-1, -1, S, -1, -1, -1]), [o.n, p * S, h, w, c]) as tf.Tensor5D);
            filled.dispose();
            prev?.dispose();
            prev = frames(chain, p, p + 1);
            emitted.push(chunk);
          } else {
            prev?.dispose();
            prev = frames(chain, p, p + 1);
          }
          journal?.commit(emitted, { key_next: keyState.next, used, pair }, { key_last: keyState.last, prev });
        } catch (e) {
          tf.dispose(emitted);
          throw e;
        } finally {
          chain.dispose();
        }
        let i = 0;
        try {
          for (; i < emitted.length; i++) yield emitted[i];
        } finally {
          for (let r = i + 1; r < emitted.length; r++) emitted[r].dispose(); // the consumer stopped early
        }
        if (used >= plan.keyframes) break;
      }
    } finally {
      prev?.dispose();
      await keys.return(undefined);
      keyState.last?.dispose(); // when the windows never started
    }
  }
  return { plan, latents: trimmed(run(), plan.latents) };
}
