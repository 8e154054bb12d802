import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../lib/nn/rng';
import {
  SYNTHETIC_FAMILIES,
  SYNTHETIC_SHAPE_CLASSES,
  SYNTHETIC_UCF_CLASSES,
  SyntheticDataset,
  type SyntheticFamily,
  type SyntheticVideoSpec,
  renderSyntheticFrames,
  shapeClassKinds,
  syntheticFamilyFromSource,
  syntheticVideoInfo,
} from '../data/synthetic';
import { bounce } from '../data/raster';
import { clipConsistency } from '../metrics/object-consistency';

const spec = (family: SyntheticFamily, index: number, size = 32, seed = 3): SyntheticVideoSpec => ({
  family, seed, index, height: size, width: size,
});

/** The shapes' colours by the names captions give them (written out here, not read from data/synthetic.ts). */
const palette: Record<string, [number, number, number]> = {
  red: [230, 40, 40], green: [40, 210, 60], blue: [40, 80, 240], yellow: [245, 225, 30],
  magenta: [225, 50, 220], cyan: [40, 220, 230], orange: [250, 140, 20], white: [250, 250, 250],
};

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

test('bounce is a triangle wave between the walls', () => {
  assert.equal(bounce(0.25, 0, 1), 0.25);
  assert.ok(Math.abs(bounce(1.25, 0, 1) - 0.75) < 1e-12);
  assert.ok(Math.abs(bounce(2.25, 0, 1) - 0.25) < 1e-12);
  assert.ok(Math.abs(bounce(-0.25, 0, 1) - 0.25) < 1e-12);
  for (let p = -5; p < 5; p += 0.37) {
    const v = bounce(p, 0.2, 0.7);
    assert.ok(v >= 0.2 - 1e-12 && v <= 0.7 + 1e-12);
  }
});

test('frames are a pure function of (family, seed, index, t): windows and strides agree with single frames', () => {
  for (const family of SYNTHETIC_FAMILIES) {
    const s = spec(family, 5);
    const frameBytes = 32 * 32 * 3;
    const a = renderSyntheticFrames(s, 5, 4, 3); // frames 5, 8, 11, 14
    assert.equal(a.length, 4 * frameBytes);
    for (let i = 0; i < 4; i++) {
      const single = renderSyntheticFrames(s, 5 + 3 * i, 1);
      assert.deepEqual(a.subarray(i * frameBytes, (i + 1) * frameBytes), single, `${family} frame ${5 + 3 * i}`);
    }
    // Rendering again (caches warm) gives identical bytes; other seed / index differ.
    assert.deepEqual(renderSyntheticFrames(s, 5, 4, 3), a);
    assert.notDeepEqual(renderSyntheticFrames({ ...s, seed: 4 }, 5, 4, 3), a);
    assert.notDeepEqual(renderSyntheticFrames({ ...s, index: 6 }, 5, 4, 3), a);
  }
});

test('long videos: frame 5000 renders directly and motion stays coherent (small steps, larger drift)', () => {
  for (const family of SYNTHETIC_FAMILIES) {
    let step = 0;
    let far = 0;
    for (let v = 0; v < 6; v++) {
      const s = spec(family, v * 12 + 3, 32);
      const f = renderSyntheticFrames(s, 5000, 2);
      const g = renderSyntheticFrames(s, 5040, 1);
      step += meanAbsDiff(f.subarray(0, 3072), f.subarray(3072));
      far += meanAbsDiff(f.subarray(0, 3072), g);
    }
    assert.ok(step > 0, `${family}: consecutive frames should differ (the video moves)`);
    assert.ok(step * 2 < far, `${family}: one-frame change ${step / 6} should be well below 40-frame change ${far / 6}`);
  }
});

