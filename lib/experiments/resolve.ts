/**
 * Reading an experiment file: `include:` files deep-merged underneath it (Hydra-style composition:
 * one base per data set, small files per ablation), `--set key=value` overrides on the merged
 * tree, every stage's `data` merged over the top-level `data`, then one validation against
 * `ExperimentFile` (lib/config/schema.ts) and the cross-references zod cannot see (stage names,
 * kinds, data roots). Every error names the file, the key path and what was expected.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, applyOverrides, parseYaml, validateConfig } from '../config/load';
import { ExperimentFile, StageConfig } from '../config/schema';
import { syntheticFamilyFromSource } from '../../data/synthetic';
import { PROXY_EXTRACTORS } from '../../metrics/proxy/extractor';

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** b over a: mappings merge key by key, everything else (lists, scalars, null) replaces. */
export function deepMerge(a: unknown, b: unknown): unknown {
  if (!isTree(a) || !isTree(b)) return b === undefined ? a : b;
  const out: Tree = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out;
}

/** The file's tree with its includes merged underneath (depth first, in order). */
function readWithIncludes(file: string, chain: string[]): Tree {
  const abs = path.resolve(file);
  if (chain.includes(abs)) throw new ConfigError(`${file}: include cycle (${[...chain, abs].map((f) => path.relative(process.cwd(), f)).join(' -> ')})`);
  const raw = parseYaml(fs.readFileSync(abs, 'utf8'), file);
  if (!isTree(raw)) throw new ConfigError(`${file}: expected a mapping at the top level`);
  const includes = raw.include;
  delete raw.include;
  if (includes === undefined) return raw;
  const list = typeof includes === 'string' ? [includes] : includes;
  if (!Array.isArray(list) || !list.every((x): x is string => typeof x === 'string'))
    throw new ConfigError(`${file}: key 'include': expected a file name or a list of file names (relative to ${file})`);
  let merged: unknown = {};
  for (const inc of list) {
    const incFile = path.resolve(path.dirname(file), inc);
    if (!fs.existsSync(incFile)) throw new ConfigError(`${file}: key 'include': file '${inc}' not found (looked for ${incFile})`);
    merged = deepMerge(merged, readWithIncludes(incFile, [...chain, abs]));
  }
  return deepMerge(merged, raw) as Tree;
}

export interface LoadedExperiment {
  file: string;
  experiment: ExperimentFile;
  /** The merged tree before defaults (stored next to the validated one for reading). */
  raw: Tree;
}

const SYNTHETIC_FOR: Record<string, string> = { ucf101: 'synthetic-ucf', sky: 'synthetic-sky', taichi: 'synthetic-taichi' };

/** The synthetic family that stands in for a real data set kind. */
export function syntheticStandIn(source: string): string {
  return SYNTHETIC_FOR[source] ?? 'synthetic-shapes';
}

function checkDataRoot(file: string, key: string, data: { source: string; root?: string }, stageShards: boolean): void {
  if (syntheticFamilyFromSource(data.source) !== null || stageShards) return;
  const stand = syntheticStandIn(data.source);
  const hint = `to run on the synthetic stand-in instead: lvdm run ${file} --set data.source=${stand}`;
  if (!data.root) throw new ConfigError(`${file}: key '${key}.root': data.source '${data.source}' is a real data set and needs its root folder; ${hint}`);
  if (!fs.existsSync(data.root))
    throw new ConfigError(`${file}: key '${key}.root': data set root '${data.root}' does not exist (data.source '${data.source}'); give the folder with --set data.root=DIR, or ${hint}`);
}

function stageOf(e: ExperimentFile, file: string, at: string, name: string, kinds: StageConfig['kind'][]): StageConfig {
  const st = e.stages[name];
  if (!st) throw new ConfigError(`${file}: key '${at}': '${name}' is not a stage of this experiment (stages: ${Object.keys(e.stages).join(', ') || 'none'})`);
  if (!kinds.includes(st.kind)) throw new ConfigError(`${file}: key '${at}': stage '${name}' is a ${st.kind} stage, expected ${kinds.join(' or ')}`);
  return st;
}

/**
 * The stage whose encoder made the latents of autoencoder-like stage `name`: a 'decoder' stage with
 * a frozen encoder has its autoencoder's latents; one that trains the encoder (finetune.train_encoder) has its own.
 */
function latentSource(e: ExperimentFile, name: string): string {
  const st = e.stages[name];
  return st?.kind === 'decoder' && !st.finetune.train_encoder ? st.autoencoder : name;
}

/**
 * sweep.decoder must decode the latents the sampled models learned: an autoencoder stage or a
 * 'decoder' stage with the same latents as every model the sweep samples with.
 */
