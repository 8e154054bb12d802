#!/usr/bin/env node
// The `lvdm` program: runs the TypeScript sources directly through tsx (no build step).
'use strict';
require('tsx/cjs/api').register();
const { main } = require('../lib/cli/main.ts');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exitCode = 1;
  },
);
