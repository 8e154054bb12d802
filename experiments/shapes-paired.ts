/**
 * Paired comparison of two shapes short models from the same noise (issue 12): each clip of model
 * B is judged against the clip of model A drawn from the same noise, by the object-consistency
 * reading (metrics/object-consistency.ts), its polygons reading (a consistent clip whose
 * object's kind is a square or a triangle) and its regular-outline reading (a consistent clip whose
 * object is a disc, square or triangle rather than a lumpy blob: shape-kind.ts isRegularOutline). Prints the counts and the mean paired difference B - A
 * with a 95% percentile bootstrap over clips (lib/results/stats.ts; resampling seed 0).
 *
 *   node --import tsx experiments/shapes-paired.ts --a SET --a SET ... --b SET --b SET ...
 *
 * SET is a video array as `lvdm run` and `lvdm sample --npz` write it (videos.npz / samples.npz),
 * or a sample folder holding one (its array is read, not its preview GIFs). The i-th --a pairs with
 * the i-th --b (the same seed of the same sweep, or `lvdm sample --seed` with the same seed and
 * --n), and paired sets hold as many clips.
 * Used for the paired tables of experiments/RESULTS.md from "A deeper short model" on.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ClipConsistency } from '../metrics/object-consistency';
import { findSampleSets, videoConsistency } from '../metrics/object-consistency-io';
import { isPolygon, isRegularOutline } from '../metrics/shape-kind';
import { bootstrapMeanColumns } from '../lib/results/stats';

const READINGS: readonly { name: string; of: (c: ClipConsistency) => number }[] = [
  { name: 'consistent objects', of: (c) => Number(c.consistent) },
  { name: 'consistent squares and triangles', of: (c) => Number(c.consistent && isPolygon(c.kind)) },
  { name: 'consistent regular outlines', of: (c) => Number(c.consistent && isRegularOutline(c.outline)) },
];

/** The one video array a path names: the array itself, or a sample folder's own videos.npz / samples.npz. */
function videoArray(set: string): string {
  const [found] = findSampleSets(set);
  if (!found.endsWith('.npz') || !(found === set || path.dirname(path.resolve(found)) === path.resolve(set))) {
    throw new Error(`${set}: expected a video array (videos.npz or samples.npz, as lvdm run and lvdm sample --npz write them) or a sample folder holding one`);
  }
  return found;
}

async function clips(sets: readonly string[]): Promise<ClipConsistency[][]> {
  const out: ClipConsistency[][] = [];
  for (const set of sets) out.push((await videoConsistency(videoArray(set))).perClip);
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { a: { type: 'string', multiple: true, default: [] }, b: { type: 'string', multiple: true, default: [] } } });
  const a = values.a!;
  const b = values.b!;
  if (a.length === 0 || a.length !== b.length) throw new Error(`--a/--b: expected as many sets of model A as of model B (at least one), got ${a.length} and ${b.length}`);
  const [ca, cb] = [await clips(a), await clips(b)];
  const rows: number[][] = [];
  ca.forEach((setA, i) => {
    if (setA.length !== cb[i].length) throw new Error(`${a[i]} and ${b[i]}: paired sets must hold as many clips, got ${setA.length} and ${cb[i].length}`);
    setA.forEach((clipA, j) => rows.push(READINGS.map((r) => r.of(cb[i][j]) - r.of(clipA))));
  });
  const intervals = bootstrapMeanColumns(rows, { seed: 0 });
  const count = (sets: ClipConsistency[][], k: number): number => sets.flat().reduce((s, c) => s + READINGS[k].of(c), 0);
  READINGS.forEach((r, k) => {
    const diff = rows.reduce((s, row) => s + row[k], 0) / rows.length;
    console.log(`${r.name}: A ${count(ca, k)}, B ${count(cb, k)} of ${rows.length}; B - A ${diff.toFixed(3)} (95% bootstrap ${intervals[k].lo.toFixed(3)} to ${intervals[k].hi.toFixed(3)})`);
  });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