function checkSweepDecoder(e: ExperimentFile, file: string, name: string): void {
  stageOf(e, file, 'sweep.decoder', name, ['decoder', 'autoencoder']);
  const encoder = latentSource(e, name);
  const m = e.sweep!.models;
  const models = [m.short?.model, m.autoregressive?.pred, m.hierarchical?.pred, m.hierarchical?.interp].filter((x): x is string => x !== undefined);
  for (const model of models) {
    const ae = (e.stages[model] as { autoencoder?: string }).autoencoder!;
    if (latentSource(e, ae) !== encoder)
      throw new ConfigError(
        `${file}: key 'sweep.decoder': stage '${name}' decodes the latents of the encoder of '${encoder}', but model stage '${model}' learned those of '${latentSource(e, ae)}' (its autoencoder: '${ae}')`,
      );
  }
}

/** Autoguidance's weaker model: a short stage, unconditional like the model, learning the same latents. */
function checkGuide(e: ExperimentFile, file: string, model: string, guide: string): void {
  const at = 'sweep.models.short.guide';
  stageOf(e, file, at, guide, ['short']);
  if (guide === model) throw new ConfigError(`${file}: key '${at}': stage '${guide}' is the model itself; autoguidance needs a weaker model (smaller, trained less)`);
  const [ms, gs] = [e.stages[model], e.stages[guide]] as Extract<StageConfig, { kind: 'short' }>[];
  if (ms.text || gs.text) throw new ConfigError(`${file}: key '${at}': autoguidance of text-to-video models is not supported (their w is classifier-free guidance); remove sweep.models.short.guide`);
  if (ms.autoencoder !== gs.autoencoder)
    throw new ConfigError(`${file}: key '${at}': stage '${guide}' learned the latents of '${gs.autoencoder}', but model stage '${model}' those of '${ms.autoencoder}'; the guide must learn the same latents`);
}

/** A short stage's `init`: another short stage learning the same latents, with no cycle of inits. */
function checkInit(e: ExperimentFile, file: string, name: string): void {
  const chain = [name];
  let st = e.stages[name] as Extract<StageConfig, { kind: 'short' }>;
  while (st.init) {
    const at = `stages.${chain[chain.length - 1]}.init.stage`;
    const from = st.init.stage;
    if (chain.includes(from)) throw new ConfigError(`${file}: key '${at}': cycle of inits (${[...chain, from].join(' -> ')})`);
    const src = stageOf(e, file, at, from, ['short']) as Extract<StageConfig, { kind: 'short' }>;
    if (latentSource(e, src.autoencoder) !== latentSource(e, st.autoencoder))
      throw new ConfigError(`${file}: key '${at}': stage '${from}' learned the latents of '${src.autoencoder}', but stage '${chain[chain.length - 1]}' learns those of '${st.autoencoder}'; init needs the same latents`);
    chain.push(from);
    st = src;
  }
}

/** Cross-references and files zod cannot check. */
function checkExperiment(e: ExperimentFile, file: string): void {
  checkDataRoot(file, 'data', e.data, false); // the root every stage inherits
  for (const [name, st] of Object.entries(e.stages)) {
    const at = `stages.${name}`;
    if (st.kind !== 'prepare' && st.shards !== undefined) stageOf(e, file, `${at}.shards`, st.shards, ['prepare']);
    if (st.kind === 'decoder') stageOf(e, file, `${at}.autoencoder`, st.autoencoder, ['autoencoder']);
    if (st.kind === 'short' || st.kind === 'prediction' || st.kind === 'interpolation') stageOf(e, file, `${at}.autoencoder`, st.autoencoder, ['autoencoder', 'decoder']);
    if (st.kind === 'short' && st.init) checkInit(e, file, name);
    if ((st.kind === 'prediction' || st.kind === 'interpolation') && st.long.role !== st.kind)
      throw new ConfigError(`${file}: key '${at}.long.role': expected '${st.kind}' for a ${st.kind} stage, got '${st.long.role}'`);
    if (st.kind === 'prepare' && syntheticFamilyFromSource(st.data.source) === null && st.data.source === 'shards')
      throw new ConfigError(`${file}: key '${at}.data.source': a prepare stage reads a raw data set (ucf101, sky, taichi, webvid, folder), not 'shards'`);
    const fromShards = st.kind !== 'prepare' && st.shards !== undefined;
    checkDataRoot(file, `${at}.data`, st.data, fromShards);
  }
  const sw = e.sweep;
  if (sw) {
    const m = sw.models;
    if (m.autoregressive) stageOf(e, file, 'sweep.models.autoregressive.pred', m.autoregressive.pred, ['prediction']);
    if (m.hierarchical) {
      stageOf(e, file, 'sweep.models.hierarchical.pred', m.hierarchical.pred, ['prediction']);
      stageOf(e, file, 'sweep.models.hierarchical.interp', m.hierarchical.interp, ['interpolation']);
    }
    if (m.short) stageOf(e, file, 'sweep.models.short.model', m.short.model, ['short']);
    if (m.short?.guide !== undefined) checkGuide(e, file, m.short.model, m.short.guide);
    if (sw.decoder !== undefined) checkSweepDecoder(e, file, sw.decoder);
    for (const [g, grid] of Object.entries(sw.grids)) {
      if (!grid) continue;
      for (const mode of grid.mode) if (!m[mode]) throw new ConfigError(`${file}: key 'sweep.grids.${g}.mode': mode '${mode}' needs sweep.models.${mode} (which stages it samples with)`);
      const win = e.evaluate.window;
      if (win !== undefined) {
        const short = grid.frames.find((f) => f < win);
        if (short !== undefined) throw new ConfigError(`${file}: key 'sweep.grids.${g}.frames': ${short} frames is shorter than evaluate.window ${win}`);
      }
    }
  }
  const ev = e.evaluate;
  if (ev.features === 'i3d') {
    if (!ev.i3d) throw new ConfigError(`${file}: key 'evaluate.i3d': evaluate.features 'i3d' needs the I3D weights file (see metrics/README.md)`);
    if (!fs.existsSync(ev.i3d)) throw new ConfigError(`${file}: key 'evaluate.i3d': I3D weights file '${ev.i3d}' not found`);
  } else if (!(ev.features in PROXY_EXTRACTORS)) {
    throw new ConfigError(`${file}: key 'evaluate.features': expected 'i3d' or one of ${Object.keys(PROXY_EXTRACTORS).map((k) => `'${k}'`).join(', ')}, got '${ev.features}'`);
  } else if (ev.i3d !== undefined) {
    throw new ConfigError(`${file}: key 'evaluate.i3d': only used with evaluate.features 'i3d' (features is '${ev.features}')`);
  }
}

