/**
 * Reconstruction quality metrics in float64 JS (no tensors): PSNR and SSIM.
 *
 * Arrays are flat, channels-last: an image [H, W, C], a video [T, H, W, C] or a batch
 * [B, T, H, W, C]; uint8 or float values. SSIM (Wang et al. 2004, "Image Quality Assessment:
 * From Error Visibility to Structural Similarity") uses an 11x11 Gaussian window (sigma 1.5),
 * K1 = 0.01, K2 = 0.03 and population covariances, and averages the SSIM map over the pixels at
 * least 5 away from the border, per frame and channel, as scikit-image's
 * structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
 * data_range=R, channel_axis=-1) does; a video's value is the mean over its frames.
 */

export type Pixels = ArrayLike<number>;

function checkPair(a: Pixels, b: Pixels, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: arrays differ in length (${a.length} vs ${b.length})`);
  if (a.length === 0) throw new Error(`${what}: empty arrays`);
}

/** Mean squared error over all elements. */
export function mse(a: Pixels, b: Pixels): number {
  checkPair(a, b, 'mse');
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s / a.length;
}

/** PSNR = 10 log10(maxVal^2 / MSE) over all elements (Infinity when identical). */
export function psnr(a: Pixels, b: Pixels, maxVal = 255): number {
  if (!(maxVal > 0)) throw new Error(`psnr: maxVal must be > 0, got ${maxVal}`);
  const m = mse(a, b);
  return m === 0 ? Infinity : 10 * Math.log10((maxVal * maxVal) / m);
}

/** PSNR of each consecutive block of `frameSize` elements (e.g. H*W*C per frame). */
export function psnrPerFrame(a: Pixels, b: Pixels, frameSize: number, maxVal = 255): number[] {
  checkPair(a, b, 'psnrPerFrame');
  if (!Number.isInteger(frameSize) || frameSize <= 0 || a.length % frameSize !== 0)
    throw new Error(`psnrPerFrame: frameSize ${frameSize} does not divide the array length ${a.length}`);
  const out: number[] = [];
  for (let o = 0; o < a.length; o += frameSize) {
    let s = 0;
    for (let i = o; i < o + frameSize; i++) {
      const d = a[i] - b[i];
      s += d * d;
    }
    out.push(s === 0 ? Infinity : 10 * Math.log10((maxVal * maxVal) / (s / frameSize)));
  }
  return out;
}

export interface SsimOptions {
  /** Value range of the data, R in C1 = (K1 R)^2, C2 = (K2 R)^2 (default 255 for uint8). */
  dataRange?: number;
}

const K1 = 0.01;
const K2 = 0.03;
const RADIUS = 5; // int(3.5 * 1.5 + 0.5): scipy's truncate 3.5 -> 11 taps

/** Normalised 11-tap Gaussian, sigma 1.5 (as scipy.ndimage.gaussian_filter builds it). */
const GAUSS: Float64Array = (() => {
  const w = new Float64Array(2 * RADIUS + 1);
  let s = 0;
  for (let i = -RADIUS; i <= RADIUS; i++) {
    w[i + RADIUS] = Math.exp(-0.5 * (i / 1.5) ** 2);
    s += w[i + RADIUS];
  }
  for (let i = 0; i < w.length; i++) w[i] /= s;
  return w;
})();

function frameGeometry(shape: readonly number[], length: number, what: string): { frames: number; h: number; w: number; c: number } {
  if (shape.length < 3) throw new Error(`${what}: shape must end in [H, W, C], got [${shape}]`);
  const [h, w, c] = shape.slice(-3);
  const size = shape.reduce((p, d) => p * d, 1);
  if (size !== length) throw new Error(`${what}: shape [${shape}] has ${size} elements, arrays have ${length}`);
  if (h < 2 * RADIUS + 1 || w < 2 * RADIUS + 1) throw new Error(`${what}: frames must be at least 11x11 for the 11x11 window, got ${h}x${w}`);
  return { frames: size / (h * w * c), h, w, c };
}

/**
 * Mean SSIM of one channel of one frame. Only the window positions whose window lies inside the
 * frame are evaluated (they are exactly the ones skimage keeps after cropping), so no padding rule
 * is involved. Separable filtering: columns first into `tmp`, then rows.
 */
function ssimChannel(a: Pixels, b: Pixels, base: number, h: number, w: number, c: number, c1: number, c2: number): number {
  const ow = w - 2 * RADIUS;
  const oh = h - 2 * RADIUS;
  // Horizontal pass over every row: 5 moments [h, ow].
  const hx = new Float64Array(h * ow);
  const hy = new Float64Array(h * ow);
  const hxx = new Float64Array(h * ow);
  const hyy = new Float64Array(h * ow);
  const hxy = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let sx = 0;
      let sy = 0;
      let sxx = 0;
      let syy = 0;
      let sxy = 0;
      for (let k = 0; k <= 2 * RADIUS; k++) {
        const idx = base + (y * w + x + k) * c;
        const va = a[idx];
        const vb = b[idx];
        const g = GAUSS[k];
        sx += g * va;
        sy += g * vb;
        sxx += g * va * va;
        syy += g * vb * vb;
        sxy += g * va * vb;
      }
      const o = y * ow + x;
      hx[o] = sx;
      hy[o] = sy;
      hxx[o] = sxx;
      hyy[o] = syy;
      hxy[o] = sxy;
    }
  }
  // Vertical pass and the SSIM map (Wang et al. eq. 13), accumulated.
  let total = 0;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let ux = 0;
      let uy = 0;
      let uxx = 0;
      let uyy = 0;
      let uxy = 0;
      for (let k = 0; k <= 2 * RADIUS; k++) {
        const o = (y + k) * ow + x;
        const g = GAUSS[k];
        ux += g * hx[o];
        uy += g * hy[o];
        uxx += g * hxx[o];
        uyy += g * hyy[o];
        uxy += g * hxy[o];
      }
      const vx = uxx - ux * ux;
      const vy = uyy - uy * uy;
      const vxy = uxy - ux * uy;
      total += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
    }
  }
  return total / (oh * ow);
}

/** SSIM of each frame (mean over its channels). `shape` = [..., H, W, C]. */
export function ssimPerFrame(a: Pixels, b: Pixels, shape: readonly number[], opts: SsimOptions = {}): number[] {
  checkPair(a, b, 'ssim');
  const { frames, h, w, c } = frameGeometry(shape, a.length, 'ssim');
  const range = opts.dataRange ?? 255;
  if (!(range > 0)) throw new Error(`ssim: dataRange must be > 0, got ${range}`);
  const c1 = (K1 * range) ** 2;
  const c2 = (K2 * range) ** 2;
  const out: number[] = [];
  for (let f = 0; f < frames; f++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += ssimChannel(a, b, f * h * w * c + ch, h, w, c, c1, c2);
    out.push(s / c);
  }
  return out;
}

/** Mean SSIM over frames (and channels). `shape` = [H, W, C], [T, H, W, C] or [B, T, H, W, C]. */
export function ssim(a: Pixels, b: Pixels, shape: readonly number[], opts: SsimOptions = {}): number {
  const v = ssimPerFrame(a, b, shape, opts);
  return v.reduce((p, q) => p + q, 0) / v.length;
}
