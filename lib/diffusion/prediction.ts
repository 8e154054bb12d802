/**
 * What the network predicts: 'eps' (Ho et al., 2020; LVDM) or 'v' = sqrt(abar_t) eps -
 * sqrt(1 - abar_t) x_0 (Salimans & Ho, 2022, section 4). Samplers only ever see eps; a v network
 * is turned into an EpsModel here (eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t), and training
 * regresses on `predictionTarget`. Guidance combines eps predictions; since eps is affine in v at
 * a fixed x_t, guiding in eps equals guiding in v.
 */
import * as tf from '@tensorflow/tfjs';
import { NoiseSchedule } from './schedule';
import { epsFromV, predictX0FromEps, vFromEps } from './process';
import { EpsModel, Timesteps, withSelfCondition } from './types';

export type Prediction = 'eps' | 'v';

function timestepArray(t: Timesteps): ArrayLike<number> {
  return t instanceof Int32Array ? t : t.dataSync();
}

/** The network as an EpsModel: unchanged for 'eps', converted from v for 'v'. */
export function epsModelFor(net: EpsModel, schedule: NoiseSchedule, prediction: Prediction = 'eps'): EpsModel {
  if (prediction === 'eps') return net;
  if (prediction !== 'v') throw new Error(`unknown prediction '${String(prediction)}' (expected 'eps' or 'v')`);
  return withSelfCondition(
    (x, t, cond) =>
      tf.tidy(() => {
        const v = net(x, t, cond);
        return epsFromV(schedule, x, timestepArray(t), v);
      }),
    net.selfCondition,
  );
}

/** The regression target for the network: eps itself, or v from (x_0, eps). */
export function predictionTarget(schedule: NoiseSchedule, prediction: Prediction, x0: tf.Tensor5D, t: ArrayLike<number>, eps: tf.Tensor5D): tf.Tensor5D {
  if (prediction === 'eps') return eps.clone();
  if (prediction !== 'v') throw new Error(`unknown prediction '${String(prediction)}' (expected 'eps' or 'v')`);
  return vFromEps(schedule, x0, t, eps);
}

/** The network's estimate of x_0 from its output at (x_t, t): (x_t - sqrt(1 - abar) eps) / sqrt(abar), eps from v for 'v'. */
export function x0FromPrediction(schedule: NoiseSchedule, prediction: Prediction, xt: tf.Tensor5D, t: ArrayLike<number>, out: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => predictX0FromEps(schedule, xt, t, prediction === 'v' ? epsFromV(schedule, xt, t, out) : out));
}
