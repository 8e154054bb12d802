/**
 * Importing the public LVDM code's checkpoints into LVDM.ts files, and exporting LVDM.ts weights
 * as state dicts the public code loads (`lvdm import` / `lvdm export`).
 *
 * Lightning checkpoints of the public code hold, under `state_dict`:
 *   model.diffusion_model.<unet>          the UNet (DiffusionWrapper.diffusion_model)
 *   model_ema.<'diffusion_model.<unet>' without dots>, model_ema.decay / num_updates (LitEma)
 *   first_stage_model.<autoencoder>       the 3D AutoencoderKL
 *   betas, alphas_cumprod, ... (the schedule as buffers; checked against the config)
 * Released autoencoder files hold the AutoencoderKL state dict plus loss.* (LPIPS, discriminator).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { ExperimentConfig } from '../config/schema';
import { NamedArray, ParamStore } from '../nn/params';
import { Rng } from '../nn/rng';
import { decodeSafetensors, saveSafetensors } from '../io/safetensors';
import { writeFileAtomic } from '../io/atomic';
import { UNet3D } from '../models/unet3d/unet';
import { VideoAutoencoder } from '../autoencoder/model';
import { LatentStats, loadAutoencoder, saveAutoencoderWeights } from '../autoencoder/io';
import { LVDM_WEIGHTS, loadLvdm, saveLvdmWeights } from '../lvdm/weights';
import { encodeTorchStateDict, openTorchFile, stateDictOf } from './torch-file';
import { textConditionerFor } from '../lvdm/trainer';
import { TEXT_PREFIX } from '../text/conditioner';
import { ParamMapping, TensorSource, autoencoderMapping, collectFromPublic, emaName, textMapping, toPublicTensors, unetMapping } from './mapping';
import { PublicSpec, publicYaml, readPublicConfig } from './public-config';

/** The schedule buffers DDPM.register_schedule stores (persistent ones), from the linear schedule. */
export const SCHEDULE_BUFFERS = [
  'betas',
  'alphas_cumprod',
  'alphas_cumprod_prev',
  'sqrt_alphas_cumprod',
  'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod',
  'sqrt_recip_alphas_cumprod',
  'sqrt_recipm1_alphas_cumprod',
  'posterior_variance',
  'posterior_log_variance_clipped',
  'posterior_mean_coef1',
  'posterior_mean_coef2',
] as const;

/** DDPM.register_schedule's buffers for the linear schedule (v_posterior 0), float64 then float32. */
export function scheduleBuffers(T: number, linearStart: number, linearEnd: number): Map<string, NamedArray> {
  const a = Math.sqrt(linearStart);
  const b = Math.sqrt(linearEnd);
  const betas = Array.from({ length: T }, (_, i) => (a + ((b - a) * i) / (T - 1)) ** 2);
  const ac: number[] = [];
  betas.reduce((p, beta, i) => (ac[i] = p * (1 - beta)), 1);
  const prev = [1, ...ac.slice(0, -1)];
  const post = betas.map((beta, i) => (beta * (1 - prev[i])) / (1 - ac[i]));
  const cols: Record<(typeof SCHEDULE_BUFFERS)[number], number[]> = {
    betas,
    alphas_cumprod: ac,
    alphas_cumprod_prev: prev,
    sqrt_alphas_cumprod: ac.map(Math.sqrt),
    sqrt_one_minus_alphas_cumprod: ac.map((x) => Math.sqrt(1 - x)),
    log_one_minus_alphas_cumprod: ac.map((x) => Math.log(1 - x)),
    sqrt_recip_alphas_cumprod: ac.map((x) => Math.sqrt(1 / x)),
    sqrt_recipm1_alphas_cumprod: ac.map((x) => Math.sqrt(1 / x - 1)),
    posterior_variance: post,
    posterior_log_variance_clipped: post.map((v) => Math.log(Math.max(v, 1e-20))),
    posterior_mean_coef1: betas.map((beta, i) => (beta * Math.sqrt(prev[i])) / (1 - ac[i])),
    posterior_mean_coef2: betas.map((beta, i) => ((1 - prev[i]) * Math.sqrt(1 - beta)) / (1 - ac[i])),
  };
  const out = new Map<string, NamedArray>();
  for (const k of SCHEDULE_BUFFERS) out.set(k, { shape: [T], data: Float32Array.from(cols[k]) });
  return out;
}

