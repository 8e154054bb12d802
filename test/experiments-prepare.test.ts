/**
 * A real data set through the runner: a `prepare` stage decodes a (tiny, generated) Sky
 * Time-lapse layout into train / test shards once, and the autoencoder stage trains on them.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { planExperiment, taskDir, taskState } from '../lib/experiments/plan';
import { runTask } from '../lib/experiments/execute';
import { readShardIndex } from '../data/shards';

const SMOKE = path.join(__dirname, '..', 'experiments', 'smoke.yaml');

/** Sky Time-lapse layout: root/{train,test}/<video>/<clip>/*.jpg, from ffmpeg's test sources. */
function makeSky(root: string): void {
  const sources = ['testsrc', 'testsrc2', 'rgbtestsrc'];
  for (const split of ['train', 'test'])
    for (const [i, src] of sources.entries()) {
      const dir = path.join(root, split, `video${i}`, 'clip0');
      fs.mkdirSync(dir, { recursive: true });
      execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `${src}=size=48x48:rate=8`, '-frames:v', '24', path.join(dir, '%04d.jpg')]);
    }
}

test('a prepare stage decodes the data set once; stages that name it train on its shards', async () => {
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-prep-'));
  try {
    const root = path.join(dir, 'sky');
    makeSky(root);
    const file = path.join(dir, 'exp.yaml');
    fs.writeFileSync(
      file,
      [
        `include: [${JSON.stringify(SMOKE)}]`,
        'name: prep',
        `data: { source: sky, root: ${JSON.stringify(root)}, frames: 16, size: 32 }`,
        'stages:',
        '  shards: { kind: prepare, data: { frames: 16 }, jobs: 1 }',
        '  ae: { shards: shards, autoencoder: { train: { steps: 2, ckpt_every: 2 } } }',
      ].join('\n'),
    );
    const plan = planExperiment(file, { out: path.join(dir, 'run') });
    const prep = plan.tasks.find((t) => t.id === 'shards')!;
    const ae = plan.tasks.find((t) => t.id === 'ae')!;
    assert.equal(prep.kind, 'prepare');
    assert.deepEqual(ae.deps, ['shards']);
    // With the synthetic stand-in there is nothing to prepare: the stage and its references go.
    const synthetic = planExperiment(file, { set: ['data.source=synthetic-sky'] });
    assert.equal(synthetic.tasks.some((t) => t.kind === 'prepare'), false);
    assert.deepEqual(synthetic.tasks.find((t) => t.id === 'ae')!.deps, []);

    const before = tf.memory().numTensors;
    await runTask(plan, prep, { log: () => undefined });
    for (const split of ['train', 'test']) {
      const index = readShardIndex(path.join(taskDir(plan, prep), split));
      assert.equal(index.videos.length, 3, split);
      assert.equal(index.config.height, 32);
    }
    await runTask(plan, ae, { log: () => undefined });
    assert.equal(taskState(plan, ae), 'done');
    const cfg = JSON.parse(fs.readFileSync(path.join(taskDir(plan, ae), 'config.json'), 'utf8')) as { data: { source: string; root: string } };
    assert.equal(cfg.data.source, 'shards');
    assert.equal(cfg.data.root, path.join(taskDir(plan, prep), 'train'));
    assert.equal(tf.memory().numTensors, before);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
