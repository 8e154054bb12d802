// Gradients tfjs lacks but LVDM needs (backend-independent): conv3dTranspose, i.e. the
// Conv3DBackpropInputV2 kernel, so the video autoencoder's decoder can be trained.
import * as tf from '@tensorflow/tfjs';

let done = false;

/** Registers the missing gradients once (skips any that tfjs already provides). */
export function registerExtraGradients(): void {
  if (done) return;
  done = true;
  if (tf.getGradient('Conv3DBackpropInputV2') === undefined) {
    tf.registerGradient({
      kernelName: 'Conv3DBackpropInputV2',
      inputsToSave: ['dy', 'filter'],
      gradFunc: (ddx, saved, attrs) => {
        // out = conv3d^T(dy, filter): its adjoint w.r.t. dy is conv3d, w.r.t. the filter the
        // filter gradient of conv3d with input ddx and output gradient dy.
        const [dy, filter] = saved as [tf.Tensor5D, tf.Tensor5D];
        const a = attrs as unknown as tf.Conv3DBackpropInputV2Attrs;
        const g = (Array.isArray(ddx) ? ddx[0] : ddx) as tf.Tensor5D;
        return {
          dy: () => tf.conv3d(g, filter, a.strides, a.pad),
          filter: () =>
            tf.engine().runKernel('Conv3DBackpropFilterV2', { x: g, dy }, {
              strides: a.strides,
              pad: a.pad,
              filterShape: filter.shape,
            } as unknown as tf.NamedAttrMap) as tf.Tensor,
        };
      },
    });
  }
}
