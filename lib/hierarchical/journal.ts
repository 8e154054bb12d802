/**
 * The latent journal of a long-video stream (generate.ts), so that sampling killed at any moment
 * (SIGKILL included) continues from its last finished window instead of its first.
 *
 * After each window the stream commits the latent chunks it is about to yield and the state it
 * needs to go on (the latents the next window conditions on, its window counters): one
 * `window-<k>.npz` per commit, then `state.json` naming how many commits count (both written
 * atomically, in that order, so a commit torn by a kill is ignored and overwritten). A resumed
 * stream first replays the committed chunks, then continues from the saved state. Every window
 * draws its noise from Rng(seed) forked by video and window index (generate.ts), and the saved
 * latents are the float32 values themselves, so the continued stream equals an uninterrupted one
 * exactly. The decoder and the frame sinks simply run again over the replayed latents (decoding
 * is a small part of the work).
 *
 * `identity` holds everything the latents depend on (models, seed, s, w, sampler, ...): a journal
 * written with another identity is discarded, never continued.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeJsonAtomic } from '../io/atomic';
import { NpyArrayInput, readNpz, writeNpz } from '../io/npy';

const STATE_FILE = 'state.json';
const FORMAT = 'lvdm-latent-journal/1';

interface JournalFile {
  format: string;
  identity: unknown;
  /** Commits that count: window-0.npz .. window-<commits - 1>.npz. */
  commits: number;
  counters: Record<string, number>;
  /** Wall seconds spent on the committed windows, over all the runs that wrote them. */
  seconds: number;
}

/** Whether `dir` holds a journal with at least one commit (an interrupted run to continue). */
export function hasJournal(dir: string): boolean {
  return fs.existsSync(path.join(dir, STATE_FILE));
}

function windowFile(dir: string, k: number): string {
  return path.join(dir, `window-${k}.npz`);
}

function toArray(t: tf.Tensor): NpyArrayInput {
  return { shape: t.shape.slice(), data: Float32Array.from(t.dataSync()) };
}

function toTensor(a: NpyArrayInput, source: string): tf.Tensor5D {
  if (a.shape.length !== 5 || !(a.data instanceof Float32Array)) throw new Error(`${source}: expected a float32 array of rank 5, got shape [${a.shape}]`);
  return tf.tensor5d(a.data, a.shape as [number, number, number, number, number]);
}

export class LatentJournal {
  private commits = 0;
  private counters: Record<string, number> = {};
  /** Windows committed by an earlier, interrupted run (0: starting from the beginning). */
  readonly resumedCommits: number;
  /** Wall seconds the earlier runs spent on those windows. */
  readonly resumedSeconds: number;
  private readonly opened = Date.now();

  /** Opens the journal in `dir`: continues one with the same identity, discards any other. */
  constructor(
    readonly dir: string,
    private readonly identity: unknown,
    log: (msg: string) => void = () => undefined,
  ) {
    const file = path.join(dir, STATE_FILE);
    let prior: JournalFile | null = null;
    if (fs.existsSync(file)) {
      try {
        prior = JSON.parse(fs.readFileSync(file, 'utf8')) as JournalFile;
      } catch (e) {
        log(`${file}: unreadable (${(e as Error).message}); starting from the first window`);
      }
    }
    let seconds = 0;
    if (prior && prior.format === FORMAT && JSON.stringify(prior.identity) === JSON.stringify(identity)) {
      this.commits = prior.commits;
      this.counters = { ...prior.counters };
      seconds = prior.seconds ?? 0;
    } else {
      if (prior) log(`${file}: written for other settings (models, seed, s, w or sampler differ); starting from the first window`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    this.resumedCommits = this.commits;
    this.resumedSeconds = seconds;
    fs.mkdirSync(dir, { recursive: true });
  }

  /** A counter saved by the last commit, or `fallback` when nothing was committed. */
  counter(name: string, fallback: number): number {
    return this.counters[name] ?? fallback;
  }

  /** A saved state tensor of the last commit (a new tensor the caller owns), or null. */
  stateTensor(name: string): tf.Tensor5D | null {
    if (this.commits === 0) return null;
    const file = windowFile(this.dir, this.commits - 1);
    const a = readNpz(file).get(`state_${name}`);
    return a ? toTensor(a, `${file}: state_${name}`) : null;
  }

  /** The committed chunks of the earlier run, in order (the consumer disposes them). */
  async *replay(): AsyncGenerator<tf.Tensor5D> {
    for (let k = 0; k < this.resumedCommits; k++) {
      const file = windowFile(this.dir, k);
      const arrays = readNpz(file);
      for (let i = 0; arrays.has(`chunk_${i}`); i++) yield toTensor(arrays.get(`chunk_${i}`)!, `${file}: chunk_${i}`);
    }
  }

  /** Records a finished window: the chunks the stream yields for it, and the state after it. */
  commit(chunks: readonly tf.Tensor5D[], counters: Record<string, number>, tensors: Record<string, tf.Tensor5D | null>): void {
    const arrays: Record<string, NpyArrayInput> = {};
    chunks.forEach((c, i) => (arrays[`chunk_${i}`] = toArray(c)));
    for (const [name, t] of Object.entries(tensors)) if (t) arrays[`state_${name}`] = toArray(t);
    writeNpz(windowFile(this.dir, this.commits), arrays);
    this.commits += 1;
    this.counters = { ...counters };
    const seconds = this.resumedSeconds + (Date.now() - this.opened) / 1000;
    const state: JournalFile = { format: FORMAT, identity: this.identity, commits: this.commits, counters: this.counters, seconds };
    writeJsonAtomic(path.join(this.dir, STATE_FILE), state);
  }

  /** Deletes the journal (the run it belongs to finished). */
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