test('shapes: the colours named in the caption are drawn, on a textured background', () => {
  for (let index = 0; index < 8; index++) {
    const s = spec('shapes', index, 48);
    const info = syntheticVideoInfo(s);
    assert.match(info.caption, /^a video of (a \w+ (disc|square|triangle)(, | and )?)+ moving$/);
    const named = [...info.caption.matchAll(/a (\w+) (disc|square|triangle)/g)].map((m) => m[1]);
    assert.ok(named.length >= 1 && named.length <= 3);
    const clip = renderSyntheticFrames(s, 0, 8, 10);
    for (const name of named) {
      const [r, g, b] = palette[name];
      let hits = 0;
      for (let i = 0; i < clip.length; i += 3) if (clip[i] === r && clip[i + 1] === g && clip[i + 2] === b) hits++;
      assert.ok(hits > 8, `video ${index}: ${name} pixels expected, found ${hits}`);
    }
  }
});

test('any size: a 64x64 render downsampled 2x matches the 32x32 render of the same video', () => {
  for (const family of SYNTHETIC_FAMILIES) {
    const small = renderSyntheticFrames(spec(family, 2, 32), 7, 1);
    const big = renderSyntheticFrames(spec(family, 2, 64), 7, 1);
    const down = new Uint8Array(small.length);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) {
      const at = (yy: number, xx: number): number => big[(yy * 64 + xx) * 3 + c];
      down[(y * 32 + x) * 3 + c] = (at(2 * y, 2 * x) + at(2 * y + 1, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x + 1)) / 4;
    }
    const d = meanAbsDiff(down, small);
    assert.ok(d < 8, `${family}: mean abs difference ${d.toFixed(2)} between scales`);
    // Non-square frames render too.
    assert.equal(renderSyntheticFrames({ ...spec(family, 2), height: 24, width: 40 }, 0, 2).length, 2 * 24 * 40 * 3);
  }
});

test('taichi: static camera (background corner unchanged over time); ucf: a moving camera changes the background', () => {
  const corner = (clip: Uint8Array, f: number, size: number): number[] => {
    const out: number[] = [];
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) for (let c = 0; c < 3; c++) out.push(clip[((f * size + y) * size + x) * 3 + c]);
    return out;
  };
  const tai = renderSyntheticFrames(spec('taichi', 1, 48), 0, 10, 7);
  for (let f = 1; f < 10; f++) assert.deepEqual(corner(tai, f, 48), corner(tai, 0, 48));
  // Over many ucf videos, most have a camera pan: their corner changes over 40 frames.
  let panning = 0;
  for (let v = 0; v < 12; v++) {
    const clip = renderSyntheticFrames(spec('ucf', v, 32), 0, 2, 40);
    if (corner(clip, 0, 32).some((x, i) => x !== corner(clip, 1, 32)[i])) panning++;
  }
  assert.ok(panning >= 4 && panning < 12, `expected a mix of panning and static cameras, got ${panning}/12 panning`);
});

test('ucf: balanced labels, class names and captions; every class animates', () => {
  assert.ok(SYNTHETIC_UCF_CLASSES.length >= 10);
  const ds = new SyntheticDataset({ family: 'ucf', size: 24, frames: 4, height: 32, width: 32, seed: 1 });
  assert.equal(ds.numClasses, SYNTHETIC_UCF_CLASSES.length);
  const info = syntheticVideoInfo(ds.spec(0));
  assert.deepEqual(info, { label: 0, className: 'BallBouncing', caption: 'a video of ball bouncing' });
  assert.equal(syntheticVideoInfo(ds.spec(15)).caption, 'a video of jumping jack');
  assert.equal(syntheticVideoInfo(ds.spec(17)).caption, 'a video of body weight squats');
  for (let i = 0; i < 24; i++) assert.equal(syntheticVideoInfo(ds.spec(i)).label, i % SYNTHETIC_UCF_CLASSES.length);
  for (let c = 0; c < SYNTHETIC_UCF_CLASSES.length; c++) {
    const clip = renderSyntheticFrames(ds.spec(c), 0, 2, 7);
    assert.ok(meanAbsDiff(clip.subarray(0, 3072), clip.subarray(3072)) > 0.05, `${SYNTHETIC_UCF_CLASSES[c]} should move`);
  }
});

