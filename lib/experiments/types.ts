/**
 * The contract between the experiment runner (plan + execute), its results layer (tables, plots,
 * report) and the job queue. Everything here is plain JSON-serialisable data: a task travels to a
 * worker process or a BullMQ job as JSON and is executed there by `runTask`.
 *
 * Flow: experiment YAML -> `planExperiment` -> Plan (a DAG of tasks, each with a content key) ->
 * `runTask` per task (local workers or queue workers) -> one `PointResult` per sweep point ->
 * results table / plots / report.
 */

/** What a task does. Training kinds produce weights; `sample` produces videos; `evaluate` metrics. */
export type TaskKind =
  | 'prepare' // real data sets -> uint8 shards (data/shards)
  | 'autoencoder' // video autoencoder
  | 'decoder' // an autoencoder's decoder fine-tuned on noised latents (encoder frozen)
  | 'short' // short-video latent diffusion model
  | 'prediction' // long-video prediction model (mask channel)
  | 'interpolation' // long-video interpolation model (mask channel)
  | 'real' // held-out real clips (and their autoencoder reconstructions) for the metric floors
  | 'sample' // one sweep point's videos
  | 'evaluate'; // one sweep point's metrics -> PointResult

/** Long-video generation mode of a sweep point; 'short' for short-clip sampling. */
export type SweepMode = 'autoregressive' | 'hierarchical' | 'short';

/** The swept values of one sweep point (the grid's coordinates). */
export interface SweepValues {
  mode: SweepMode;
  /** Conditional latent perturbation strength (null: clean conditions / not applicable). */
  s: number | null;
  /** Unconditional guidance scale. */
  w: number;
  /** Video length in frames. */
  frames: number;
  /** Sampler steps. */
  steps: number;
  /** DDIM eta, where the grid sets it (else sweep.eta applies and the point has none). */
  eta?: number;
  seed: number;
}

export interface TaskSpec {
  /** Unique within the plan, readable: 'autoencoder', 'prediction', 'sample/hierarchical-s100-w0.1-f1024-st20-seed1'. */
  id: string;
  kind: TaskKind;
  /** Content key: sha256 over kind, the resolved config of this task, and the keys of its inputs (hex, 16 chars used in paths). */
  key: string;
  /** ids of the tasks whose outputs this one reads. */
  deps: string[];
  /** The fully resolved config this task runs with (validated; JSON). */
  config: Record<string, unknown>;
  /** Sweep coordinates for 'sample' / 'evaluate' tasks. */
  point?: SweepValues;
  /** Output folder relative to the run folder: `store/<kind>/<key>` (written atomically, then a DONE marker). */
  outDir: string;
}

export type TaskState = 'done' | 'stale' | 'todo';

export interface Plan {
  /** Experiment name and the file it came from (with includes resolved). */
  name: string;
  file: string;
  /** The `--set key.path=value` overrides the plan was made with (so its commands can be reproduced). */
  set?: string[];
  /** Absolute run folder. */
  runDir: string;
  /** The resolved experiment (after includes and --set), as stored in the run folder. */
  resolved: Record<string, unknown>;
  /** Topologically ordered. */
  tasks: TaskSpec[];
}

/** One row of the results table: a finished sweep point. Written as JSON by each 'evaluate' task. */
export interface PointResult extends SweepValues {
  experiment: string;
  /** Data set or synthetic family, e.g. 'ucf101', 'synthetic-sky'. */
  dataset: string;
  /** 'fvd' with real I3D weights, else the named proxy ('fvd_proxy'). */
  metric: 'fvd' | 'fvd_proxy';
  fvd: number;
  kvd: number;
  /** Per frame window of `window` frames (empty when the video is shorter than two windows). */
  window: number;
  fvd_by_window: number[];
  kvd_by_window: number[];
  /** Clips per metric computation (generated, real). */
  n_fake: number;
  n_real: number;
  /** Seconds spent sampling + evaluating this point. */
  wall_s: number;
  /** The full metric protocol as metrics/evaluate records it. */
  protocol: Record<string, unknown>;
  /** Sample videos of this point, relative to the run folder (GIF first, for the report). */
  samples: string[];
  /**
   * Synthetic shapes only: fraction of generated clips (windows of `window` frames) whose object
   * keeps a consistent shape and velocity (metrics/object-consistency.ts), overall and per window.
   */
  object_consistency?: number;
  object_consistency_by_window?: number[];
  /** The same reading without the edge-sharpness test (blurry decoders): object found, constant area and velocity. */
  motion_consistency?: number;
  /** Fraction of clips that are consistent and whose object reads as a square or triangle (metrics/shape-kind.ts). */
  polygons?: number;
  /** Fraction of clips that are consistent and whose object's outline is regular: a disc, square or triangle, not a lumpy blob (metrics/shape-kind.ts). */
  regular?: number;
}

/** The floors a metric is read against (same protocol as the points). */
export interface MetricFloors {
  real_vs_real: { fvd: number; kvd: number };
  reconstruction: { fvd: number; kvd: number };
  /** Synthetic shapes only: object consistency of held-out real clips and of their reconstructions. */
  object_consistency?: { real: number; reconstruction: number; motion_real: number; motion_reconstruction: number; polygons_real?: number; polygons_reconstruction?: number; regular_real?: number; regular_reconstruction?: number };
}

/** A training stage's loss curve (metrics.jsonl of its run folder). */
export interface LossCurve {
  stage: string;
  steps: number[];
  loss: number[];
  /** Curves of one group share a y axis; groups get a panel each (the autoencoder's loss, a
   * negative log-likelihood, and the diffusion models' noise-prediction losses differ in units). */
  group?: string;
}

/** Everything `lvdm report` needs, read from a run folder by the runner. */
export interface ReportInput {
  name: string;
  description?: string;
  file: string;
  /** The run's `--set key=value` overrides (the description is the file's and may not reflect them). */
  overrides?: string[];
  resolved: Record<string, unknown>;
  points: PointResult[];
  floors?: MetricFloors;
  curves: LossCurve[];
  /** Baseline setting for paired comparisons, e.g. { mode: 'autoregressive', s: 0, w: 0 }. */
  baseline?: Partial<SweepValues>;
  /** Where the report is written (its folder is the run folder). */
  runDir: string;
  /** Per-stage outputs for the summary table: id -> folder relative to runDir. */
  stages: { id: string; kind: TaskKind; outDir: string; wall_s?: number }[];
}
