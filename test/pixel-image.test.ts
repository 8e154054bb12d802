// experiments/pixel-image.ts: the pixel-space diagnostic trains through the library's trainer and
// samples still frames the still-frame reader takes; its pixel codec passes frames through unchanged.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNpz } from '../lib/io/npy';

const ROOT = path.resolve(__dirname, '..');

function pixelImage(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'experiments', 'pixel-image.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('pixel-image: two training steps, still frames written as a video array, existing samples and bad options refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-pixel-image-'));
  try {
    const out = path.join(dir, 'run');
    const r = pixelImage(['--steps', '2', '--batch', '2', '--n', '2', '--out', out]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /unet: 3062739 parameters; pixels \[1,32,32,3\], batch 2, mse loss on v, 2 steps/);
    const logged = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
    assert.equal(logged[logged.length - 1].step, 2);
    assert.ok(Number.isFinite(logged[logged.length - 1].loss));
    const videos = readNpz(path.join(out, 'samples-seed1', 'samples.npz')).get('videos')!;
    assert.equal(videos.dtype, 'uint8');
    assert.deepEqual(videos.shape, [2, 2, 32, 32, 3]);
    // The pixel codec decodes one frame to a 2-frame clip of it repeated.
    const frame = 32 * 32 * 3;
    for (let i = 0; i < 2; i++) {
      const clip = (videos.data as Uint8Array).subarray(i * 2 * frame, (i + 1) * 2 * frame);
      assert.deepEqual(clip.subarray(0, frame), clip.subarray(frame));
    }
    const again = pixelImage(['--sample-only', '--n', '2', '--out', out]);
    assert.notEqual(again.status, 0);
    assert.match(again.out, /samples\.npz exists; pass --force to overwrite it/);
    const bad = pixelImage(['--steps', 'x']);
    assert.match(bad.out, /--steps: expected an integer >= 1, got 'x'/);
    const missing = pixelImage(['--ckpt', path.join(dir, 'none.safetensors')]);
    assert.match(missing.out, /--ckpt: file .*none\.safetensors not found/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
