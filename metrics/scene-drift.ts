/**
 * Scene drift of long videos (issue 12): how far a clip's mean frame colour moves between frames
 * `lag` apart. Per-window FVD compares each window with real clips on its own, so a video that
 * jumps between plausible scenes (a blue sky, then an orange one) scores like a coherent one;
 * this reading sees the jump. Real long clips of a stationary scene drift little at every lag.
 *
 * drift(lag) of a clip = mean over t of (1/3) sum_c |m_c(t + lag) - m_c(t)|, with m_c(t) the mean of
 * channel c over frame t's pixels (0-255 levels).
 */

/** Mean colour per frame of one clip [T, H, W, 3] (uint8): [T * 3] floats. */
export function frameMeans(clip: Uint8Array, T: number, H: number, W: number): Float64Array {
  const per = H * W;
  if (clip.length !== T * per * 3) throw new Error(`frameMeans: expected ${T}x${H}x${W}x3 = ${T * per * 3} values, got ${clip.length}`);
  const m = new Float64Array(T * 3);
  for (let t = 0; t < T; t++) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let i = t * per * 3, e = (t + 1) * per * 3; i < e; i += 3) {
      r += clip[i];
      g += clip[i + 1];
      b += clip[i + 2];
    }
    m[t * 3] = r / per;
    m[t * 3 + 1] = g / per;
    m[t * 3 + 2] = b / per;
  }
  return m;
}

/** drift(lag) of one clip from its frameMeans (see the module comment). */
export function colourDrift(means: Float64Array, lag: number): number {
  const T = means.length / 3;
  if (!Number.isInteger(lag) || lag < 1 || lag >= T) throw new Error(`colourDrift: lag must be an integer in [1, ${T - 1}] for ${T} frames, got ${lag}`);
  let s = 0;
  for (let t = 0; t + lag < T; t++) for (let c = 0; c < 3; c++) s += Math.abs(means[(t + lag) * 3 + c] - means[t * 3 + c]);
  return s / (3 * (T - lag));
}

/** drift(lag) of every clip of videos [n, T, H, W, 3], for each lag: result[lagIndex][clip]. */
export function sceneDrift(videos: Uint8Array, n: number, T: number, H: number, W: number, lags: readonly number[]): number[][] {
  const per = T * H * W * 3;
  if (videos.length !== n * per) throw new Error(`sceneDrift: expected ${n}x${T}x${H}x${W}x3 values, got ${videos.length}`);
  const means = Array.from({ length: n }, (_, i) => frameMeans(videos.subarray(i * per, (i + 1) * per), T, H, W));
  return lags.map((lag) => means.map((m) => colourDrift(m, lag)));
}
