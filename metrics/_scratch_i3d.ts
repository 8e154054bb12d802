import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { I3D } from './i3d/model';
import { randomI3DWeights } from './i3d/weights';
import { i3dEndpointShapes } from './i3d/spec';
async function main() {
  await initBackend({ quiet: false });
  let t0 = Date.now();
  const w = randomI3DWeights(1);
  console.log('random weights', Date.now() - t0);
  t0 = Date.now();
  const m = new I3D(w);
  console.log('fold', Date.now() - t0);
  const T = Number(process.argv[2] ?? 16), S = Number(process.argv[3] ?? 224);
  const x = tf.randomUniform([1, T, S, S, 3], -1, 1) as tf.Tensor5D;
  const exp = i3dEndpointShapes(T, S, S);
  let i = 0, last = Date.now();
  t0 = Date.now();
  const y = m.forward(x, (name, shape) => { const now = Date.now(); console.log(name, shape.join('x'), 'expected', exp[i++].shape.join('x'), now - last, 'ms'); last = now; });
  console.log('forward', Date.now() - t0, 'ms', y.shape, (await y.data()).slice(0, 3));
}
main();
