/** `lvdm consistency`: the fraction of generated shapes clips whose object keeps a consistent shape and velocity. */
import { Command, ParsedValues } from '../types';
import { flag, int, list, num, str } from '../args';
import { writeJsonAtomic } from '../../io/atomic';
import { Row, tableFromRows, tableMarkdown } from '../../results/table';
import { CONSISTENCY_DEFAULTS, CONSISTENCY_TESTS, ConsistencyOptions, ConsistencyThresholds, VALUE_RANGES, ValueRange } from '../../../metrics/object-consistency';
import { VideoConsistency, consistencySheet, findSampleSets, videoConsistency } from '../../../metrics/object-consistency-io';
import { writePng } from '../../io/image';
import { calibrate, kindConfusion } from '../../../metrics/object-consistency-calibration';

const DESCRIPTION = `
PATH is a sample set: a .npz/.npy holding N x T x H x W x 3 videos (uint8, as 'lvdm run' and
'lvdm sample --npz' write them; float arrays with --range), a folder of video files (mp4, gif, ...),
a sample folder holding videos.npz, or a run folder (every videos.npz below it, one line each).
Each clip is judged by metrics/object-consistency.ts (method and calibration:
metrics/OBJECT-CONSISTENCY.md): the object is found in every frame, its edges are sharp, its
area is constant and its centroid moves at constant velocity (reflections off the walls allowed).

Thresholds (--threshold NAME=VALUE, repeatable; pixel values are for 32 x 32 frames and scale
with the frame size): ${Object.entries(CONSISTENCY_DEFAULTS).map(([k, v]) => `${k}=${v}`).join(', ')}.

Examples:
  lvdm consistency runs/shapes/store/sample/<key>/videos.npz
  lvdm consistency runs/shapes --no-table
  lvdm consistency long/videos.npz --window 16 --json --out consistency.json
  lvdm consistency --calibrate --n 200`;