/** Every tensor of a .ckpt/.pt (zip) or .safetensors file, read lazily, plus the training step if recorded. */
export function openStateDict(file: string): { tensors: Map<string, TensorSource>; step: number } {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  const buf = fs.readFileSync(file);
  const tensors = new Map<string, TensorSource>();
  if (file.endsWith('.safetensors')) {
    for (const [k, t] of decodeSafetensors(buf, file).tensors) {
      const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
      tensors.set(k, { shape: t.shape, read: () => data });
    }
    return { tensors, step: 0 };
  }
  const tf = openTorchFile(buf, file);
  for (const [k, ref] of stateDictOf(tf.root, file)) tensors.set(k, { shape: ref.shape, read: () => tf.read(ref) });
  const gs = tf.root instanceof Map ? tf.root.get('global_step') : undefined;
  return { tensors, step: typeof gs === 'number' ? gs : 0 };
}

const isPrefixed = (keys: Iterable<string>, p: string): boolean => {
  for (const k of keys) if (k.startsWith(p)) return true;
  return false;
};

function shapesOf(store: ParamStore): [string, number[]][] {
  return store.entries().map(([n, v]) => [n, v.shape.slice()]);
}

/** Public names of one part of a model and where its tensors sit in the file (Lightning prefixes). */
interface MappedPart {
  maps: ParamMapping[];
  toKey: (publicName: string) => string;
}

/** Loads mapped public tensors into a fresh store (strict: every parameter, checked shapes). */
function loadMapped(store: ParamStore, parts: MappedPart[], tensors: Map<string, TensorSource>, source: string, used: Set<string>): Map<string, NamedArray> {
  const expected = new Map(shapesOf(store));
  const values = new Map<string, NamedArray>();
  for (const { maps, toKey } of parts) {
    const got = collectFromPublic(
      maps,
      expected,
      (p) => {
        const key = toKey(p);
        const t = tensors.get(key);
        return t ? { key, t } : undefined;
      },
      source,
    );
    for (const [k, v] of got.values) values.set(k, v);
    for (const k of got.used) used.add(k);
  }
  store.load(values, { source });
  return values;
}

export interface ImportOptions {
  ckpt: string;
  config: string;
  out: string;
  /** Use the EMA weights (model_ema.*) of a latent diffusion checkpoint. */
  ema?: boolean;
  /** A separate autoencoder checkpoint (when the LVDM checkpoint lacks first_stage_model.*). */
  ae?: string;
  name?: string;
  /** data.root recorded in the config (the public configs often leave it as ${data_root}). */
  dataRoot?: string;
  /** Text-to-video: folder with the CLIP tokenizer (vocab.json, merges.txt) and its config.json. */
  clip?: string;
}

export interface ImportReport {
  kind: 'lvdm' | 'autoencoder';
  files: string[];
  ema: boolean;
  tensors_used: number;
  keys_ignored: string[];
  switches: Record<string, unknown>;
}

/** Keys a public checkpoint may hold that carry no LVDM.ts parameters. */
function ignorable(key: string, kind: 'lvdm' | 'autoencoder', ema: boolean): boolean {
  if (kind === 'autoencoder') return key.startsWith('loss.');
  if ((SCHEDULE_BUFFERS as readonly string[]).includes(key) || key === 'scale_factor' || key === 'logvar') return true;
  if (key === 'cond_stage_model.transformer.text_model.embeddings.position_ids') return true; // HF buffer: 0..76
  if (key === 'model_ema.decay' || key === 'model_ema.num_updates') return true;
  if (key.startsWith('first_stage_model.loss.')) return true;
  return ema ? key.startsWith('model.diffusion_model.') : key.startsWith('model_ema.');
}

function checkSchedule(tensors: Map<string, TensorSource>, spec: PublicSpec): void {
  const betas = tensors.get('betas');
  const s = spec.config.diffusion?.schedule;
  if (!betas || !s) return;
  const ref = scheduleBuffers(s.timesteps, s.linear_start, s.linear_end).get('betas')!.data;
  const got = betas.read();
  if (got.length !== ref.length || got.some((v, i) => Math.abs(v - ref[i]) > 1e-6 * Math.max(1, ref[i] * 1e3)))
    throw new Error(`${spec.source}: the checkpoint's 'betas' do not match the config's linear schedule (timesteps ${s.timesteps}, linear_start ${s.linear_start}, linear_end ${s.linear_end})`);
}

