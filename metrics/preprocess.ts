/**
 * FVD preprocessing of uint8 clips: bilinear resize to 224 x 224 (no antialiasing), then
 * x -> 2 x / 255 - 1, giving values in [-1, 1] (fvd-kvd.md sections 1 and 3).
 *
 * Sampling conventions (source coordinate of output pixel `o` for scale = in / out):
 *   'tf1-legacy': src = o * scale                       (TF1 tf.image.resize_bilinear with
 *                 align_corners=False, half_pixel_centers=False: the original FVD code)
 *   'half-pixel': src = max((o + 0.5) * scale - 0.5, 0) (PyTorch F.interpolate bilinear with
 *                 align_corners=False: TATS / LVDM)
 * then lerp between floor(src) and floor(src) + 1, both clamped to the image.
 *
 * Geometry: 'stretch' resizes both axes to the target (original FVD, StyleGAN-V); 'short-side-crop'
 * (TATS `preprocess_single`) resizes the short side to the target and the long side to
 * ceil(long * target / short), then takes the centre crop. For square inputs they agree.
 */

export type ResizeConvention = 'tf1-legacy' | 'half-pixel';
export type ResizeGeometry = 'stretch' | 'short-side-crop';

export const RESIZE_CONVENTIONS: readonly ResizeConvention[] = ['tf1-legacy', 'half-pixel'];
export const RESIZE_GEOMETRIES: readonly ResizeGeometry[] = ['stretch', 'short-side-crop'];

export interface AxisPlan {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

/** Source indices and weights for resizing one axis from `inSize` to `outSize`. */
export function axisPlan(inSize: number, outSize: number, convention: ResizeConvention): AxisPlan {
  if (!Number.isInteger(inSize) || !Number.isInteger(outSize) || inSize < 1 || outSize < 1)
    throw new Error(`resize: invalid sizes ${inSize} -> ${outSize}`);
  const scale = inSize / outSize;
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    let src: number;
    if (convention === 'tf1-legacy') src = o * scale;
    else if (convention === 'half-pixel') src = Math.max((o + 0.5) * scale - 0.5, 0);
    else throw new Error(`resize: unknown convention '${String(convention)}' (expected ${RESIZE_CONVENTIONS.join(' | ')})`);
    const f = Math.min(Math.floor(src), inSize - 1);
    lo[o] = f;
    hi[o] = Math.min(f + 1, inSize - 1);
    frac[o] = src - f;
  }
  return { lo, hi, frac };
}

/** Bilinear resize of one H x W x C image (any numeric array), float64 result oh x ow x C. */
export function resizeBilinear(
  src: ArrayLike<number>,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
  convention: ResizeConvention,
): Float64Array {
  if (src.length !== h * w * c) throw new Error(`resizeBilinear: ${src.length} values do not make a ${h}x${w}x${c} image`);
  const py = axisPlan(h, oh, convention);
  const px = axisPlan(w, ow, convention);
  const out = new Float64Array(oh * ow * c);
  for (let y = 0; y < oh; y++) {
    const r0 = py.lo[y] * w * c;
    const r1 = py.hi[y] * w * c;
    const ly = py.frac[y];
    for (let x = 0; x < ow; x++) {
      const c0 = px.lo[x] * c;
      const c1 = px.hi[x] * c;
      const lx = px.frac[x];
      const o = (y * ow + x) * c;
      for (let k = 0; k < c; k++) {
        const top = src[r0 + c0 + k] * (1 - lx) + src[r0 + c1 + k] * lx;
        const bot = src[r1 + c0 + k] * (1 - lx) + src[r1 + c1 + k] * lx;
        out[o + k] = top * (1 - ly) + bot * ly;
      }
    }
  }
  return out;
}

export interface PreprocessOptions {
  /** Output side (224 for I3D). */
  size?: number;
  convention: ResizeConvention;
  geometry?: ResizeGeometry;
}

/** Intermediate size and crop offsets for a frame of h x w. */
export function resizeGeometry(h: number, w: number, size: number, geometry: ResizeGeometry): { rh: number; rw: number; top: number; left: number } {
  if (geometry === 'stretch') return { rh: size, rw: size, top: 0, left: 0 };
  if (geometry !== 'short-side-crop') throw new Error(`resize: unknown geometry '${String(geometry)}' (expected ${RESIZE_GEOMETRIES.join(' | ')})`);
  const scale = size / Math.min(h, w);
  const rh = h < w ? size : Math.ceil(h * scale);
  const rw = h < w ? Math.ceil(w * scale) : size;
  return { rh, rw, top: Math.floor((rh - size) / 2), left: Math.floor((rw - size) / 2) };
}

/**
 * uint8 clip [T, H, W, 3] -> float32 [T, size, size, 3] in [-1, 1] (2 x / 255 - 1 after the resize).
 * Writes into `out` at `offset` when given (for batching).
 */
export function preprocessClip(
  video: Uint8Array,
  t: number,
  h: number,
  w: number,
  opts: PreprocessOptions,
  out?: Float32Array,
  offset = 0,
): Float32Array {
  const size = opts.size ?? 224;
  const c = 3;
  if (video.length !== t * h * w * c) throw new Error(`preprocessClip: ${video.length} bytes do not make a ${t}x${h}x${w}x3 clip`);
  const g = resizeGeometry(h, w, size, opts.geometry ?? 'stretch');
  const py = axisPlan(h, g.rh, opts.convention);
  const px = axisPlan(w, g.rw, opts.convention);
  const target = out ?? new Float32Array(t * size * size * c);
  if (target.length < offset + t * size * size * c) throw new Error('preprocessClip: output buffer too small');
  const k255 = 2 / 255;
  for (let f = 0; f < t; f++) {
    const fb = f * h * w * c;
    const ob = offset + f * size * size * c;
    for (let y = 0; y < size; y++) {
      const yy = y + g.top;
      const r0 = fb + py.lo[yy] * w * c;
      const r1 = fb + py.hi[yy] * w * c;
      const ly = py.frac[yy];
      for (let x = 0; x < size; x++) {
        const xx = x + g.left;
        const c0 = px.lo[xx] * c;
        const c1 = px.hi[xx] * c;
        const lx = px.frac[xx];
        const o = ob + (y * size + x) * c;
        for (let k = 0; k < c; k++) {
          const top = video[r0 + c0 + k] * (1 - lx) + video[r0 + c1 + k] * lx;
          const bot = video[r1 + c0 + k] * (1 - lx) + video[r1 + c1 + k] * lx;
          target[o + k] = (top * (1 - ly) + bot * ly) * k255 - 1;
        }
      }
    }
  }
  return target;
}
