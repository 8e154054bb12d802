/**
 * Class following of a class-conditional short model on the shapes families
 * (experiments/shapes-class.yaml; classes = the set of kinds a clip shows, data/synthetic.ts
 * SYNTHETIC_SHAPE_CLASSES): does a clip asked for 'square' draw a square? Each clip's dominant
 * object is tracked and its kind read from its outline (metrics/object-consistency.ts,
 * metrics/shape-kind.ts). Per guidance weight w, pooled over the sweep's seeds:
 *   - consistent: clips whose object passes every consistency test;
 *   - polygons: consistent clips whose object reads as a square or a triangle;
 *   - kind asked: of the consistent clips, those whose object's kind is one of its class's kinds;
 *   - kind-blind: the same count against the next clip's label (a reader that ignores the label
 *     scores this on these clips), so "kind asked" above it is the label at work;
 *   - polygons asked: of the clips whose class has no disc (square, triangle, square+triangle),
 *     those drawn as a consistent square or triangle.
 * The last row reads the held-out real clips with their own labels (the runner's labels: the
 * ceiling of the reading). --samples adds `lvdm sample --class ... --npz` folders.
 *
 *   node --import tsx experiments/shapes-class-kinds.ts --run runs/shapes-class [--samples DIR ...] [--json FILE]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { writeJsonAtomic } from '../lib/io/atomic';
import { readPlan, taskDir, taskInputs, taskState } from '../lib/experiments/plan';
import { SAMPLE_FILE, VIDEOS_FILE } from '../lib/experiments/execute';
import type { ExperimentConfig } from '../lib/config/schema';
import { heldOutClips } from '../lib/lvdm/captions';
import { SYNTHETIC_SHAPE_KINDS, shapeClassKinds } from '../data/synthetic';
import { objectConsistency, type ClipConsistency } from '../metrics/object-consistency';
import { videoConsistency } from '../metrics/object-consistency-io';
import { isPolygon } from '../metrics/shape-kind';

interface Reading {
  setting: string;
  clips: number;
  consistent: number;
  polygons: number;
  kindAsked: number;
  kindBlind: number;
  /** Clips whose class has no disc, and those of them drawn as a consistent square or triangle. */
  noDisc: number;
  polygonsAsked: number;
}

const DISC = SYNTHETIC_SHAPE_KINDS.indexOf('disc');

/** Whether the clip's object is a kind of class `label`. */
function askedKind(c: ClipConsistency, label: number): boolean {
  return c.kind !== null && shapeClassKinds(label).some((k) => SYNTHETIC_SHAPE_KINDS[k] === c.kind);
}

function read(setting: string, clips: readonly ClipConsistency[], labels: readonly number[]): Reading {
  if (labels.length < clips.length) throw new Error(`${setting}: ${labels.length} labels for ${clips.length} clips`);
  const consistent = clips.map((c) => c.consistent);
  const count = (f: (c: ClipConsistency, i: number) => boolean): number => clips.reduce((s, c, i) => s + Number(f(c, i)), 0);
  return {
    setting,
    clips: clips.length,
    consistent: count((c) => c.consistent),
    polygons: count((c) => c.consistent && isPolygon(c.kind)),
    kindAsked: count((c, i) => consistent[i] && askedKind(c, labels[i])),
    kindBlind: count((c, i) => consistent[i] && askedKind(c, labels[(i + 1) % clips.length])),
    noDisc: count((_, i) => !shapeClassKinds(labels[i]).includes(DISC)),
    polygonsAsked: count((c, i) => !shapeClassKinds(labels[i]).includes(DISC) && c.consistent && isPolygon(c.kind)),
  };
}

function sum(setting: string, rows: readonly Reading[]): Reading {
  const add = (k: keyof Omit<Reading, 'setting'>): number => rows.reduce((s, r) => s + r[k], 0);
  return {
    setting,
    clips: add('clips'),
    consistent: add('consistent'),
    polygons: add('polygons'),
    kindAsked: add('kindAsked'),
    kindBlind: add('kindBlind'),
    noDisc: add('noDisc'),
    polygonsAsked: add('polygonsAsked'),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { run: { type: 'string' }, samples: { type: 'string', multiple: true }, json: { type: 'string' } } });
  if (!values.run) throw new Error('--run DIR is required (a run folder of experiments/shapes-class.yaml)');
  const plan = readPlan(values.run);
  const byW = new Map<number, Reading[]>();
  let modelConfig: ExperimentConfig | undefined;
  let n = 0;
  for (const t of plan.tasks) {
    if (t.kind !== 'sample' || !t.point || t.point.mode !== 'short' || taskState(plan, t) !== 'done') continue;
    modelConfig ??= JSON.parse(fs.readFileSync(path.join(taskDir(plan, taskInputs(plan, t).model), 'config.json'), 'utf8')) as ExperimentConfig;
    const dir = taskDir(plan, t);
    const sample = JSON.parse(fs.readFileSync(path.join(dir, SAMPLE_FILE), 'utf8')) as { class_labels?: number[] };
    if (!sample.class_labels) throw new Error(`${path.join(dir, SAMPLE_FILE)}: no class_labels (not a class-conditional point)`);
    const r = read(`w=${t.point.w} seed ${t.point.seed}`, (await videoConsistency(path.join(dir, VIDEOS_FILE))).perClip, sample.class_labels);
    n = r.clips;
    byW.set(t.point.w, [...(byW.get(t.point.w) ?? []), r]);
  }
  if (!modelConfig) throw new Error(`${values.run}: no finished short sample point`);
  const rows: Reading[] = [...byW].sort(([a], [b]) => a - b).map(([w, rs]) => sum(`w = ${w} (s_cfg ${1 + w}), ${rs.length} seeds`, rs));
  for (const dir of values.samples ?? []) {
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'samples.json'), 'utf8')) as { class_labels?: number[]; cfg?: number; step?: number; seed?: number };
    if (!info.class_labels) throw new Error(`${path.join(dir, 'samples.json')}: no class_labels (sample with --class)`);
    rows.push(read(`${path.basename(dir)}: step ${info.step}, s_cfg ${info.cfg}, seed ${info.seed}`, (await videoConsistency(path.join(dir, 'samples.npz'))).perClip, info.class_labels));
  }
  // The held-out real clips whose labels the runner gave (the same clips, in the same order).
  const real = await heldOutClips(modelConfig, n);
  const labels = real.map((c) => c.label ?? -1);
  const per = real[0].video.length;
  const all = new Uint8Array(n * per);
  real.forEach((c, i) => all.set(c.video, i * per));
  rows.push(read("real held-out clips (the labels' own)", objectConsistency(all, [n, real[0].frames, real[0].height, real[0].width, 3]).perClip, labels));
  const pct = (a: number, b: number): string => (b > 0 ? `${a}/${b} (${((100 * a) / b).toFixed(0)}%)` : '-');
  console.log('| setting | consistent objects | consistent squares and triangles | kind asked (of consistent) | kind-blind reader (of consistent) | polygons asked: consistent squares and triangles of the clips asked for no disc |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.setting} | ${pct(r.consistent, r.clips)} | ${pct(r.polygons, r.clips)} | ${pct(r.kindAsked, r.consistent)} | ${pct(r.kindBlind, r.consistent)} | ${pct(r.polygonsAsked, r.noDisc)} |`);
  if (values.json) writeJsonAtomic(values.json, { rows, labels });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
