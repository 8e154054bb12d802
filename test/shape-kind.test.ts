import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyOutline, isRegularOutline, outlineHarmonics, OUTLINE_SECTORS, type ShapeKind } from '../metrics/shape-kind';
import { objectConsistency } from '../metrics/object-consistency';
import { renderSyntheticFrames } from '../data/synthetic';
import { kindConfusion } from '../metrics/object-consistency-calibration';

/** Boundary radius of a regular n-gon of circumradius R (first vertex at angle a0) in direction theta. */
function polygonRadius(n: number, R: number, a0: number, theta: number): number {
  const half = Math.PI / n;
  let phi = (theta - a0 - half) % (2 * half);
  if (phi < 0) phi += 2 * half;
  return (R * Math.cos(half)) / Math.cos(phi - half); // apothem / cos(angle from the edge normal)
}

/** Coverage map [size, size] of the region where inside(dx, dy) holds about (cx, cy), by 16 x 16 supersampling (independent of the code under test). */
function rasterise(size: number, cx: number, cy: number, inside: (dx: number, dy: number) => boolean): Float64Array {
  const out = new Float64Array(size * size);
  const s = 16;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let hits = 0;
      for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) if (inside(x + (j + 0.5) / s - cx, y + (i + 0.5) / s - cy)) hits++;
      out[y * size + x] = hits / (s * s);
    }
  }
  return out;
}

/** Coverage map [size, size] of a disc (n = 0) or regular n-gon. */
function coverage(size: number, n: number, R: number, a0: number, cx: number, cy: number): Float64Array {
  return rasterise(size, cx, cy, (dx, dy) => Math.hypot(dx, dy) <= (n === 0 ? R : polygonRadius(n, R, a0, Math.atan2(dy, dx))));
}

/** Coverage map [size, size] of an ellipse with semi-axes a (along angle phi) and b. */
function ellipseCoverage(size: number, a: number, b: number, phi: number, cx: number, cy: number): Float64Array {
  return rasterise(size, cx, cy, (dx, dy) => {
    const u = dx * Math.cos(phi) + dy * Math.sin(phi);
    const v = -dx * Math.sin(phi) + dy * Math.cos(phi);
    return (u / a) ** 2 + (v / b) ** 2 <= 1;
  });
}

/** Boundary radius of an ellipse with semi-axes a (along angle phi) and b in direction theta. */
function ellipseRadius(a: number, b: number, phi: number, theta: number): number {
  const t = theta - phi;
  return (a * b) / Math.hypot(b * Math.cos(t), a * Math.sin(t));
}

/** a_m of the continuous outline: sectors' equivalent radius sqrt(mean of r(theta)^2 over the sector), by fine quadrature. */
function continuousHarmonic(n: number, a0: number, m: number): number {
  return continuousOutlineHarmonic((theta) => polygonRadius(n, 1, a0, theta), m);
}

/** a_m of the continuous outline r(theta), as continuousHarmonic. */
function continuousOutlineHarmonic(radius: (theta: number) => number, m: number): number {
  const K = OUTLINE_SECTORS;
  const step = (2 * Math.PI) / K;
  let re = 0;
  let im = 0;
  let sum = 0;
  for (let k = 0; k < K; k++) {
    let acc = 0;
    const q = 2000;
    for (let i = 0; i < q; i++) acc += radius(-Math.PI + (k + (i + 0.5) / q) * step) ** 2;
    const r = Math.sqrt(acc / q);
    const th = -Math.PI + (k + 0.5) * step;
    sum += r;
    re += r * Math.cos(m * th);
    im -= r * Math.sin(m * th);
  }
  return Math.hypot(re, im) / sum;
}

test('outline harmonics of finely rasterised polygons match the continuous outline', () => {
  for (const [n, m] of [[3, 3], [4, 4]] as const) {
    for (const a0 of [0, 0.3, 1.1]) {
      const size = 200;
      const h = outlineHarmonics(coverage(size, n, 80, a0, 100.3, 99.6), size, size, 100.3, 99.6);
      const want = continuousHarmonic(n, a0, m);
      const got = m === 3 ? h.a3 : h.a4;
      assert.ok(Math.abs(got - want) < 0.004, `${n}-gon at ${a0}: a${m} ${got.toFixed(4)} vs continuous ${want.toFixed(4)}`);
      assert.ok(want > 0.04, `the continuous ${n}-gon's a${m} is large (${want.toFixed(3)})`);
      // A regular polygon's r(theta) repeats every 120 or 90 degrees: no 2-fold harmonic.
      assert.ok(h.a2 < 0.002, `${n}-gon at ${a0}: a2 ${h.a2.toFixed(4)}`);
    }
  }
  const disc = outlineHarmonics(coverage(200, 0, 80, 0, 100.3, 99.6), 200, 200, 100.3, 99.6);
  assert.ok(disc.a2 < 0.002 && disc.a3 < 0.002 && disc.a4 < 0.002, `disc: ${JSON.stringify(disc)}`);
  const empty = outlineHarmonics(new Float64Array(16), 4, 4, 2, 2);
  assert.ok(Number.isNaN(empty.a2) && Number.isNaN(empty.a3) && Number.isNaN(empty.a4));
});

