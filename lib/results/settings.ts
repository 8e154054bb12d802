/**
 * Settings: a sweep point without its seed. Results over seeds are aggregated per setting, and a
 * setting is what a curve, a comparison or a column of sample videos is labelled with.
 */
import type { PointResult, SweepMode, SweepValues } from '../experiments/types';

/** The coordinates that, with the seed, identify a sweep point. */
export interface Setting {
  dataset: string;
  mode: SweepMode;
  s: number | null;
  w: number;
  frames: number;
  steps: number;
  /** DDIM eta where the sweep grid set it; null: the sweep's default. */
  eta: number | null;
}

export type SettingField = keyof Setting;

export const SETTING_FIELDS: readonly SettingField[] = ['dataset', 'mode', 's', 'w', 'frames', 'steps', 'eta'];

export function settingOf(p: PointResult | Setting): Setting {
  return { dataset: p.dataset, mode: p.mode, s: p.s, w: p.w, frames: p.frames, steps: p.steps, eta: p.eta ?? null };
}

/** A stable string key of a setting (the JSON of its fields in a fixed order). */
export function settingKey(x: PointResult | Setting): string {
  const s = settingOf(x);
  return JSON.stringify(SETTING_FIELDS.map((f) => s[f]));
}

/** Fields whose value differs between the given settings (in SETTING_FIELDS order). */
export function varyingFields(settings: readonly Setting[]): SettingField[] {
  return SETTING_FIELDS.filter((f) => new Set(settings.map((s) => String(s[f]))).size > 1);
}

function fieldText(f: SettingField, v: Setting[SettingField]): string {
  if (f === 'dataset' || f === 'mode') return String(v);
  if (f === 's' && v === null) return 's=none';
  if (f === 'eta' && v === null) return ''; // the sweep's default eta: not named
  return `${f}=${v}`;
}

/**
 * A short human label naming only the given fields, e.g. 'hierarchical s=100 w=0.1'. With no
 * fields (a single setting), the mode and s and w are named.
 */
export function settingLabel(s: Setting, fields: readonly SettingField[]): string {
  const use = fields.length > 0 ? fields : (['mode', 's', 'w'] as const);
  return use
    .map((f) => fieldText(f, s[f]))
    .filter((t) => t !== '')
    .join(' ');
}

/** True when the point/setting matches every field given in `partial` (e.g. a baseline). */
export function matchesPartial(s: Setting, partial: Partial<SweepValues> & { dataset?: string }): boolean {
  return SETTING_FIELDS.every((f) => !(f in partial) || partial[f as keyof typeof partial] === undefined || partial[f as keyof typeof partial] === s[f]);
}

/** Compares settings for a stable order: by dataset, mode, then numerically by s, w, frames, steps. */
export function compareSettings(a: Setting, b: Setting): number {
  for (const f of SETTING_FIELDS) {
    const x = a[f];
    const y = b[f];
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

/** Points grouped by setting, in setting order; seeds within a group in ascending order. */
export function groupBySetting(points: readonly PointResult[]): { setting: Setting; points: PointResult[] }[] {
  const groups = new Map<string, { setting: Setting; points: PointResult[] }>();
  for (const p of points) {
    const k = settingKey(p);
    let g = groups.get(k);
    if (!g) {
      g = { setting: settingOf(p), points: [] };
      groups.set(k, g);
    }
    g.points.push(p);
  }
  const out = [...groups.values()].sort((a, b) => compareSettings(a.setting, b.setting));
  for (const g of out) {
    g.points.sort((a, b) => a.seed - b.seed);
    const seeds = g.points.map((p) => p.seed);
    const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
    if (dup !== undefined) throw new Error(`results: two points of setting ${settingLabel(g.setting, SETTING_FIELDS)} have the same seed ${dup}`);
  }
  return out;
}

/** The metric's column names: 'fvd'/'kvd' with real I3D weights, 'fvd_proxy'/'kvd_proxy' otherwise. */
export function metricNames(points: readonly PointResult[]): { fvd: string; kvd: string } {
  const names = [...new Set(points.map((p) => p.metric))];
  if (names.length > 1) throw new Error(`results: points use different metrics (${names.join(', ')}); one table holds one metric`);
  const m = names[0] ?? 'fvd';
  return { fvd: m, kvd: m === 'fvd' ? 'kvd' : 'kvd_proxy' };
}
