/** Latent video diffusion: latent cache, trainer, weights, generation, demo stage. */
export { LatentCache, latentCacheKey } from './latents';
export type { LatentCodec, LatentNorm, LatentCacheKey } from './latents';
export { LvdmTrainer, plainBatch, textBatch, classBatch, dropCaptions, dropConditions, textConditionerFor, scheduleFromConfig, lvdmSections } from './trainer';
export type { PreparedBatch, BatchContext, BatchPreparer, LvdmTrainerOptions } from './trainer';
export { LVDM_WEIGHTS, saveLvdmWeights, loadLvdm, resolveAutoencoder } from './weights';
export type { LoadedLvdm, LvdmWeightsState } from './weights';
export { lvdmSamplingTensors } from './stored';
export type { LvdmSamplingTensors } from './stored';
export { initFromWeights } from './init';
export type { InitSpec, InitReport } from './init';
export { generateVideos, sampleLatents, sampleConditioning, unconditionalCond, checkAutoguide, checkLowNoiseExpert, writeSampleOutputs } from './generate';
export type { GenerateOptions, GeneratedVideos, SampleOutputOptions } from './generate';
export { trainLvdm, prepareLatents, DEFAULT_LATENT_CACHE_DIR } from './pipeline';
export type { TrainLvdmOptions, TrainLvdmResult } from './pipeline';
export { runLvdmDemoStage, demoLvdmSections } from './demo';
export type { LvdmDemoOptions, LvdmDemoResult } from './demo';