test('SyntheticDataset.get: the window start comes from rng, within the video, stride honoured', async () => {
  const ds = new SyntheticDataset({ family: 'sky', size: 5, frames: 4, height: 16, width: 16, frameStride: 3, seed: 9, videoLength: 40 });
  assert.equal(ds.span(), 10);
  const starts = new Set<number>();
  for (let k = 0; k < 40; k++) {
    const rng = new Rng(k);
    const expectStart = new Rng(k).int(0, 30);
    const clip = await ds.get(2, rng);
    assert.equal(clip.key, `synthetic-sky/000002@${expectStart}`);
    assert.deepEqual(clip.video, renderSyntheticFrames(ds.spec(2), expectStart, 4, 3));
    assert.equal(clip.frames, 4);
    assert.equal(clip.caption, 'a time-lapse video of clouds drifting across the sky');
    assert.equal(clip.label, undefined);
    starts.add(expectStart);
  }
  assert.ok(starts.size > 10);
  assert.throws(() => new SyntheticDataset({ family: 'sky', frames: 16, frameStride: 4, videoLength: 50 }), /videoLength 50 is shorter than one clip/);
  assert.throws(() => new SyntheticDataset({ family: 'clouds' as SyntheticFamily }), /unknown family 'clouds'/);
  assert.throws(() => ds.clipAt(5, 0), /index 5 out of range/);
  assert.equal(syntheticFamilyFromSource('synthetic-taichi'), 'taichi');
  assert.equal(syntheticFamilyFromSource('synthetic-foo'), null);
  assert.equal(syntheticFamilyFromSource('ucf101'), null);
});

/** The colour of pixel p of an RGB frame, as 'r,g,b'. */
const colourKey = (frame: Uint8Array, p: number): string => `${frame[3 * p]},${frame[3 * p + 1]},${frame[3 * p + 2]}`;

/** The commonest colour of an RGB frame of n pixels and how many pixels have it. */
function commonestColour(frame: Uint8Array, n: number): { key: string; count: number } {
  const counts = new Map<string, number>();
  for (let p = 0; p < n; p++) counts.set(colourKey(frame, p), (counts.get(colourKey(frame, p)) ?? 0) + 1);
  const [key, count] = [...counts].sort((a, b) => b[1] - a[1])[0];
  return { key, count };
}

for (const [family, of] of [
  ['shapes-plain', 'shapes-upright'],
  ['shapes-single', 'shapes-large'],
] as const)
  test(`${family}: ${of}'s first shape alone, where it was, on a background of one colour`, () => {
    const S = 32;
    let multi = 0;
    for (let index = 0; index < 24; index++) {
      const full = syntheticVideoInfo(spec(of, index));
      const first = /^a video of a (\w+) (disc|square|triangle)/.exec(full.caption);
      assert.ok(first, full.caption);
      if (full.caption.includes(' and ')) multi++;
      const one = syntheticVideoInfo(spec(family, index));
      assert.equal(one.caption, `a video of a ${first[1]} ${first[2]} moving`, `video ${index}`);
      assert.equal(one.className, first[2]);
      const clip = renderSyntheticFrames(spec(family, index, S), 0, 2, 6);
      const fullClip = renderSyntheticFrames(spec(of, index, S), 0, 2, 6);
      const shape = palette[first[1]];
      for (let f = 0; f < 2; f++) {
        const frame = clip.subarray(f * S * S * 3, (f + 1) * S * S * 3);
        const fullFrame = fullClip.subarray(f * S * S * 3, (f + 1) * S * S * 3);
        // The background: the commonest colour; every other pixel lies between it and the shape's colour (edges are anti-aliased).
        const { key: bgKey, count: bgCount } = commonestColour(frame, S * S);
        const bg = bgKey.split(',').map(Number);
        assert.ok(bgCount > 0.5 * S * S, `video ${index} frame ${f}: the background covers half the frame (${bgCount} px)`);
        for (let p = 0; p < S * S; p++) {
          const px = [frame[3 * p], frame[3 * p + 1], frame[3 * p + 2]];
          const d = shape.map((c, i) => c - bg[i]);
          const t = Math.max(0, Math.min(1, d.reduce((a, di, i) => a + di * (px[i] - bg[i]), 0) / d.reduce((a, di) => a + di * di, 0)));
          const off = Math.max(...px.map((v, i) => Math.abs(v - (bg[i] + t * d[i]))));
          assert.ok(off <= 2, `video ${index} frame ${f} pixel ${p}: [${px}] is neither the background [${bg}], the shape [${shape}] nor between them`);
          // Where the full scene shows the first shape, so does this one: same place, size and angle.
          if (shape.every((c, i) => fullFrame[3 * p + i] === c)) assert.deepEqual(px, shape, `video ${index} frame ${f} pixel ${p}: the first shape moved`);
        }
      }
    }
    assert.ok(multi >= 3, `videos with two shapes in ${of} (${multi}) keep one in ${family}`);
  });

