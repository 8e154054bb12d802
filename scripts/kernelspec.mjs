#!/usr/bin/env node
// Writes the project-local Jupyter kernelspec for tslab: <project>/.jupyter/kernels/tslab/kernel.json
// (found by Jupyter through JUPYTER_PATH=<project>/.jupyter, which `npm run notebook` and
// `npm run notebooks` set). Nothing is written outside the project.
//
// The kernel is scripts/tslab-kernel.cjs under this Node (absolute paths, so neither node nor tslab
// has to be on Jupyter's PATH): it changes into the project root, so notebooks in notebooks/ import
// './lib/...', and runs tslab with the project's strict TypeScript settings.
// Run by scripts/setup.sh after `npm ci`; idempotent (rewrites the file only when it changed).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const launcher = path.join(root, 'scripts', 'tslab-kernel.cjs');
const tslab = path.join(root, 'node_modules', 'tslab', 'dist', 'main.js');
if (!fs.existsSync(tslab)) {
  console.error(`[kernelspec] ${tslab} not found: run npm ci first`);
  process.exit(1);
}

const spec = {
  argv: [process.execPath, launcher, 'kernel', '--config-path', '{connection_file}'],
  display_name: 'TypeScript (tslab, LVDM.ts)',
  language: 'typescript',
};

const dir = path.join(root, '.jupyter', 'kernels', 'tslab');
const file = path.join(dir, 'kernel.json');
const text = JSON.stringify(spec, null, 2) + '\n';
if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) {
  console.log(`[kernelspec] ${path.relative(root, file)} is up to date`);
} else {
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
  console.log(`[kernelspec] wrote ${path.relative(root, file)} (JUPYTER_PATH=${path.join(root, '.jupyter')})`);
}