test('a2 of a finely rasterised ellipse matches the continuous outline, and elongated blobs are not regular outlines', () => {
  for (const [a, b, phi] of [[60, 50, 0], [70, 40, 0.7], [55, 52, 2.1]] as const) {
    const h = outlineHarmonics(ellipseCoverage(200, a, b, phi, 100.3, 99.6), 200, 200, 100.3, 99.6);
    const want = continuousOutlineHarmonic((theta) => ellipseRadius(a, b, phi, theta), 2);
    assert.ok(Math.abs(h.a2 - want) < 0.003, `ellipse ${a}/${b} at ${phi}: a2 ${h.a2.toFixed(4)} vs continuous ${want.toFixed(4)}`);
  }
  // On the 32 x 32 grid: an ellipse of axis ratio 1.4 is a blob, not a disc, at any angle; a circle is regular.
  for (const phi of [0, 0.5, 1.3]) {
    const blob = outlineHarmonics(ellipseCoverage(32, 7, 5, phi, 15.6, 16.2), 32, 32, 15.6, 16.2);
    assert.equal(isRegularOutline(blob), false, `ellipse 7/5 at ${phi}: a2 ${blob.a2.toFixed(3)}`);
    const round = outlineHarmonics(ellipseCoverage(32, 6, 6, phi, 15.6, 16.2), 32, 32, 15.6, 16.2);
    assert.equal(isRegularOutline(round), true, `circle: a2 ${round.a2.toFixed(3)}`);
  }
  assert.equal(isRegularOutline({ a2: NaN }), false);
  assert.equal(isRegularOutline({ a2: 0.05 }, { elongation: 0.06 }), true);
});

test('classifyOutline reads discs, squares and triangles of 5-16 px at any rotation on a 32 x 32 grid', () => {
  const kinds: [ShapeKind, number][] = [['disc', 0], ['square', 4], ['triangle', 3]];
  for (const [kind, n] of kinds) {
    for (const R of [2.6, 4, 6, 8]) {
      for (const a0 of [0, 0.4, 0.9, 1.7, 2.5]) {
        const cx = 15.3 + a0;
        const cy = 16.8 - a0;
        const h = outlineHarmonics(coverage(32, n, R, a0, cx, cy), 32, 32, cx, cy);
        assert.equal(classifyOutline(h), kind, `${kind} R ${R} a0 ${a0}: a3 ${h.a3.toFixed(3)} a4 ${h.a4.toFixed(3)}`);
        assert.equal(isRegularOutline(h), true, `${kind} R ${R} a0 ${a0}: a2 ${h.a2.toFixed(3)}`);
      }
    }
  }
  assert.equal(classifyOutline({ a3: NaN, a4: 0 }), null);
  assert.equal(classifyOutline({ a3: 0.02, a4: 0.02 }, { triangle: 0.01, square: 0.5 }), 'triangle');
});

test('objectConsistency reads the kind of real shapes clips: single-shape videos of both families', () => {
  const rows = kindConfusion(30, { seed: 3 });
  for (const family of ['shapes', 'shapes-large'] as const) {
    const mine = rows.filter((r) => r.family === family);
    assert.equal(mine.reduce((s, r) => s + r.clips, 0), 30);
    const right = mine.reduce((s, r) => s + r.read[r.truth], 0);
    assert.ok(right >= 29, `${family}: ${right}/30 single-shape clips read as their kind (${JSON.stringify(mine)})`);
    const regular = mine.reduce((s, r) => s + r.regular, 0);
    assert.ok(regular >= 29, `${family}: ${regular}/30 single-shape clips have a regular outline`);
  }
  // The summary counts kinds over clips with an object, and over the consistent ones.
  const clips = new Uint8Array(3 * 16 * 32 * 32 * 3);
  for (let i = 0; i < 3; i++) clips.set(renderSyntheticFrames({ family: 'shapes-large', seed: 1, index: i, height: 32, width: 32 }, 0, 16), i * 16 * 32 * 32 * 3);
  const r = objectConsistency(clips, [3, 16, 32, 32, 3]);
  assert.equal(r.kinds.disc + r.kinds.square + r.kinds.triangle, r.perClip.filter((c) => c.kind !== null).length);
  assert.equal(r.consistentKinds.disc + r.consistentKinds.square + r.consistentKinds.triangle, r.consistent);
  assert.equal(r.consistentRegular, r.perClip.filter((c) => c.consistent && isRegularOutline(c.outline)).length);
});