/** Imports a public checkpoint; writes autoencoder.safetensors (+ lvdm.safetensors), config.yaml, import.json. */
export function importPublic(o: ImportOptions): ImportReport {
  const spec = readPublicConfig(o.config, o.name, { clip: o.clip });
  const { tensors, step } = openStateDict(o.ckpt);
  const source = o.ckpt;
  const used = new Set<string>();
  const ema = Boolean(o.ema);
  fs.mkdirSync(o.out, { recursive: true });
  const aeFile = path.resolve(o.out, 'autoencoder.safetensors');
  const files: string[] = [];
  const config: ExperimentConfig = o.dataRoot ? { ...spec.config, data: { ...spec.config.data, root: path.resolve(o.dataRoot) } } : spec.config;

  // Autoencoder: first_stage_model.* inside an LVDM checkpoint, or a separate file / an AE checkpoint.
  const aeStore = new ParamStore(new Rng(0));
  const unetStore = new ParamStore(new Rng(0));
  try {
    new VideoAutoencoder(aeStore, config.autoencoder!.model); // creates the parameters in aeStore
    const aeMaps = autoencoderMapping(shapesOf(aeStore), config.autoencoder!.model.arch);
    let aeSource = source;
    let aeTensors = tensors;
    let aePrefix = spec.kind === 'lvdm' ? 'first_stage_model.' : '';
    if (o.ae) {
      aeSource = o.ae;
      aeTensors = openStateDict(o.ae).tensors;
      aePrefix = isPrefixed(aeTensors.keys(), 'first_stage_model.') ? 'first_stage_model.' : '';
    } else if (spec.kind === 'lvdm' && !isPrefixed(tensors.keys(), 'first_stage_model.')) {
      throw new Error(`${source}: no first_stage_model.* keys; pass the autoencoder checkpoint with --ae`);
    }
    const aeUsed = o.ae ? new Set<string>() : used;
    const aeValues = loadMapped(aeStore, [{ maps: aeMaps, toKey: (p) => aePrefix + p }], aeTensors, aeSource, aeUsed);
    if (o.ae) {
      const extra = [...aeTensors.keys()].filter((k) => !aeUsed.has(k) && !k.startsWith(`${aePrefix}loss.`) && (aePrefix === '' || k.startsWith(aePrefix)));
      if (extra.length) throw new Error(`${aeSource}: unexpected key${extra.length > 1 ? 's' : ''} ${extra.slice(0, 6).map((k) => `'${k}'`).join(', ')} (not part of the autoencoder built from ${o.config})`);
    }
    const stats: LatentStats | null = spec.latent
      ? { shift: spec.latent.shift, scale: spec.latent.scale, mean: -spec.latent.shift, std: 1 / spec.latent.scale, count: 0 }
      : null;

    let unetValues: Map<string, NamedArray> | null = null;
    if (spec.kind === 'lvdm') {
      new UNet3D(unetStore, config.unet!); // creates the parameters in unetStore
      textConditionerFor(config, unetStore, `${o.config} (translated)`); // text-to-video: the CLIP text tower beside it
      const maps = unetMapping(shapesOf(unetStore));
      let toKey: (p: string) => string;
      if (ema) {
        if (!isPrefixed(tensors.keys(), 'model_ema.')) throw new Error(`${source}: --ema: the checkpoint has no model_ema.* (EMA) weights`);
        toKey = (p) => `model_ema.${emaName(`diffusion_model.${p}`)}`;
      } else if (isPrefixed(tensors.keys(), 'model.diffusion_model.')) toKey = (p) => `model.diffusion_model.${p}`;
      else toKey = (p) => p;
      // FrozenCLIPEmbedder: cond_stage_model.transformer.* at the top level (LitEma covers the UNet only).
      unetValues = loadMapped(unetStore, [{ maps, toKey }, { maps: textMapping(shapesOf(unetStore)), toKey: (p) => p }], tensors, source, used);
      checkSchedule(tensors, spec);
      if (spec.scaleByStd) {
        const sf = tensors.get('scale_factor');
        if (!sf) throw new Error(`${source}: scale_by_std is set but the checkpoint has no 'scale_factor'`);
        stats!.scale = sf.read()[0];
        stats!.std = 1 / stats!.scale;
      }
    }
    const kind = spec.kind;
    const extra = [...tensors.keys()].filter((k) => !used.has(k) && !ignorable(k, kind, ema) && !(o.ae && k.startsWith('first_stage_model.')));
    if (extra.length)
      throw new Error(`${source}: unexpected key${extra.length > 1 ? 's' : ''} ${extra.slice(0, 6).map((k) => `'${k}'`).join(', ')}${extra.length > 6 ? `, ... (${extra.length} in all)` : ''} (not part of the model built from ${o.config})`);
    const ignored = [...tensors.keys()].filter((k) => !used.has(k));

    const aeConfig: ExperimentConfig = { ...config, unet: undefined, diffusion: undefined };
    if (aeValues.size !== aeStore.names().length) throw new Error('import: internal: autoencoder parameter count mismatch');
    saveAutoencoderWeights(aeFile, aeStore, aeConfig, stats, step);
    files.push(aeFile);
    if (unetValues) {
      const a = config.autoencoder!.model;
      const lf = spec.latentFrames;
      const ls = config.data.size / a.spatial_factor;
      const lvdmFile = path.resolve(o.out, LVDM_WEIGHTS);
      saveLvdmWeights(
        lvdmFile,
        unetValues,
        { ...config, diffusion: { ...config.diffusion!, autoencoder: aeFile } },
        {
          autoencoder: aeFile,
          latent: { shift: stats!.shift, scale: stats!.scale },
          latent_shape: [lf, ls, ls, a.latent_channels],
          clip: { frames: lf * a.temporal_factor, height: config.data.size, width: config.data.size },
          ema,
        },
        step,
      );
      files.push(lvdmFile);
    }
    const cfgFile = path.resolve(o.out, 'config.yaml');
    writeFileAtomic(cfgFile, `# translated from ${o.config} by lvdm import\n${stringify(config)}`);
    files.push(cfgFile);
    const am = config.autoencoder!.model;
    const switches: Record<string, unknown> = am.arch === 'ldm' ? { 'autoencoder.model.arch': am.arch } : { 'autoencoder.model.decoder': am.decoder };
    if (config.unet) {
      switches['unet.relative_key'] = config.unet.relative_key;
      if (config.unet.attention_block !== 'lvdm') switches['unet.attention_block'] = config.unet.attention_block;
      if (config.text) switches.text = { vocab: config.text.vocab, merges: config.text.merges, width: config.text.width, layers: config.text.layers, heads: config.text.heads, mask_padding: false };
      switches['diffusion.schedule'] = config.diffusion!.schedule;
      switches['diffusion.sampling'] = config.diffusion!.sampling;
      switches.latent = stats ? { scale: stats.scale, shift: stats.shift } : null;
    }
    const report: ImportReport = { kind, files, ema, tensors_used: used.size, keys_ignored: ignored, switches };
    const reportFile = path.resolve(o.out, 'import.json');
    writeFileAtomic(reportFile, JSON.stringify({ source: path.resolve(o.ckpt), config: path.resolve(o.config), ...report }, null, 2));
    report.files.push(reportFile);
    return report;
  } finally {
    aeStore.dispose();
    unetStore.dispose();
  }
}

