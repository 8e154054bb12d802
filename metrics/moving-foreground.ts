/**
 * Moving foreground of videos (issue 12): the share of a frame's pixels that differ from the
 * clip's still background by more than `threshold` levels, a reading of whether clips show an
 * actor at all. On the ucf stand-in the ball, pendulum, wheel or figure moves in front of a still
 * wall, so real clips have a few percent of moving pixels; a generated clip that is a texture
 * without an actor has almost none, yet FVD_proxy can score it below the reconstruction floor.
 *
 * Per window of `window` consecutive frames: background b = the per-pixel, per-channel median
 * over the window's frames (mean of the two middle values for an even count, as numpy.median);
 * a pixel of frame t is moving where max_c |v_c(t) - b_c| > threshold (0-255 levels). The reading
 * of a clip is the mean over its windows and their frames of the moving share of pixels.
 *
 * What it cannot tell: which pixels move. A clip whose texture or colour changes within a window
 * reads as moving too, so on videos that drift (the long-video models of experiments/RESULTS.md)
 * it measures the drift, not an actor; it reads short clips and reconstructions, whose backgrounds
 * are still.
 */

export interface MovingForegroundOptions {
  /** Levels (0-255) a pixel must differ from the background by to count as moving (default 32). */
  threshold?: number;
  /** Frames per window whose median is the background (default 16; a clip holds floor(T / window)). */
  window?: number;
}

/** Moving-foreground share of each clip of videos [n, T, H, W, 3] (uint8), in [0, 1]. */
export function movingForeground(videos: Uint8Array, n: number, T: number, H: number, W: number, opts: MovingForegroundOptions = {}): number[] {
  const threshold = opts.threshold ?? 32;
  const window = opts.window ?? 16;
  const perFrame = H * W * 3;
  if (videos.length !== n * T * perFrame) throw new Error(`movingForeground: expected ${n}x${T}x${H}x${W}x3 values, got ${videos.length}`);
  if (!Number.isInteger(window) || window < 2 || window > T) throw new Error(`movingForeground: window must be an integer in [2, ${T}] for ${T} frames, got ${window}`);
  if (!(threshold >= 0)) throw new Error(`movingForeground: threshold must be >= 0, got ${threshold}`);
  const windows = Math.floor(T / window);
  const background = new Float32Array(perFrame);
  const column = new Float64Array(window);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let moving = 0;
    for (let w = 0; w < windows; w++) {
      const start = (i * T + w * window) * perFrame;
      for (let p = 0; p < perFrame; p++) {
        for (let t = 0; t < window; t++) column[t] = videos[start + t * perFrame + p];
        column.sort();
        const m = window >> 1;
        background[p] = window % 2 ? column[m] : (column[m - 1] + column[m]) / 2;
      }
      for (let t = 0; t < window; t++) {
        const f = start + t * perFrame;
        for (let p = 0; p < perFrame; p += 3) {
          const d = Math.max(Math.abs(videos[f + p] - background[p]), Math.abs(videos[f + p + 1] - background[p + 1]), Math.abs(videos[f + p + 2] - background[p + 2]));
          if (d > threshold) moving++;
        }
      }
    }
    out.push(moving / (windows * window * H * W));
  }
  return out;
}
