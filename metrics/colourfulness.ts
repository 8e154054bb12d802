/**
 * Colourfulness of video frames (issue 12), Hasler & Suesstrunk (2003), "Measuring colourfulness
 * in natural images": with rg = R - G and yb = (R + G) / 2 - B over a frame's pixels (0-255),
 *   M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)
 * (population sd). A grey frame reads 0; in their study 15 is "slightly", 59 "quite" and 109
 * "extremely" colourful. Long videos whose latents run away end as saturated rainbow fields far
 * more colourful than any real clip, which FVD_proxy per window does not register on the ucf
 * stand-in (experiments/RESULTS.md); this reading does.
 */

/** M of every frame of one clip [T, H, W, 3] (uint8). */
export function frameColourfulness(clip: Uint8Array, T: number, H: number, W: number): Float64Array {
  const per = H * W;
  if (clip.length !== T * per * 3) throw new Error(`frameColourfulness: expected ${T}x${H}x${W}x3 = ${T * per * 3} values, got ${clip.length}`);
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let srg = 0;
    let syb = 0;
    let qrg = 0;
    let qyb = 0;
    for (let i = t * per * 3, e = (t + 1) * per * 3; i < e; i += 3) {
      const rg = clip[i] - clip[i + 1];
      const yb = 0.5 * (clip[i] + clip[i + 1]) - clip[i + 2];
      srg += rg;
      syb += yb;
      qrg += rg * rg;
      qyb += yb * yb;
    }
    const mrg = srg / per;
    const myb = syb / per;
    const vrg = Math.max(0, qrg / per - mrg * mrg);
    const vyb = Math.max(0, qyb / per - myb * myb);
    out[t] = Math.sqrt(vrg + vyb) + 0.3 * Math.sqrt(mrg * mrg + myb * myb);
  }
  return out;
}

/** Mean M over frames [from, to) of each clip of videos [n, T, H, W, 3] (default: all frames). */
export function colourfulness(videos: Uint8Array, n: number, T: number, H: number, W: number, from = 0, to = T): number[] {
  const per = T * H * W * 3;
  if (videos.length !== n * per) throw new Error(`colourfulness: expected ${n}x${T}x${H}x${W}x3 values, got ${videos.length}`);
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > T || from >= to) throw new Error(`colourfulness: frames [${from}, ${to}) must lie within [0, ${T}) and hold at least one frame`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const m = frameColourfulness(videos.subarray(i * per + from * H * W * 3, i * per + to * H * W * 3), to - from, H, W);
    out.push(m.reduce((a, b) => a + b, 0) / m.length);
  }
  return out;
}
