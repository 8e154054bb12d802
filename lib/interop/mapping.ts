/**
 * Parameter names and layouts of the public LVDM modules vs this project's.
 *
 * UNet (lvdm/models/modules/openaimodel3d.py + attention_temporal.STAttentionBlock): the names are
 * the same on both sides (time_embed.{0,2}, label_emb, time_embed_cond, input_blocks.i.j...,
 * in_layers.{0,2}, emb_layers.1, out_layers.{0,3}, skip_connection, op, conv, middle_block,
 * output_blocks, out.{0,2}, norm_s/t, qkv_s/t, proj_out_s/t, relative_position_{k,v}.embeddings_table);
 * only layouts differ: Conv3d (1, 3, 3) kernels <-> per-frame Conv2d, Conv1d (k=1) / Linear
 * weights transposed.
 *
 * Autoencoder (lvdm/models/autoencoder3d.AutoencoderKL + modules/aemodules3d, TATS layout):
 *   encoder.conv_first.conv            <-> encoder.conv_in
 *   encoder.conv_blocks.i.down.conv    <-> encoder.down.i.conv
 *   encoder.conv_blocks.i.res.{norm1,norm2 | conv1.conv,conv2.conv} <-> encoder.down.i.res.0.*
 *   encoder.final_block.{0 | 2.conv}   <-> encoder.{norm_out | conv_out}
 *   {quant_conv,post_quant_conv}.conv  <-> {quant_conv,post_quant_conv}
 *   decoder.conv_blocks.k.up.convt     <-> decoder.blocks.k.upsample
 *   decoder.conv_blocks.k.res{j+1}.*   <-> decoder.blocks.k.res.j.*
 *   decoder.conv_out.conv              <-> decoder.conv_out
 * Every SamePadConv3d also registers its weight a second time as `<name>.weight` (an alias of
 * `<name>.conv.weight`), so PyTorch state dicts carry both keys; import accepts the alias (checked
 * equal) or its absence, export writes both.
 */
import { NamedArray } from '../nn/params';
import { TEXT_PREFIX } from '../text/conditioner';
import { isLinearWeight } from '../text/clip';
import { LayoutKind, fromPublic, publicShape, toPublic } from './layout';

export interface ParamMapping {
  /** This project's parameter name. */
  project: string;
  /** The public module's parameter name (without a Lightning prefix). */
  public: string;
  kind: LayoutKind;
  /** Other public keys holding the same tensor (SamePadConv3d's `.weight` alias). */
  aliases: string[];
}

/** UNet parameter names (identical on both sides) with their layout kinds. */
export function unetMapping(params: [string, number[]][]): ParamMapping[] {
  return params.filter(([name]) => !name.startsWith(`${TEXT_PREFIX}.`)).map(([name, shape]) => {
    let kind: LayoutKind = 'same';
    if (/(^|\.)(qkv_[st]|proj_out_[st])\.weight$/.test(name)) kind = 'conv1d';
    else if (/\.proj_(in|out)\.weight$/.test(name)) kind = 'linear3d'; // SpatialTemporalTransformer's 1x1x1 Conv3d
    else if (/embeddings_table$/.test(name) || /^label_emb\.weight$/.test(name)) kind = 'same';
    else if (shape.length === 4) kind = 'conv2d_frame';
    else if (shape.length === 2) kind = 'linear';
    else if (shape.length !== 1) throw new Error(`unet mapping: unexpected rank-${shape.length} parameter '${name}'`);
    return { project: name, public: name, kind, aliases: [] };
  });
}

const AE_RULES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^encoder\.conv_in\.(weight|bias)$/, (m) => `encoder.conv_first.conv.${m[1]}`],
  [/^encoder\.down\.(\d+)\.conv\.(weight|bias)$/, (m) => `encoder.conv_blocks.${m[1]}.down.conv.${m[2]}`],
  [/^encoder\.down\.(\d+)\.res\.0\.(norm[12])\.(weight|bias)$/, (m) => `encoder.conv_blocks.${m[1]}.res.${m[2]}.${m[3]}`],
  [/^encoder\.down\.(\d+)\.res\.0\.(conv[12])\.(weight|bias)$/, (m) => `encoder.conv_blocks.${m[1]}.res.${m[2]}.conv.${m[3]}`],
  [/^encoder\.norm_out\.(weight|bias)$/, (m) => `encoder.final_block.0.${m[1]}`],
  [/^encoder\.conv_out\.(weight|bias)$/, (m) => `encoder.final_block.2.conv.${m[1]}`],
  [/^(quant_conv|post_quant_conv)\.(weight|bias)$/, (m) => `${m[1]}.conv.${m[2]}`],
  [/^decoder\.blocks\.(\d+)\.upsample\.(weight|bias)$/, (m) => `decoder.conv_blocks.${m[1]}.up.convt.${m[2]}`],
  [/^decoder\.blocks\.(\d+)\.res\.(\d+)\.(norm[12])\.(weight|bias)$/, (m) => `decoder.conv_blocks.${m[1]}.res${Number(m[2]) + 1}.${m[3]}.${m[4]}`],
  [/^decoder\.blocks\.(\d+)\.res\.(\d+)\.(conv[12])\.(weight|bias)$/, (m) => `decoder.conv_blocks.${m[1]}.res${Number(m[2]) + 1}.${m[3]}.conv.${m[4]}`],
  [/^decoder\.conv_out\.(weight|bias)$/, (m) => `decoder.conv_out.conv.${m[1]}`],
];

