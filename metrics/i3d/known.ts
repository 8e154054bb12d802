/**
 * Known I3D weights, identified by the content digest of `weights.ts` (SHA-256 over the
 * canonical float32 tensors), which is the same for a safetensors or npz export, in either key
 * layout, of the same weights - unlike file hashes, which change with the export tool.
 *
 * Entries are added only after the digest has been computed from a verified export (see
 * metrics/README.md, "Checking a weight file"); until then a loaded file is reported as
 * "unverified" and `i3dSelfCheck` (FVD of all-zero vs all-255 videos, about 131 for the TF-Hub
 * FVD weights) is the available sanity check.
 */
import * as tf from '@tensorflow/tfjs';
import { I3D } from './model';

export interface KnownI3D {
  /** e.g. 'tfhub-i3d-kinetics-400-v1' */
  name: string;
  contentSha256: string;
  /** Where the weights come from and how they were exported. */
  note: string;
  /** FVD(all-zeros, all-255) of the google-research example, at BN eps 1e-3. */
  selfCheckFvd?: number;
}

export const KNOWN_I3D_WEIGHTS: readonly KnownI3D[] = [];

export function identifyI3D(contentSha256: string): KnownI3D | undefined {
  return KNOWN_I3D_WEIGHTS.find((k) => k.contentSha256 === contentSha256);
}

/** The google-research FVD example's expected value for the TF-Hub weights ("should be around 131"). */
export const SELF_CHECK_REFERENCE = 131;

/**
 * FVD between 16 all-zero and 16 all-255 videos of 15 frames (google-research
 * frechet_video_distance/example.py). Within each set all features are equal, so the covariances
 * vanish and FVD = ||f(zeros) - f(255s)||^2: two forward passes. Constant frames make the resize
 * convention irrelevant.
 */
export function i3dSelfCheck(model: I3D, frames = 15): number {
  const feats = tf.tidy(() => {
    const x = tf.concat([tf.fill([1, frames, 224, 224, 3], -1), tf.fill([1, frames, 224, 224, 3], 1)], 0) as tf.Tensor5D; // 0 -> -1, 255 -> 1
    return model.forward(x); // [2, classes]
  });
  const f = feats.dataSync();
  feats.dispose();
  const d = model.numClasses;
  let s = 0;
  for (let i = 0; i < d; i++) s += (f[i] - f[d + i]) ** 2;
  return s;
}