test("shapes-flat: shapes-large's shapes, where they are, on a background of one colour", () => {
  const S = 32;
  let textured = 0;
  for (let index = 0; index < 16; index++) {
    const large = syntheticVideoInfo(spec('shapes-large', index));
    assert.equal(syntheticVideoInfo(spec('shapes-flat', index)).caption, large.caption, `video ${index}: same shapes as shapes-large`);
    const colours = [...large.caption.matchAll(/a (\w+) (disc|square|triangle)/g)].map((m) => palette[m[1]]);
    const flat = renderSyntheticFrames(spec('shapes-flat', index, S), 0, 1, 1);
    const tex = renderSyntheticFrames(spec('shapes-large', index, S), 0, 1, 1);
    const isShape = (f: Uint8Array, p: number): boolean => colours.some((c) => colourKey(f, p) === c.join(','));
    const bg = commonestColour(flat, S * S).key;
    const bgTex = commonestColour(tex, S * S).key;
    let other = 0;
    let otherTex = 0;
    for (let p = 0; p < S * S; p++) {
      assert.equal(isShape(flat, p), isShape(tex, p), `video ${index} pixel ${p}: a shape's pixel in one family and not the other`);
      if (!isShape(flat, p) && colourKey(flat, p) !== bg) other++;
      if (!isShape(tex, p) && colourKey(tex, p) !== bgTex) otherTex++;
    }
    // Besides the background's one colour and the shapes' own, only their anti-aliased edges.
    assert.ok(other < 0.15 * S * S, `video ${index}: ${other} pixels are neither the background nor a shape`);
    if (otherTex - other > 0.3 * S * S) textured++;
  }
  assert.ok(textured >= 4, `shapes-large draws textured backgrounds behind the same shapes (${textured} of 16 videos)`);
});

