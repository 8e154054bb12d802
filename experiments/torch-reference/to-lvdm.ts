/**
 * The public UNet's weights trained by experiments/torch-reference/train_image.py, as an LVDM.ts
 * lvdm.safetensors, so the project's own sampler and readings judge them (issue 12: "our trainer or
 * the budget?"). Names and layouts go through lib/interop's UNet mapping (the one `lvdm import`
 * uses, tested against the public code); the config and the latent state come from an LVDM.ts model
 * of the same network on the same latents (--like), with the public code's relative-position form
 * (unet.relative_key 'public'). Every parameter must be found with its shape and every tensor in the
 * file used.
 *
 *   node --import tsx experiments/torch-reference/to-lvdm.ts --weights runs/torch-X/snapshots/unet-2000.safetensors \
 *     --like runs/X/store/short/<key>/lvdm.safetensors --out runs/torch-X/lvdm-2000.safetensors [--parity FILE]
 *
 * --parity FILE also writes a fixed input (x, a self-conditioning estimate, t; channels last) and the
 * LVDM.ts network's output on it, which `train_image.py --check FILE` compares with the public
 * network's output from the same weights.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { loadLvdm, saveLvdmWeights } from '../../lib/lvdm/weights';
import { lvdmSections } from '../../lib/lvdm/trainer';
import { UNet3D } from '../../lib/models/unet3d/unet';
import { ParamStore } from '../../lib/nn/params';
import { Rng } from '../../lib/nn/rng';
import { unetMapping, collectFromPublic } from '../../lib/interop/mapping';
import { loadSafetensors, saveSafetensors } from '../../lib/io/safetensors';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { weights: { type: 'string' }, like: { type: 'string' }, out: { type: 'string' }, parity: { type: 'string' } },
  });
  if (!values.weights || !values.like || !values.out) throw new Error('usage: to-lvdm.ts --weights W.safetensors --like LVDM.safetensors --out OUT.safetensors [--parity FILE]');
  await initBackend();
  const like = loadLvdm(values.like);
  const config = structuredClone(like.config);
  like.dispose();
  const { unet } = lvdmSections(config, values.like);
  unet.relative_key = 'public';
  const store = new ParamStore(new Rng(0));
  const net = new UNet3D(store, unet);
  const shapes = store.entries().map(([n, v]) => [n, v.shape.slice()] as [string, number[]]);
  // One read of the file: its tensors (float16 widened to float32) and its metadata (the step).
  const file = loadSafetensors(values.weights);
  const tensors = new Map([...file.tensors].map(([k, t]) => [k, { shape: t.shape, read: () => t.data as Float32Array }]));
  const { values: weights, used } = collectFromPublic(
    unetMapping(shapes),
    new Map(shapes),
    (p) => {
      const t = tensors.get(p);
      return t ? { key: p, t } : undefined;
    },
    values.weights,
  );
  const unused = [...tensors.keys()].filter((k) => !used.has(k));
  if (unused.length) throw new Error(`${values.weights}: tensors the LVDM.ts network (--like ${values.like}) has no parameter for: ${unused.slice(0, 6).join(', ')}`);
  store.load(weights, { source: values.weights });
  const step = Number(file.metadata.step ?? 0);
  saveLvdmWeights(values.out, weights, config, { ...like.state, ema: true }, step);
  console.log(`${values.out}: ${shapes.length} parameters from ${values.weights} (step ${step}), config and latents of ${values.like}, unet.relative_key 'public'`);

  if (values.parity) {
    const [t, h, w, c] = like.state.latent_shape;
    const rng = new Rng(1234);
    const shape = [2, t, h, w, c];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor5d(rng.normalArray(n), shape as [number, number, number, number, number]);
    const sc = tf.tensor5d(rng.normalArray(n), shape as [number, number, number, number, number]);
    const ts = Int32Array.from([10, 700]);
    const out = net.apply(x, ts, unet.self_condition ? { self_cond: sc } : undefined);
    const f32 = (a: tf.Tensor) => ({ shape: a.shape, data: a.dataSync() as Float32Array });
    saveSafetensors(values.parity, new Map([['x', f32(x)], ['self_cond', f32(sc)], ['t', { shape: [2], data: Float32Array.from(ts) }], ['out', f32(out)]]));
    tf.dispose([x, sc, out]);
    console.log(`${values.parity}: input and LVDM.ts output for train_image.py --check`);
  }
  store.dispose();
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
