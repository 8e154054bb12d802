/** Gaussian diffusion: schedules, forward process, training loss, samplers (no network code here). */
export type { BetaScheduleKind, ScheduleConfig } from './schedule';
export { LVDM_SCHEDULE, makeBetas, NoiseSchedule } from './schedule';
export type { Posterior } from './process';
export { extract, qSample, qMeanVariance, predictX0FromEps, predictEpsFromX0, vFromEps, epsFromV, qPosterior } from './process';
export type { LossKind } from './loss';
export { diffusionLoss, sampleTimesteps, gaussianNoise, vLossWeights, motionWeights, withExtraWeights } from './loss';
export type { Prediction } from './prediction';
export { epsModelFor, predictionTarget, x0FromPrediction } from './prediction';
export type { Cond, Timesteps, EpsModel, NoiseSource, Guidance, KnownValues, SamplerStep } from './types';
export type { SamplerOptions, DdpmOptions, DdimOptions, DdimSpacing, SamplerSpec } from './samplers';
export { writeKnown, concatCond, combineGuidance, cfgGuidance, autoguidedModel, noiseLevelExperts, epsilonScaledModel, guidedEps, ddimTimesteps, ddpmSteps, ddimSteps, samplerSteps, sample } from './samplers';
