/**
 * Streaming decode of a latent stream to uint8 frames, in windows, optionally overlapping to hide
 * seams. Units (a mix-up here causes seams): `windowLatents` and `overlapLatents` count LATENT
 * frames; each latent frame decodes to ft PIXEL frames.
 *
 * A window of `windowLatents` latents is decoded together with up to `overlapLatents` latents of
 * context on each side (taken from the neighbouring windows); the context's decoded frames
 * (overlapLatents * ft pixel frames per side) are discarded. For a purely convolutional decoder,
 * overlapLatents >= its temporal receptive field (in latents) reproduces a whole-video decode
 * exactly; this project's autoencoder also has GroupNorm over (T, H, W), so there the result is
 * close to, not equal to, a whole decode. overlapLatents = 0 decodes windows independently (seams
 * at window borders). Nothing is cross-faded: each output frame is decoded once.
 * Output is trimmed to exactly `frames` pixel frames.
 */
import * as tf from '@tensorflow/tfjs';
import { floatToUint8 } from '../io/image';
import { LatentCodec, LatentNorm } from '../lvdm/latents';

export interface DecodeOptions {
  /** Pixel frames to emit in total (the stream is trimmed to this). */
  frames: number;
  /** Latent frames decoded per window (the kept core). */
  windowLatents: number;
  /** Latent frames of context decoded on each side of a window and discarded. */
  overlapLatents: number;
  /** Normalisation the latents carry: z = z_n / scale - shift before decoding. */
  norm: LatentNorm;
}

/** A block of consecutive frames of every video: data is [n, count, H, W, 3] uint8. */
export interface FrameBlock {
  /** Index of the block's first frame in the video. */
  start: number;
  count: number;
  n: number;
  height: number;
  width: number;
  data: Uint8Array;
}

/** Frames of video v in a block: [count, H, W, 3]. */
export function videoFrames(b: FrameBlock, v: number): Uint8Array {
  const per = b.count * b.height * b.width * 3;
  return b.data.subarray(v * per, (v + 1) * per);
}

export function checkDecodeOptions(o: DecodeOptions): void {
  if (!Number.isInteger(o.frames) || o.frames < 1) throw new Error(`decode: frames must be a positive integer, got ${o.frames}`);
  if (!Number.isInteger(o.windowLatents) || o.windowLatents < 1) throw new Error(`decode: window (latent frames) must be a positive integer, got ${o.windowLatents}`);
  if (!Number.isInteger(o.overlapLatents) || o.overlapLatents < 0) throw new Error(`decode: overlap (latent frames) must be an integer >= 0, got ${o.overlapLatents}`);
}

/**
 * Decodes a stream of normalised latent chunks [n, c, h, w, C] (each chunk is disposed here) into
 * frame blocks, one per decode window.
 */
export async function* decodeLatentStream(latents: AsyncIterable<tf.Tensor5D>, codec: LatentCodec, o: DecodeOptions): AsyncGenerator<FrameBlock> {
  checkDecodeOptions(o);
  const [ft] = codec.factors;
  const { windowLatents: win, overlapLatents: ov } = o;
  let buf: tf.Tensor5D | null = null; // [n, left + pending, ...]: left context then undecoded latents
  let left = 0; // context latents at the front of buf
  let emitted = 0; // pixel frames emitted
  let ended = false;

  const decodeCore = (x: tf.Tensor5D, ctxLeft: number, core: number): FrameBlock | null => {
    const count = Math.min(core * ft, o.frames - emitted);
    if (count <= 0) return null;
    const { data, shape } = tf.tidy(() => {
      const z = tf.sub(tf.div(x, o.norm.scale), o.norm.shift) as tf.Tensor5D;
      const y = codec.decode(z); // [n, t * ft, H, W, 3] in [-1, 1]
      const kept = tf.slice(y, [0, ctxLeft * ft, 0, 0, 0], [-1, count, -1, -1, -1]);
      return { data: floatToUint8(kept.dataSync()), shape: kept.shape };
    });
    const block: FrameBlock = { start: emitted, count, n: shape[0], height: shape[2], width: shape[3], data };
    emitted += count;
    return block;
  };

  const take = (x: tf.Tensor5D, from: number, to: number): tf.Tensor5D => tf.slice(x, [0, from, 0, 0, 0], [-1, to - from, -1, -1, -1]);

  const it = latents[Symbol.asyncIterator]();
  try {
    while (!ended || (buf && buf.shape[1] > left)) {
      if (!ended) {
        const r = await it.next();
        if (r.done) ended = true;
        else {
          const chunk = r.value;
          const next: tf.Tensor5D = buf ? (tf.concat([buf, chunk], 1) as tf.Tensor5D) : chunk.clone();
          buf?.dispose();
          chunk.dispose();
          buf = next;
        }
      }
      if (!buf) continue;
      // Decode full windows while their right context is available (or the stream has ended).
      while (buf.shape[1] - left >= win + (ended ? 0 : ov) || (ended && buf.shape[1] > left)) {
        const core = Math.min(win, buf.shape[1] - left);
        const right = Math.min(ov, buf.shape[1] - left - core);
        const x = take(buf, 0, left + core + right);
        const block = decodeCore(x, left, core);
        x.dispose();
        if (block) yield block;
        if (emitted >= o.frames) return;
        // Keep the last `ov` decoded latents as the next window's left context.
        const keepFrom = Math.max(0, left + core - ov);
        const rest = take(buf, keepFrom, buf.shape[1]);
        buf.dispose();
        buf = rest;
        left = left + core - keepFrom;
      }
    }
    if (emitted < o.frames) throw new Error(`decode: the latent stream ended after ${emitted} of ${o.frames} frames`);
  } finally {
    buf?.dispose();
    // Close the source (e.g. when the frame target was reached first) so it releases its tensors.
    await it.return?.(undefined);
  }
}
