/**
 * `lvdm data prepare|stats`: decode a data set once into uint8 shards, and report what a data
 * set (raw or prepared) holds. The sub-subcommand is the first positional argument.
 */
import type { Command, ParsedValues } from '../types';
import { DATASET_KINDS, type DatasetKind, type Split } from '../../../data/layouts';
import { prepareShards } from '../../../data/shards';
import { type DataStats, formatStats, statsFromIndex, statsFromRaw } from '../../../data/stats';

const USAGE_EXAMPLES = `Subcommands:
  prepare   decode videos once into compact uint8 shards + index.json (resumable; rerun to continue)
  stats     report videos, clips, classes, frames, resolutions and skipped files

Examples:
  lvdm data prepare --dataset ucf101 --root ~/data/UCF101 --out data/ucf101-64 --size 64 --frames 16 --stride 4
  lvdm data prepare --dataset sky --root ~/data/sky_timelapse --split train --out data/sky-64 --size 64 --frames 16
  lvdm data prepare --dataset webvid --root ~/data/webvid --csv results_10M_val.csv --out data/webvid-64 --size 64
  lvdm data stats data/ucf101-64 --json
  lvdm data stats --dataset taichi --root ~/data/taichi --split test --frames 16 --stride 4

Layouts: ucf101 = UCF-101/<Class>/*.avi + ucfTrainTestlist/; sky = root/{train,test}/<video>/<clip>/*.jpg;
taichi = root/{train,test}/**/*.{mp4,avi,webm} or frame folders; webvid = CSV (videoid|path, name|caption)
+ videos; folder = any tree of videos or frame folders (first-level subfolders become classes).`;

function str(v: ParsedValues[string]): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function int(v: ParsedValues[string], name: string, dflt?: number): number | undefined {
  const s = str(v);
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${s}'`);
  return n;
}

function num(v: ParsedValues[string], name: string): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!(n > 0)) throw new Error(`--${name} must be a positive number, got '${s}'`);
  return n;
}

/** '--size 64' (square) or '--size 96x64' (width x height). */
function parseSize(v: ParsedValues[string]): { width: number; height: number } {
  const s = str(v) ?? '64';
  const m = /^(\d+)(?:x(\d+))?$/.exec(s);
  if (!m || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < 1)) throw new Error(`--size must be S or WxH (e.g. 64 or 96x64), got '${s}'`);
  return { width: Number(m[1]), height: Number(m[2] ?? m[1]) };
}

function dataset(v: ParsedValues[string]): DatasetKind {
  const s = str(v);
  if (!s) throw new Error(`--dataset is required (one of ${DATASET_KINDS.join(', ')})`);
  if (!(DATASET_KINDS as readonly string[]).includes(s)) throw new Error(`--dataset must be one of ${DATASET_KINDS.join(', ')}, got '${s}'`);
  return s as DatasetKind;
}

function split(v: ParsedValues[string]): Split | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  if (s !== 'train' && s !== 'test' && s !== 'all') throw new Error(`--split must be train, test or all, got '${s}'`);
  return s;
}

function required(v: ParsedValues[string], name: string): string {
  const s = str(v);
  if (!s) throw new Error(`--${name} is required`);
  return s;
}

/** Which raw data set to read (shared by prepare and stats). */
function rawSource(values: ParsedValues) {
  return {
    dataset: dataset(values.dataset),
    root: required(values.root, 'root'),
    split: split(values.split),
    fold: int(values.fold, 'fold'),
    splitsDir: str(values.splits),
    csv: str(values.csv),
  };
}

/** How clips are cut from each video (shared by prepare and stats). */
function clipSampling(values: ParsedValues) {
  return {
    frames: int(values.frames, 'frames', 16) as number,
    stride: int(values.stride, 'stride', 1) as number,
    fps: num(values.fps, 'fps'),
    frameFps: num(values['frame-fps'], 'frame-fps'),
  };
}

