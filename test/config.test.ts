// lib/config: YAML experiment files validated against the one schema; errors name the file, the
// key path and what was expected; --set overrides; every file under experiments/ validates.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyOverrides, ConfigError, loadConfig, parseYaml, validateConfig } from '../lib/config/load';
import { ExperimentConfig } from '../lib/config/schema';

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-config-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

const VALID = `name: tiny
data:
  source: synthetic-shapes
  frames: 8
  size: 32
autoencoder:
  model:
    channels: [16, 32]
  train:
    steps: 10
    batch_size: 2
`;

/** Asserts loadConfig(file) throws a ConfigError whose message matches every pattern. */
function expectError(file: string, patterns: RegExp[], overrides: string[] = []): string {
  let msg = '';
  assert.throws(
    () => loadConfig(file, overrides),
    (e: Error) => {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e.name}: ${e.message}`);
      msg = e.message;
      return true;
    },
  );
  for (const p of patterns) assert.match(msg, p, `message: ${msg}`);
  return msg;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a valid YAML loads with every default filled in', () => {
  const cfg = loadConfig(write('valid.yaml', VALID));
  assert.equal(cfg.name, 'tiny');
  assert.equal(cfg.seed, 0);
  assert.deepEqual(cfg.data, { source: 'synthetic-shapes', frames: 8, size: 32, frame_stride: 1, num_videos: 512, held_out: 16, split: 'train', fold: 1 });
  const ae = cfg.autoencoder!;
  assert.deepEqual(ae.model, {
    in_channels: 3,
    latent_channels: 4,
    channels: [16, 32],
    temporal_factor: 4,
    spatial_factor: 8,
    enc_res_blocks: 1,
    dec_res_blocks: 2,
    norm_groups: 32,
    logvar_clamp: [-30, 20],
    decoder: 'mirror',
    frame_wise: false,
    arch: 'lvdm',
  });
  assert.equal(ae.loss.pixel, 'l1');
  assert.equal(ae.loss.lpips_weight, 0);
  assert.equal(ae.loss.lpips_weights, null);
  assert.equal(ae.loss.disc_start, 50000);
  // The optimiser section's default is itself completed by its own field defaults.
  assert.deepEqual(ae.optim, { kind: 'adam', lr: 3.6e-5, betas: [0.5, 0.9], eps: 1e-8, weight_decay: 0, warmup_steps: 0, decay: 'constant', min_lr: 0, grad_clip: 0 });
  assert.deepEqual(ae.train, { steps: 10, batch_size: 2, ckpt_every: 500, log_every: 10, ema_decay: 0 });
  assert.equal(ae.latent_stats_clips, 32);
  // Sections without defaults stay absent.
  const noAe = loadConfig(write('no-ae.yaml', 'name: x\ndata: {source: s, frames: 4, size: 8}\n'));
  assert.equal(noAe.autoencoder, undefined);
});

test('an unknown key, top level or nested, names the file and the key path', () => {
  const top = write('unknown-top.yaml', VALID + 'lerning_rate: 3\n');
  expectError(top, [new RegExp(esc(top)), /unknown key 'lerning_rate'/]);
  const nested = write('unknown-nested.yaml', VALID.replace('    channels: [16, 32]', '    channels: [16, 32]\n    chanels: [1]'));
  expectError(nested, [new RegExp(esc(nested)), /unknown key 'autoencoder\.model\.chanels'/]);
  const two = write('unknown-two.yaml', VALID.replace('  size: 32', '  size: 32\n  sise: 3\n  colour: red'));
  expectError(two, [/unknown keys 'data\.sise', 'data\.colour'/]);
  const proto = write('unknown-proto.yaml', VALID + '__proto__:\n  polluted: 1\n');
  expectError(proto, [/unknown key '__proto__'/]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('a wrong type names the key path and the expected type', () => {
  const f = write('wrong-type.yaml', VALID.replace('frames: 8', 'frames: eight'));
  expectError(f, [new RegExp(esc(f)), /key 'data\.frames': expected number, got string/]);
  const g = write('wrong-int.yaml', VALID.replace('steps: 10', 'steps: 2.5'));
  expectError(g, [/key 'autoencoder\.train\.steps': expected integer, got float/]);
  const h = write('wrong-enum.yaml', VALID.replace('    batch_size: 2', '    batch_size: 2\n  loss:\n    pixel: l3'));
  expectError(h, [/key 'autoencoder\.loss\.pixel': expected one of 'l1', 'mse', got 'l3'/]);
  const i = write('wrong-list.yaml', VALID.replace('channels: [16, 32]', 'channels: [16, "x"]'));
  expectError(i, [/key 'autoencoder\.model\.channels\.1': expected number, got string/]);
  const j = write('wrong-range.yaml', VALID.replace('size: 32', 'size: -4'));
  expectError(j, [/key 'data\.size'/, /greater than 0/]);
  const k = write('wrong-section.yaml', VALID.replace(/data:\n(  .*\n)+/, 'data: 3\n'));
  expectError(k, [/key 'data': expected object, got number/]);
});

test('a missing required key is named', () => {
  const f = write('missing.yaml', VALID.replace('  frames: 8\n', ''));
  expectError(f, [new RegExp(esc(f)), /missing key 'data\.frames' \(expected number\)/]);
  const g = write('missing-section.yaml', 'name: x\n');
  expectError(g, [/missing key 'data'/]);
  const empty = write('empty.yaml', '');
  expectError(empty, [new RegExp(esc(empty)), /missing key 'name'/]);
  const list = write('list.yaml', '- name: x\n');
  expectError(list, [new RegExp(esc(list)), /key '<root>': expected object, got array/]);
});

test('a missing file names the file', () => {
  const f = path.join(dir, 'does-not-exist.yaml');
  expectError(f, [new RegExp(esc(f)), /not found/]);
});

test('a YAML syntax error gives the file and the line', () => {
  const f = write('syntax.yaml', 'name: x\ndata:\n  source: [unclosed\n  frames: 8\nseed: 1\n');
  const msg = expectError(f, [new RegExp(esc(f) + ':\\d+: invalid YAML')]);
  const line = Number(/:(\d+): invalid YAML/.exec(msg)![1]);
  assert.ok(line >= 3 && line <= 5, `line ${line} in: ${msg}`);
  const dup = write('dup.yaml', 'name: x\nseed: 1\nname: y\n');
  expectError(dup, [new RegExp(esc(dup) + ':3: invalid YAML'), /unique/]);
  const tab = write('indent.yaml', 'name: x\ndata:\n  source: s\n frames: 8\n');
  expectError(tab, [new RegExp(esc(tab) + ':4: invalid YAML')]);
});

test('--set overrides: numbers, lists, strings, new nested keys; validated after applying', () => {
  const f = write('base.yaml', VALID);
  const cfg = loadConfig(f, ['autoencoder.train.steps=25', 'autoencoder.model.channels=[8, 16, 32]', 'seed=7', 'name=renamed', 'autoencoder.optim.lr=1e-3', 'autoencoder.loss.pixel=mse', 'data.root=/tmp/x y']);
  assert.equal(cfg.autoencoder!.train.steps, 25);
  assert.deepEqual(cfg.autoencoder!.model.channels, [8, 16, 32]);
  assert.equal(cfg.seed, 7);
  assert.equal(cfg.name, 'renamed');
  assert.equal(cfg.autoencoder!.optim.lr, 1e-3);
  assert.equal(cfg.autoencoder!.optim.kind, 'adam'); // the rest of the section keeps its defaults
  assert.equal(cfg.autoencoder!.loss.pixel, 'mse');
  assert.equal(cfg.data.root, '/tmp/x y');
  // Later overrides win.
  assert.equal(loadConfig(f, ['seed=1', 'seed=2']).seed, 2);
  // Validated: wrong type, unknown key.
  expectError(f, [new RegExp(esc(f)), /key 'autoencoder\.train\.steps': expected number, got string/], ['autoencoder.train.steps=abc']);
  expectError(f, [/unknown key 'autoencoder\.train\.stepz'/], ['autoencoder.train.stepz=3']);
  // Malformed overrides.
  assert.throws(() => loadConfig(f, ['seed']), /expected key\.path=value, got 'seed'/);
  assert.throws(() => loadConfig(f, ['=3']), /expected key\.path=value/);
  assert.throws(() => loadConfig(f, ['name.first=3']), /'name' is not a mapping/);
  assert.throws(() => loadConfig(f, ['autoencoder..steps=3']), /invalid key path/);
  assert.throws(() => loadConfig(f, ['autoencoder.model.channels=[1, 2']), /invalid YAML/);
  // No prototype pollution through a key path.
  assert.throws(() => loadConfig(f, ['__proto__.polluted=1']), ConfigError);
  assert.throws(() => loadConfig(f, ['data.__proto__.polluted=1']), ConfigError);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // Inherited names are not walked into: 'constructor' is just an unknown key.
  expectError(f, [/unknown key 'autoencoder\.model\.constructor'/], ['autoencoder.model.constructor.x=1']);
  expectError(f, [/unknown key 'autoencoder\.model\.constructor'/], ['autoencoder.model.constructor=1']);
});

test('applyOverrides and validateConfig work on plain objects (no file)', () => {
  const raw = applyOverrides(parseYaml(VALID, 'inline'), ['data.frames=16']);
  const cfg = validateConfig(raw, 'inline');
  assert.equal(cfg.data.frames, 16);
  assert.throws(() => validateConfig({ name: 'x' }, 'inline'), /inline: missing key 'data'/);
  const created = applyOverrides(null, ['a.b.c=[1, 2]']) as { a: { b: { c: number[] } } };
  assert.deepEqual(created.a.b.c, [1, 2]);
});

/** Every .yaml/.yml file under `d`, recursively. */
function yamlFiles(d: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

/** Experiment files of `lvdm run` (stages, includes) and their base/ fragments: test/experiments-plan.test.ts plans each. */
function isExperimentFile(f: string): boolean {
  return f.split(path.sep).includes('base') || /^(include|stages):/m.test(fs.readFileSync(f, 'utf8'));
}

test('every YAML under experiments/ validates against the schema', () => {
  const files = yamlFiles(path.join(__dirname, '..', 'experiments')).filter((f) => !isExperimentFile(f));
  assert.ok(files.length > 0, 'no YAML files found under experiments/');
  for (const f of files) {
    const cfg = loadConfig(f);
    assert.ok(ExperimentConfig.safeParse(cfg).success, f);
  }
});