export interface ExportOptions {
  /** lvdm.safetensors (or an lvdm training checkpoint), or autoencoder.safetensors. */
  ckpt: string;
  /** .ckpt (torch zip, Lightning {'state_dict': ...}) or .safetensors. */
  out: string;
  /** Autoencoder to include (default: the one recorded in lvdm.safetensors). */
  ae?: string;
  /** Export a model whose behaviour switches differ from the public code's (its outputs there will differ). */
  allowBehaviourChange?: boolean;
}

export interface ExportReport {
  file: string;
  yaml: string;
  tensors: number;
}

/** Exports LVDM.ts weights with the public names and layouts, plus a public-format YAML beside them. */
export function exportPublic(o: ExportOptions): ExportReport {
  const out = new Map<string, NamedArray>();
  let yaml: string;
  const head = fs.existsSync(o.ckpt) ? decodeSafetensors(fs.readFileSync(o.ckpt), o.ckpt).metadata.lvdm : undefined;
  const kind = head ? String((JSON.parse(head) as { kind?: unknown }).kind) : '';
  if (kind === 'autoencoder-weights' || kind === 'autoencoder') {
    const ae = loadAutoencoder(o.ckpt);
    try {
      yaml = publicYaml(ae.config, null);
      for (const [k, v] of toPublicTensors(autoencoderMapping(shapesOf(ae.store), ae.config.autoencoder!.model.arch), ae.store.snapshot())) out.set(k, v);
    } finally {
      ae.dispose();
    }
  } else {
    const model = loadLvdm(o.ckpt);
    const aeFile = o.ae ?? model.state.autoencoder;
    const ae = loadAutoencoder(aeFile);
    try {
      const u = model.config.unet!;
      const differs: string[] = [];
      // The public STAttentionBlock adds the relative-key term transposed (d^-1/4); its text-to-video TemporalCrossAttention uses Shaw's form.
      const st = u.attention_block === 'st_transformer';
      if (u.relative_position && !st && u.relative_key !== 'public') differs.push("unet.relative_key 'shaw' (the public code adds the relative-key term transposed and scaled by d^-1/4)");
      if (model.text && model.text.cfg.mask_padding) differs.push('text.mask_padding true (the public cross-attention attends to the padding tokens too)');
      if (u.norm_scope !== 'clip') differs.push("unet.norm_scope 'frame' (the public code's GroupNorm spans the clip)");
      if (differs.length && !o.allowBehaviourChange)
        throw new Error(`export: ${o.ckpt} computes differently from the public code: ${differs.join('; ')}. Its outputs there would differ; train with the public switches to export exactly, or pass --allow-behaviour-change`);
      const config: ExperimentConfig = { ...model.config, autoencoder: ae.config.autoencoder };
      yaml = publicYaml(config, model.state.latent);
      const unetMaps = unetMapping(shapesOf(model.store));
      const weights = model.store.snapshot();
      for (const [k, v] of toPublicTensors(unetMaps, weights, 'model.diffusion_model.')) out.set(k, v);
      if (model.text) {
        // FrozenCLIPEmbedder (HF CLIPTextModel names) and its position_ids buffer; text2video.yaml has no EMA (use_ema: false).
        for (const [k, v] of toPublicTensors(textMapping(shapesOf(model.store)), weights)) out.set(k, v);
        const l = model.text.cfg.context_length;
        out.set(`${TEXT_PREFIX}.text_model.embeddings.position_ids`, { shape: [1, l], data: Float32Array.from({ length: l }, (_, i) => i) });
      } else {
        // LitEma: the sampling weights stand in for the EMA copy too (lvdm.safetensors holds one set).
        out.set('model_ema.decay', { shape: [], data: Float32Array.of(0.9999) });
        out.set('model_ema.num_updates', { shape: [], data: Float32Array.of(model.step) });
        for (const [k, v] of toPublicTensors(unetMaps, weights)) out.set(`model_ema.${emaName(`diffusion_model.${k}`)}`, v);
      }
      for (const [k, v] of toPublicTensors(autoencoderMapping(shapesOf(ae.store), ae.config.autoencoder!.model.arch), ae.store.snapshot(), 'first_stage_model.')) out.set(k, v);
      const s = model.config.diffusion!.schedule;
      for (const [k, v] of scheduleBuffers(s.timesteps, s.linear_start, s.linear_end)) out.set(k, v);
    } finally {
      model.dispose();
      ae.dispose();
    }
  }
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  if (o.out.endsWith('.safetensors')) saveSafetensors(o.out, out, { format: 'pt', exported_by: 'LVDM.ts' });
  else if (/\.(ckpt|pt|pth)$/.test(o.out)) writeFileAtomic(o.out, encodeTorchStateDict(out, { lightning: true }));
  else throw new Error(`--out ${o.out}: expected a .ckpt, .pt, .pth or .safetensors file name`);
  const yamlFile = o.out.replace(/\.(ckpt|pt|pth|safetensors)$/, '.yaml');
  writeFileAtomic(yamlFile, `# public LVDM config written by lvdm export for ${path.basename(o.out)}\n${yaml}`);
  return { file: o.out, yaml: yamlFile, tensors: out.size };
}