function thresholds(values: ParsedValues): ConsistencyOptions {
  const out: ConsistencyOptions = {};
  for (const item of list(values, 'threshold')) {
    const m = /^(\w+)=(.+)$/.exec(item);
    if (!m || !(m[1] in CONSISTENCY_DEFAULTS)) {
      throw new Error(`--threshold: expected NAME=VALUE with NAME one of ${Object.keys(CONSISTENCY_DEFAULTS).join(', ')}, got '${item}'`);
    }
    const v = Number(m[2]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--threshold ${m[1]}: expected a number >= 0, got '${m[2]}'`);
    out[m[1] as keyof ConsistencyThresholds] = v;
  }
  const range = str(values, 'range');
  if (range !== undefined) {
    if (!(VALUE_RANGES as readonly string[]).includes(range)) throw new Error(`--range: expected one of ${VALUE_RANGES.join(' | ')}, got '${range}'`);
    out.range = range as ValueRange;
  }
  return out;
}

const fix = (x: number, d: number): number | null => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);

/** The per-clip summary written to JSON and shown in the table. */
function clipRows(r: VideoConsistency): Row[] {
  return r.perClip.map((c, i) => ({
    clip: r.keys[i],
    consistent: c.consistent ? 'yes' : 'no',
    found: `${c.found}/${c.frames}`,
    area: fix(c.area, 1),
    area_cv: fix(c.areaCv, 3),
    speed: fix(c.speed, 2),
    accel: fix(c.accel, 2),
    max_accel: fix(c.maxAccel, 2),
    edge: fix(c.edge, 2),
    kind: c.kind ?? '',
    a2: fix(c.outline.a2, 3),
    a3: fix(c.outline.a3, 3),
    a4: fix(c.outline.a4, 3),
    reason: c.reason,
  }));
}

function summaryLine(r: VideoConsistency): string {
  const fails = CONSISTENCY_TESTS.filter((k) => r.failures[k] > 0).map((k) => `${k} ${r.failures[k]}`);
  const kinds = (k: Record<string, number>): string => Object.entries(k).map(([n, c]) => `${n} ${c}`).join(', ');
  return (
    `${r.source}: object consistency ${r.fraction.toFixed(4)} (${r.consistent}/${r.clips} clips consistent)${fails.length ? `; failed first: ${fails.join(', ')}` : ''}` +
    `; shape kinds: ${kinds(r.kinds)} (consistent clips: ${kinds(r.consistentKinds)})` +
    `; regular outlines (a disc, square or triangle, not a lumpy blob): ${r.consistentRegular} of the ${r.consistent} consistent clips`
  );
}

export const command: Command = {
  name: 'consistency',
  summary: 'fraction of generated shapes clips whose object keeps a consistent shape and velocity',
  description: DESCRIPTION,
  positionals: true,
  options: {
    range: { type: 'string', help: `value range of float arrays: ${VALUE_RANGES.join(' | ')} (default [-1, 1]; uint8: [0, 255])` },
    key: { type: 'string', help: ".npz member holding the videos (default 'videos', else the only 5-D array)" },
    window: { type: 'string', help: 'judge consecutive windows of this many frames of each video (long videos)' },
    threshold: { type: 'string', multiple: true, help: 'override a threshold, e.g. --threshold maxAreaCv=0.3 (repeatable)' },
    json: { type: 'boolean', help: 'print one JSON object (an array for several sample sets)' },
    out: { type: 'string', help: 'also write the JSON to this file' },
    'no-table': { type: 'boolean', help: 'summary lines only, no per-clip table' },
    sheet: { type: 'string', help: 'write a contact sheet PNG of the first --sheet-clips clips (green frame: consistent, red: not; black cross: tracked centroid)' },
    'sheet-clips': { type: 'string', help: 'clips on the contact sheet (default 16)' },
    calibrate: { type: 'boolean', help: 'score real synthetic-shapes clips and corrupted copies (shuffled, spliced, blurred, noisy), and the shape-kind reading on single-shape clips' },
    n: { type: 'string', help: 'clips per set for --calibrate (default 200)' },
    seed: { type: 'string', help: 'seed for --calibrate (default 0)' },
    'blur-sigma': { type: 'string', help: "--calibrate: Gaussian blur sigma of the 'blurred' set, px at 32 x 32 (default 2.5)" },
    'noise-std': { type: 'string', help: "--calibrate: noise std of the 'noisy' set, 0-255 units (default 60)" },
  },
  async run(values, positionals) {
    const opts = thresholds(values);
    if (flag(values, 'calibrate')) {
      if (positionals.length) throw new Error('lvdm consistency --calibrate takes no PATH');
      const n = int(values, 'n', 200) ?? 200;
      if (n < 2) throw new Error(`--n: expected an integer >= 2, got ${n}`);
      const rows = calibrate(n, { seed: int(values, 'seed', 0), consistency: opts, blurSigma: num(values, 'blur-sigma'), noiseStd: num(values, 'noise-std') });
      const out = rows.map((r) => ({ set: r.set, clips: r.clips, fraction: r.fraction, ...r.failures }));
      const kinds = kindConfusion(Math.min(n, 150), { seed: int(values, 'seed', 0) }).map((r) => ({ family: r.family, truth: r.truth, clips: r.clips, ...r.read, regular: r.regular }));
      if (flag(values, 'json')) console.log(JSON.stringify({ consistency: out, kinds }));
      else console.log(`${tableMarkdown(tableFromRows(out))}\n\nshape kind read from single-shape real clips (rows: drawn kind; columns: read, and how many have a regular outline):\n${tableMarkdown(tableFromRows(kinds))}`);
      const file = str(values, 'out');
      if (file) writeJsonAtomic(file, { consistency: out, kinds });
      return 0;
    }
    if (positionals.length !== 1) throw new Error('usage: lvdm consistency PATH [--window W] [--json] (or lvdm consistency --calibrate)');
    const window = int(values, 'window');
    const sheet = str(values, 'sheet');
    const keepClips = sheet ? (int(values, 'sheet-clips', 16) ?? 16) : 0;
    const results: VideoConsistency[] = [];
    for (const set of findSampleSets(positionals[0])) {
      results.push(await videoConsistency(set, { ...opts, key: str(values, 'key'), window, keepClips: results.length === 0 ? keepClips : 0 }));
    }
    if (sheet) {
      const img = consistencySheet(results[0].shown);
      writePng(sheet, img.data, img.width, img.height);
      console.error(`contact sheet of ${results[0].shown.length} clips of ${results[0].source}: ${sheet}`);
    }
    const json = results.map((r) => ({
      source: r.source, fraction: r.fraction, consistent: r.consistent, clips: r.clips, videos: r.videos,
      failures: r.failures, thresholds: r.thresholds, per_clip: clipRows(r).map((row) => ({ ...row, consistent: row.consistent === 'yes' })),
    }));
    const file = str(values, 'out');
    if (file) writeJsonAtomic(file, json.length === 1 ? json[0] : json);
    if (flag(values, 'json')) {
      console.log(JSON.stringify(json.length === 1 ? json[0] : json));
      return 0;
    }
    for (const r of results) {
      if (!flag(values, 'no-table')) console.log(`${tableMarkdown(tableFromRows(clipRows(r)))}\n`);
      console.log(summaryLine(r));
    }
    return 0;
  },
};
