#!/usr/bin/env node
// The project's tslab kernel launcher (the kernelspec written by scripts/kernelspec.mjs runs it):
//   node scripts/tslab-kernel.cjs kernel --config-path <connection file>
//
// 1. Starts in the project root: tslab compiles cells with rootDir = its working folder, so a
//    notebook in notebooks/ imports the library as './lib/...', './data/...', './metrics/...'.
// 2. Compiles with `strict: true`, as the project's tsconfig does. tslab passes TypeScript's
//    defaults (non-strict) and has no option for it; without strictNullChecks the library's zod
//    config types infer every key as optional and imports of lib/ fail to type-check. The compiler
//    module tslab loads is replaced, in require's cache, by a view whose createWatchCompilerHost
//    adds `strict: true` to tslab's compiler options (everything else is the module itself).
// 3. Resolves imports as TypeScript and Node do. tslab looks a required id up among its compiled
//    modules by joining it to the requiring file's folder and appending '.js': a folder import
//    (`./lib/notebook`) misses the folder's index.ts, and a package id equal to a sibling file's
//    name (`require('arquero')` in lib/results/arquero.ts) finds that file itself and recurses
//    without end. Its path helper (tslab/dist/tspath normalizeJoin, read at each call) is wrapped:
//    for tslab's module lookup a package id maps to a name no compiled module has (so Node's
//    require loads the package), and an extensionless folder with an index.ts, and no file of that
//    name, maps to <folder>/index.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
process.chdir(root);

const tslabDir = path.dirname(require.resolve('tslab/package.json', { paths: [root] }));
const tsFile = require.resolve('@tslab/typescript-for-tslab', { paths: [tslabDir] });
const ts = require(tsFile);
require.cache[tsFile].exports = new Proxy(ts, {
  get(target, key, receiver) {
    if (key === 'createWatchCompilerHost') {
      return (rootFiles, options, ...rest) => target.createWatchCompilerHost(rootFiles, { ...options, strict: true }, ...rest);
    }
    return Reflect.get(target, key, receiver);
  },
});

const tspath = require(path.join(tslabDir, 'dist', 'tspath.js'));
const join = tspath.normalizeJoin;
const isFile = (f) => fs.existsSync(f) && fs.statSync(f).isFile();
const isPackageId = (id) => typeof id === 'string' && !id.startsWith('.') && !path.isAbsolute(id);
tspath.normalizeJoin = (...parts) => {
  const p = join(...parts);
  // tslab's executor calls normalizeJoin(dirname, id) from requireFromSideOutputs (and only there with a package id).
  if (parts.length === 2 && isPackageId(parts[1]) && /requireFromSideOutputs/.test(new Error().stack ?? '')) return `${p}.package-id`;
  if (path.extname(p) !== '' || ['.ts', '.tsx', '.js'].some((e) => isFile(p + e)) || !isFile(path.join(p, 'index.ts'))) return p;
  return `${p}/index`;
};

require(path.join(tslabDir, 'dist', 'main.js')).main();