async function prepare(values: ParsedValues): Promise<number> {
  const quiet = values.quiet === true;
  const { width, height } = parseSize(values.size);
  const out = required(values.out, 'out');
  let last = 0;
  const r = await prepareShards({
    ...rawSource(values),
    out,
    width,
    height,
    ...clipSampling(values),
    shardMB: num(values['shard-mb'], 'shard-mb'),
    jobs: int(values.jobs, 'jobs'),
    progress: (p) => {
      const now = Date.now();
      if (quiet || (now - last < 2000 && p.done < p.total)) return;
      last = now;
      process.stderr.write(`lvdm data: ${p.done}/${p.total} videos processed, ${p.skipped} skipped\n`);
    },
  });
  const s = statsFromIndex(out);
  if (!quiet) {
    process.stdout.write(`${r.resumed ? 'continued' : 'prepared'} ${out}: ${r.processed} video(s) processed in this run\n`);
    process.stdout.write(`${formatStats(s)}\n`);
  }
  return 0;
}

async function stats(values: ParsedValues, positionals: string[]): Promise<number> {
  const dir = str(values.dir) ?? positionals[1];
  let s: DataStats;
  if (dir) {
    s = statsFromIndex(dir, { frames: int(values.frames, 'frames'), stride: int(values.stride, 'stride') });
  } else {
    s = await statsFromRaw({
      ...rawSource(values),
      ...clipSampling(values),
      verify: values.verify === true,
      jobs: int(values.jobs, 'jobs'),
      warn: (m) => void process.stderr.write(`lvdm data: ${m}\n`),
    });
  }
  process.stdout.write(values.json === true ? `${JSON.stringify(s, null, 2)}\n` : `${formatStats(s)}\n`);
  return 0;
}

export const command: Command = {
  name: 'data',
  summary: 'Prepare data sets as uint8 shards (data prepare) and report on them (data stats)',
  description: USAGE_EXAMPLES,
  positionals: true,
  options: {
    dataset: { type: 'string', help: `data set layout: ${DATASET_KINDS.join(' | ')}` },
    root: { type: 'string', help: 'data set root folder' },
    out: { type: 'string', help: 'prepare: output folder for shards + index.json' },
    dir: { type: 'string', help: 'stats: a prepared folder (or give it as the second positional)' },
    split: { type: 'string', help: 'train | test | all (default train; webvid/folder: all)' },
    fold: { type: 'string', help: 'UCF-101 split fold 1-3 (default 1)' },
    splits: { type: 'string', help: 'UCF-101 folder with classInd.txt and the split lists (default: found beside UCF-101/)' },
    csv: { type: 'string', help: 'WebVid CSV file (default: the only *.csv in --root)' },
    size: { type: 'string', help: 'frame size S (square) or WxH; short side resized, centre crop (default 64)' },
    frames: { type: 'string', help: 'clip length L (default 16)' },
    stride: { type: 'string', help: 'frame stride K: prepare keeps every K-th frame (default 1)' },
    fps: { type: 'string', help: 'resample videos to this frame rate first' },
    'frame-fps': { type: 'string', help: 'frame rate of frame folders (default 25)' },
    'shard-mb': { type: 'string', help: 'prepare: target shard size in MiB (default 64)' },
    jobs: { type: 'string', help: 'videos decoded / probed concurrently (default 2 / 4)' },
    verify: { type: 'boolean', help: 'stats on raw videos: decode every file to find truncated ones (slow)' },
    json: { type: 'boolean', help: 'stats: print JSON' },
    quiet: { type: 'boolean', help: 'prepare: no progress or summary output' },
  },
  async run(values, positionals) {
    const sub = positionals[0];
    try {
      if (sub === 'prepare') return await prepare(values);
      if (sub === 'stats') return await stats(values, positionals);
    } catch (e) {
      process.stderr.write(`lvdm data ${sub}: ${(e as Error).message}\n`);
      return 1;
    }
    process.stderr.write(`lvdm data: expected a subcommand, 'prepare' or 'stats' (got ${sub ? `'${sub}'` : 'none'})\n\n${USAGE_EXAMPLES}\n`);
    return 2;
  },
};
