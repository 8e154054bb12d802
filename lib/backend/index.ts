// Placeholder: replaced by the backend helper (initBackend, kernels, self-check).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
export async function initBackend(_opts: { prefer?: string; quiet?: boolean } = {}): Promise<string> {
  await tf.setBackend('wasm');
  await tf.ready();
  return tf.getBackend();
}