/** Autoencoder mapping; the model must use `decoder: tats` and one residual block per encoder stage, or arch 'ldm' (LDM's names, Conv2d kernels). */
export function autoencoderMapping(params: [string, number[]][], arch: 'lvdm' | 'ldm' = 'lvdm'): ParamMapping[] {
  if (arch === 'ldm') return params.map(([name, shape]) => ({ project: name, public: name, kind: shape.length === 5 ? 'conv2d' : 'same', aliases: [] }));
  return params.map(([name, shape]) => {
    for (const [re, f] of AE_RULES) {
      const m = name.match(re);
      if (!m) continue;
      const pub = f(m);
      const kind: LayoutKind = shape.length === 5 ? (name.includes('.upsample.') ? 'convT3d' : 'conv3d') : 'same';
      // SamePadConv3d (not the transposed conv) aliases its weight one level up.
      const aliases = pub.endsWith('.conv.weight') ? [pub.slice(0, -'.conv.weight'.length) + '.weight'] : [];
      return { project: name, public: pub, kind, aliases };
    }
    throw new Error(
      `autoencoder parameter '${name}' has no counterpart in the public LVDM autoencoder (the public layout needs autoencoder.model.decoder: tats, enc_res_blocks: 1 and no channel-changing residual blocks)`,
    );
  });
}

/**
 * CLIP text encoder (the public FrozenCLIPEmbedder: `cond_stage_model.transformer.` + Hugging Face
 * CLIPTextModel names, also this project's names): identical names, linear weights transposed.
 */
export function textMapping(params: [string, number[]][]): ParamMapping[] {
  return params.filter(([name]) => name.startsWith(`${TEXT_PREFIX}.`)).map(([name]) => ({ project: name, public: name, kind: isLinearWeight(name) ? 'linear' : 'same', aliases: [] }));
}

/** A tensor as read from a file: its shape now, the values on demand (float32). */
export interface TensorSource {
  shape: number[];
  read(): Float32Array;
}

const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Collects the project's parameters from public tensors: `lookup(publicName)` finds a tensor
 * (the caller adds prefixes, e.g. 'model.diffusion_model.'). Missing keys, shape mismatches and
 * aliases that disagree are errors naming the key. Returns the values and every key consumed.
 */
export function collectFromPublic(
  maps: ParamMapping[],
  expected: Map<string, number[]>,
  lookup: (publicName: string) => { key: string; t: TensorSource } | undefined,
  source: string,
): { values: Map<string, NamedArray>; used: Set<string> } {
  const values = new Map<string, NamedArray>();
  const used = new Set<string>();
  const missing: string[] = [];
  for (const m of maps) {
    const found = lookup(m.public);
    const shape = expected.get(m.project);
    if (!shape) throw new Error(`${source}: internal: no shape for '${m.project}'`);
    if (!found) {
      missing.push(m.public);
      continue;
    }
    const want = publicShape(m.kind, shape);
    if (!sameShape(found.t.shape, want))
      throw new Error(`${source}: key '${found.key}' has shape [${found.t.shape}], but the model built from the config expects [${want}] (LVDM.ts '${m.project}' [${shape}])`);
    const data = found.t.read();
    used.add(found.key);
    for (const a of m.aliases) {
      const al = lookup(a);
      if (!al) continue; // safetensors exports drop the shared alias
      const ad = al.t.read();
      if (!sameShape(al.t.shape, want) || ad.some((v, i) => v !== data[i])) throw new Error(`${source}: key '${al.key}' should be an alias of '${found.key}' but differs`);
      used.add(al.key);
    }
    values.set(m.project, fromPublic(m.kind, { shape: found.t.shape, data }, shape));
  }
  if (missing.length) throw new Error(`${source}: missing key${missing.length > 1 ? 's' : ''} ${missing.slice(0, 6).map((k) => `'${k}'`).join(', ')}${missing.length > 6 ? `, ... (${missing.length} in all)` : ''}`);
  return { values, used };
}

/** Project parameters -> public tensors (aliases included), in mapping order. */
export function toPublicTensors(maps: ParamMapping[], values: Map<string, NamedArray>, prefix = ''): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const m of maps) {
    const v = values.get(m.project);
    if (!v) throw new Error(`export: parameter '${m.project}' missing from the LVDM.ts weights`);
    const p = toPublic(m.kind, v);
    out.set(prefix + m.public, p);
    for (const a of m.aliases) out.set(prefix + a, p);
  }
  return out;
}

/** LitEma's buffer name of a parameter: the dotted name with the dots removed. */
export function emaName(name: string): string {
  return name.split('.').join('');
}
