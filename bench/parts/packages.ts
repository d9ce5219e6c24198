// Package cold starts and deploys (issue 4): runs bench/packages.ts in its own
// process (it starts and stops its own servers) and turns its tables into rows.
import type { Part } from '../lib/part.js';
import { runScriptPart } from '../lib/script-part.js';

export const packages: Part = async (o) => {
  const args = ['--tiers', o.tiers.filter((t) => t !== 'isolate').join(',') || 'process'];
  if (o.short) args.push('--short');
  return runScriptPart('bench/packages.ts', args, 'packages: see the tables above (bench/packages.ts)');
};
