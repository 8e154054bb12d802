/**
 * The classifier-free prompt-following reading of shapes clips (metrics/shapes-prompt-following.ts)
 * on real synthetic-shapes-large clips: their own captions are followed, captions with the kinds
 * or the clips swapped are not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderSyntheticFrames, SHAPE_PALETTE, syntheticVideoInfo } from '../data/synthetic';
import { nearestShapeColour, shapesOfCaption, shapesPromptFollowing } from '../metrics/shapes-prompt-following';
import { ExperimentConfig } from '../lib/config/schema';
import { heldOutCaptionedClips, heldOutCaptions } from '../lib/lvdm/captions';

const N = 36;
const T = 16;
const S = 32;

function realClips(): { data: Uint8Array; captions: string[] } {
  const data = new Uint8Array(N * T * S * S * 3);
  const captions: string[] = [];
  for (let i = 0; i < N; i++) {
    data.set(renderSyntheticFrames({ family: 'shapes-large', seed: 5, index: i, height: S, width: S }, 0, T), i * T * S * S * 3);
    captions.push(syntheticVideoInfo({ family: 'shapes-large', seed: 5, index: i }).caption);
  }
  return { data, captions };
}

test('captions: the named shapes in order; palette colours map to themselves', () => {
  assert.deepEqual(shapesOfCaption('a video of a cyan disc and a red triangle moving'), [
    { colour: 'cyan', kind: 'disc' },
    { colour: 'red', kind: 'triangle' },
  ]);
  assert.throws(() => shapesOfCaption('a video of clouds'), /names no shape .*'a video of clouds'/);
  for (const c of SHAPE_PALETTE) assert.equal(nearestShapeColour(c.rgb), c.name);
  assert.equal(nearestShapeColour([235, 50, 35]), 'red');
});

test('real clips follow their own captions; swapped kinds or clips do not', () => {
  const { data, captions } = realClips();
  const own = shapesPromptFollowing(data, [N, T, S, S, 3], captions);
  assert.equal(own.object, N);
  assert.equal(own.colourNamed, N, 'the tracked object always has a colour its caption names');
  assert.ok(own.kindNamed >= 0.85 * N, `kind named ${own.kindNamed} of ${N}`);
  assert.equal(own.kinds.disc + own.kinds.square + own.kinds.triangle, own.object);
  assert.equal(own.polygons, own.kinds.square + own.kinds.triangle);
  // every kind replaced by another: the colour still matches, the kind almost never
  const rot: Record<string, string> = { disc: 'square', square: 'triangle', triangle: 'disc' };
  const wrongKind = shapesPromptFollowing(data, [N, T, S, S, 3], captions.map((c) => c.replace(/\b(disc|square|triangle)\b/g, (k) => rot[k])));
  assert.equal(wrongKind.colourNamed, N);
  assert.ok(wrongKind.kindNamed <= 0.1 * N, `kind named with swapped kinds ${wrongKind.kindNamed}`);
  // each clip read against the next clip's caption: colours mostly differ
  const shifted = shapesPromptFollowing(data, [N, T, S, S, 3], captions.map((_, i) => captions[(i + 1) % N]));
  assert.ok(shifted.colourNamed <= 0.3 * N, `colour named with shifted captions ${shifted.colourNamed}`);
});

test('bad input is an error naming what was expected', () => {
  const { data, captions } = realClips();
  assert.throws(() => shapesPromptFollowing(data, [N, T, S, S], captions), /expected clips \[n, T, H, W, 3\]/);
  assert.throws(() => shapesPromptFollowing(data, [N, T, S, S, 3], captions.slice(1)), /36 clips but 35 captions/);
  assert.throws(() => shapesPromptFollowing(data.subarray(1), [N, T, S, S, 3], captions), /values for shape/);
});

test('the held-out clips behind the text-to-video prompts: their own captions, cycling over the held-out set', async () => {
  const cfg = ExperimentConfig.parse({ name: 'captions-test', seed: 3, data: { source: 'synthetic-shapes-large', frames: 16, size: 32, num_videos: 12, held_out: 3 } });
  const clips = await heldOutCaptionedClips(cfg, 5);
  assert.deepEqual(await heldOutCaptions(cfg, 5), clips.map((c) => c.caption));
  assert.equal(clips[3].caption, clips[0].caption, 'clip 3 is held-out video 0 again');
  assert.notEqual(clips[1].caption, clips[0].caption);
  for (const c of clips) {
    assert.equal(c.video.length, 16 * 32 * 32 * 3);
    assert.ok(shapesOfCaption(c.caption).length >= 1, c.caption);
  }
  // the tracked object of each real clip has a colour its own caption names
  const all = new Uint8Array(clips.length * clips[0].video.length);
  clips.forEach((c, i) => all.set(c.video, i * c.video.length));
  const r = shapesPromptFollowing(all, [5, 16, 32, 32, 3], clips.map((c) => c.caption));
  assert.ok(r.object >= 4, `objects found in ${r.object} of 5 clips`);
  assert.equal(r.colourNamed, r.object);
});