/**
 * `from: <stage>` in a stage starts it from that stage's (resolved) config, its own keys merged
 * over it; then every stage's `data` is merged over the top-level `data`.
 */
function resolveStages(file: string, tree: Tree): void {
  const stages = tree.stages;
  if (!isTree(stages)) return;
  const done = new Map<string, Tree>();
  const resolve = (name: string, chain: string[]): Tree => {
    const hit = done.get(name);
    if (hit) return hit;
    const st = stages[name];
    if (!isTree(st)) return st as Tree;
    let out: Tree = st;
    if (st.from !== undefined) {
      const from = st.from;
      if (typeof from !== 'string' || !isTree(stages[from]))
        throw new ConfigError(`${file}: key 'stages.${name}.from': expected the name of another stage (stages: ${Object.keys(stages).join(', ')}), got '${String(from)}'`);
      if (chain.includes(from)) throw new ConfigError(`${file}: key 'stages.${name}.from': cycle (${[...chain, from].join(' -> ')})`);
      const own = { ...st };
      delete own.from;
      out = deepMerge(resolve(from, [...chain, from]), own) as Tree;
    }
    done.set(name, out);
    return out;
  };
  for (const name of Object.keys(stages)) {
    const st = resolve(name, [name]);
    stages[name] = isTree(st) ? { ...st, data: deepMerge(tree.data, st.data) } : st;
  }
}

/** `sweep.defaults` (e.g. frames, steps, seed) under every grid of `sweep.grids`; then removed. */
function applyGridDefaults(tree: Tree): void {
  const sweep = tree.sweep;
  if (!isTree(sweep) || sweep.defaults === undefined) return;
  const defaults = sweep.defaults;
  delete sweep.defaults;
  if (!isTree(sweep.grids)) return;
  for (const [name, grid] of Object.entries(sweep.grids)) if (isTree(grid)) sweep.grids[name] = deepMerge(defaults, grid);
}

/**
 * `null` removes an included stage (`stages.<name>: null`) or sweep mode (`sweep.models.<mode>:
 * null`), as it removes a grid: a file that samples short clips only drops the long-video stages
 * of the file it includes, so nothing trains them.
 */
function dropRemoved(tree: Tree): void {
  const drop = (t: unknown): void => {
    if (isTree(t)) for (const [k, v] of Object.entries(t)) if (v === null) delete t[k];
  };
  drop(tree.stages);
  if (isTree(tree.sweep)) drop(tree.sweep.models);
}

/** Loads an experiment file: includes, `--set` overrides, removals, stage data merged over `data`, validation, cross-checks. */
export function loadExperiment(file: string, set: string[] = []): LoadedExperiment {
  if (!fs.existsSync(file)) throw new ConfigError(`${file}: experiment file not found (expected a YAML file, e.g. experiments/smoke.yaml)`);
  const merged = applyOverrides(readWithIncludes(file, []), set) as Tree;
  dropRemoved(merged);
  const raw = JSON.parse(JSON.stringify(merged)) as Tree;
  resolveStages(file, merged);
  applyGridDefaults(merged);
  const experiment = validateConfig(merged, file, ExperimentFile);
  checkExperiment(experiment, file);
  return { file, experiment, raw };
}
