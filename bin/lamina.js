#!/usr/bin/env node
// The `lamina` command: a thin launcher for the built CLI (see `npm run build`).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('lamina: not built yet; run `npm install` (or `npm run build`) in the checkout first');
    process.exit(1);
  }
  throw err;
});