test("shapes-upright: shapes-large's videos with squares axis-aligned, triangles pointing up, none spinning", () => {
  const S = 64;
  /** Rows and columns of the pixels of exactly `rgb` in one frame. */
  const maskOf = (frame: Uint8Array, rgb: [number, number, number]): { ys: number[]; xs: number[] } => {
    const ys: number[] = [];
    const xs: number[] = [];
    for (let p = 0; p < S * S; p++) if (frame[3 * p] === rgb[0] && frame[3 * p + 1] === rgb[1] && frame[3 * p + 2] === rgb[2]) { ys.push(Math.floor(p / S)); xs.push(p % S); }
    return { ys, xs };
  };
  /** Mask pixels / bounding-box area: 1 for an axis-aligned square, about 0.5 for a diamond. */
  const fill = (m: { ys: number[]; xs: number[] }): number =>
    m.ys.length / ((Math.max(...m.ys) - Math.min(...m.ys) + 1) * (Math.max(...m.xs) - Math.min(...m.xs) + 1));
  let squares = 0;
  let triangles = 0;
  let tiltedLarge = 0;
  for (let index = 0; index < 60; index++) {
    const up = syntheticVideoInfo(spec('shapes-upright', index));
    assert.equal(up.caption, syntheticVideoInfo(spec('shapes-large', index)).caption, `video ${index}: same draws as shapes-large`);
    const kinds = [...up.caption.matchAll(/a (\w+) (disc|square|triangle)/g)].map((m) => ({ colour: m[1], kind: m[2] }));
    const upClip = renderSyntheticFrames(spec('shapes-upright', index, S), 0, 3, 7);
    const largeClip = renderSyntheticFrames(spec('shapes-large', index, S), 0, 3, 7);
    if (kinds.every((k) => k.kind === 'disc')) {
      assert.deepEqual(upClip, largeClip, `video ${index}: discs only, so the same frames as shapes-large`);
      continue;
    }
    if (kinds.length !== 1) continue; // a single polygon: no overlap to hide its outline
    for (let f = 0; f < 3; f++) {
      const m = maskOf(upClip.subarray(f * S * S * 3, (f + 1) * S * S * 3), palette[kinds[0].colour]);
      if (m.ys.length < 40) continue; // squeezed against a wall
      if (kinds[0].kind === 'square') {
        assert.ok(fill(m) > 0.85, `video ${index} frame ${f}: an upright square fills its box (${fill(m).toFixed(2)})`);
        squares++;
        if (fill(maskOf(largeClip.subarray(f * S * S * 3, (f + 1) * S * S * 3), palette[kinds[0].colour])) < 0.75) tiltedLarge++;
      } else {
        // Pointing up: the top third of its rows is narrower than the bottom third.
        const top = Math.min(...m.ys);
        const h = Math.max(...m.ys) - top + 1;
        const width = (from: number, to: number): number => m.ys.filter((y) => y - top >= from && y - top < to).length;
        assert.ok(width(0, h / 3) < width((2 * h) / 3, h), `video ${index} frame ${f}: the triangle points up`);
        triangles++;
      }
    }
  }
  assert.ok(squares >= 3 && triangles >= 3, `enough single squares (${squares}) and triangles (${triangles}) checked`);
  assert.ok(tiltedLarge >= 1, 'shapes-large draws the same squares tilted');
});

test('shapes classes: the set of kinds a clip shows (caption and pixels agree); names and bit masks; errors name the range', () => {
  assert.deepEqual(SYNTHETIC_SHAPE_CLASSES, ['disc', 'square', 'disc+square', 'triangle', 'disc+triangle', 'square+triangle', 'disc+square+triangle']);
  assert.deepEqual(shapeClassKinds(0), [0]);
  assert.deepEqual(shapeClassKinds(5), [1, 2]);
  assert.deepEqual(shapeClassKinds(6), [0, 1, 2]);
  assert.throws(() => shapeClassKinds(7), /shapes class label 7 outside \[0, 6\]/);
  assert.equal(new SyntheticDataset({ family: 'shapes-large', size: 4 }).numClasses, 7);
  const kinds = ['disc', 'square', 'triangle'];
  let checkedByPixels = 0;
  for (let index = 0; index < 40; index++) {
    const s = spec('shapes-large', index);
    const info = syntheticVideoInfo(s);
    const named = new Set([...info.caption.matchAll(/(disc|square|triangle)/g)].map((m) => m[1]));
    assert.deepEqual(shapeClassKinds(info.label!).map((k) => kinds[k]), kinds.filter((k) => named.has(k)), `video ${index}: ${info.caption}`);
    assert.equal(info.className, SYNTHETIC_SHAPE_CLASSES[info.label!]);
    // One-shape clips: the kind read from the drawn outline (metrics/shape-kind.ts) is the class.
    if (/^a video of a \w+ \w+ moving$/.test(info.caption)) {
      const clip = renderSyntheticFrames(s, 0, 16);
      assert.equal(clipConsistency(clip, [16, 32, 32, 3]).kind, info.className, `video ${index}: ${info.caption}`);
      checkedByPixels += 1;
    }
  }
  assert.ok(checkedByPixels >= 10, `${checkedByPixels} one-shape clips read`);
});
