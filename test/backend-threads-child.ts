// Child process for test/backend-threads.test.ts: starts the threaded wasm backend from
// LVDM_WASM_THREADS, checks a few kernels against cpu, prints one JSON line and must then exit
// by itself (no lingering pthread workers).
import * as tf from '@tensorflow/tfjs';
import { initBackend, wasmThreads } from '../lib/backend';
import { Rng } from '../lib/nn/rng';
import { compareWithCpu, randomArray } from './backend-helpers';

async function main(): Promise<void> {
  const info = await initBackend({ quiet: true });
  const rng = new Rng(31);
  const xv = randomArray(rng, [4, 9, 7, 8]);
  const wv = randomArray(rng, [3, 3, 8, 16]);
  const err = await compareWithCpu(() => {
    const x = tf.tensor4d(xv, [4, 9, 7, 8]);
    const w = tf.tensor4d(wv, [3, 3, 8, 16]);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([x, w]);
    return [tf.conv2d(x, w, 1, 'same'), dx, dw, tf.matMul(tf.reshape(x, [4, 63, 8]), tf.reshape(x, [4, 63, 8]), true, false)];
  });
  console.log(JSON.stringify({ name: info.name, source: info.source, threads: wasmThreads(), err }));
}

void main();
