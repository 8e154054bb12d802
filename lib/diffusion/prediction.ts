/**
 * What the network predicts: 'eps' (Ho et al., 2020; LVDM) or 'v' = sqrt(abar_t) eps -
 * sqrt(1 - abar_t) x_0 (Salimans & Ho, 2022, section 4). Samplers only ever see eps; a v network
 * is turned into an EpsModel here (eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t), and training
 * regresses on `predictionTarget`. Guidance combines eps predictions; since eps is affine in v at
 * a fixed x_t, guiding in eps equals guiding in v.
 */
import * as tf from '@tensorflow/tfjs';
import { NoiseSchedule } from './schedule';
import { epsFromV, vFromEps } from './process';
import { EpsModel, Timesteps } from './types';

export type Prediction = 'eps' | 'v';

function timestepArray(t: Timesteps): ArrayLike<number> {
  return t instanceof Int32Array ? t : t.dataSync();
}

/** The network as an EpsModel: unchanged for 'eps', converted from v for 'v'. */
export function epsModelFor(net: EpsModel, schedule: NoiseSchedule, prediction: Prediction = 'eps'): EpsModel {
  if (prediction === 'eps') return net;
  if (prediction !== 'v') throw new Error(`unknown prediction '${String(prediction)}' (expected 'eps' or 'v')`);
  return (x, t, cond) =>
    tf.tidy(() => {
      const v = net(x, t, cond);
      return epsFromV(schedule, x, timestepArray(t), v);
    });
}

/** The regression target for the network: eps itself, or v from (x_0, eps). */
export function predictionTarget(schedule: NoiseSchedule, prediction: Prediction, x0: tf.Tensor5D, t: ArrayLike<number>, eps: tf.Tensor5D): tf.Tensor5D {
  if (prediction === 'eps') return eps.clone();
  if (prediction !== 'v') throw new Error(`unknown prediction '${String(prediction)}' (expected 'eps' or 'v')`);
  return vFromEps(schedule, x0, t, eps);
}
