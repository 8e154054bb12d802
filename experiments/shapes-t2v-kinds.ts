/**
 * Prompt following of a text-to-video model on the demo's shapes family (experiments/shapes-t2v.yaml):
 * does the generated clip draw the object its caption names? For every finished short point of a
 * run, each clip's dominant object is tracked, its kind read and compared with the clip's prompt
 * (metrics/shapes-prompt-following.ts: colour named, kind named, polygons), next to the same
 * readings of the held-out real clips whose captions are the prompts (the ceiling: what the reader
 * gets right on real clips), and how many prompts name each kind.
 *
 *   node --import tsx experiments/shapes-t2v-kinds.ts --run runs/shapes-t2v [--samples DIR ...] [--json FILE]
 * --samples adds the output folders of `lvdm sample --prompts FILE --npz` (e.g. a training snapshot
 * sampled with the held-out captions). Prints a markdown table; --json writes the rows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readNpz } from '../lib/io/npy';
import { writeJsonAtomic } from '../lib/io/atomic';
import { readPlan, taskDir, taskInputs, taskState } from '../lib/experiments/plan';
import { SAMPLE_FILE, VIDEOS_FILE } from '../lib/experiments/execute';
import type { ExperimentConfig } from '../lib/config/schema';
import { heldOutCaptionedClips } from '../lib/lvdm/captions';
import { shapesOfCaption, shapesPromptFollowing, type ShapesPromptFollowing } from '../metrics/shapes-prompt-following';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { run: { type: 'string' }, samples: { type: 'string', multiple: true }, json: { type: 'string' } } });
  if (!values.run) throw new Error('--run DIR is required (a run folder of experiments/shapes-t2v.yaml)');
  const plan = readPlan(values.run);
  const rows: (ShapesPromptFollowing & { setting: string })[] = [];
  let prompts: string[] | undefined;
  let modelConfig: ExperimentConfig | undefined;
  const readConfig = (dir: string): ExperimentConfig => {
    // the model stage's resolved config (defaults applied) as the trainer wrote it; '.partial' while it trains
    const f = [path.join(dir, 'config.json'), path.join(`${dir}.partial`, 'config.json')].find((x) => fs.existsSync(x));
    if (!f) throw new Error(`${dir}: no config.json (has the text-to-video stage started?)`);
    return JSON.parse(fs.readFileSync(f, 'utf8')) as ExperimentConfig;
  };
  for (const t of plan.tasks) {
    if (t.kind !== 'sample' || !t.point || t.point.mode !== 'short') continue;
    modelConfig ??= readConfig(taskDir(plan, taskInputs(plan, t).model));
    if (taskState(plan, t) !== 'done') continue;
    const dir = taskDir(plan, t);
    const sample = JSON.parse(fs.readFileSync(path.join(dir, SAMPLE_FILE), 'utf8')) as { prompts?: string[]; cfg_scale?: number };
    if (!sample.prompts) throw new Error(`${path.join(dir, SAMPLE_FILE)}: no prompts (not a text-to-video point)`);
    prompts = sample.prompts;
    const a = readNpz(path.join(dir, VIDEOS_FILE)).get('videos');
    if (!a) throw new Error(`${path.join(dir, VIDEOS_FILE)}: no 'videos'`);
    rows.push({ setting: `w=${t.point.w} (s_cfg ${sample.cfg_scale}) seed ${t.point.seed}`, ...shapesPromptFollowing(a.data as Uint8Array, a.shape, sample.prompts.slice(0, a.shape[0])) });
  }
  if (!modelConfig) throw new Error(`${values.run}: no short sample point in its plan`);
  for (const dir of values.samples ?? []) {
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'samples.json'), 'utf8')) as { prompts?: string[]; cfg?: number; step?: number; seed?: number };
    if (!info.prompts) throw new Error(`${path.join(dir, 'samples.json')}: no prompts (not a text-to-video sample)`);
    prompts ??= info.prompts;
    const a = readNpz(path.join(dir, 'samples.npz')).get('videos');
    if (!a) throw new Error(`${path.join(dir, 'samples.npz')}: no 'videos' (sample with --npz)`);
    rows.push({ setting: `${path.basename(dir)}: step ${info.step}, s_cfg ${info.cfg}, seed ${info.seed}`, ...shapesPromptFollowing(a.data as Uint8Array, a.shape, info.prompts) });
  }
  if (!prompts) throw new Error(`${values.run}: no finished short sample point, and no --samples`);
  // The held-out real clips whose captions are the prompts (the same clips the runner took them from).
  const n = rows[0].clips;
  const real = await heldOutCaptionedClips(modelConfig, n);
  const per = real[0].video.length;
  const all = new Uint8Array(n * per);
  real.forEach((c, i) => all.set(c.video, i * per));
  rows.push({ setting: 'real held-out clips (the prompts\' own)', ...shapesPromptFollowing(all, [n, real[0].frames, real[0].height, real[0].width, 3], real.map((c) => c.caption)) });
  const byKind = new Map<string, number>();
  for (const p of prompts.slice(0, n)) for (const s of new Set(shapesOfCaption(p).map((x) => x.kind))) byKind.set(s, (byKind.get(s) ?? 0) + 1);
  const pct = (a: number, b: number): string => (b > 0 ? `${a}/${b} (${((100 * a) / b).toFixed(0)}%)` : '-');
  console.log('| setting | consistent | object found | colour named | kind named (of colour named) | polygons | disc / square / triangle |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.setting} | ${pct(r.consistent, r.clips)} | ${pct(r.object, r.clips)} | ${pct(r.colourNamed, r.object)} | ${pct(r.kindNamed, r.colourNamed)} | ${pct(r.polygons, r.object)} | ${r.kinds.disc} / ${r.kinds.square} / ${r.kinds.triangle} |`);
  console.log(`\nprompts naming each kind (of ${n}): ${[...byKind].map(([k, c]) => `${k} ${c}`).join(', ')}`);
  if (values.json) writeJsonAtomic(values.json, { rows, prompts: prompts.slice(0, n) });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
