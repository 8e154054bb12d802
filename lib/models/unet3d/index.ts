/** LVDM's 3D UNet (per-frame convolutions, factorised space-time attention, AdaGN). */
export { UNet3D, UNET_COND_KEYS, upsampleNearest2x } from './unet';
export type { UNetForwardOptions } from './unet';
export { ResBlock, frameConv, dropout } from './resblock';
export type { ResBlockOptions, ForwardContext } from './resblock';
export { SpatialAttention, TemporalAttention, STAttentionBlock, attentionCore, relativeGatherMatrix } from './attention';
export type { RelPosOrientation, RelativeTables, AttentionOptions, TemporalAttentionOptions } from './attention';
export { SpatialTemporalTransformer, gelu } from './transformer';
export type { TransformerOptions } from './transformer';
export { adaptiveGroupNorm, groupsFor } from './norm';
export { sinusoidEmbedding, timestepValues } from './embedding';
export { unetFlops } from './flops';
export type { FlopCount } from './flops';
export { REFERENCE_UNET, referenceUNetConfig } from './reference';
