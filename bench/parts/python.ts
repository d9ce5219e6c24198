// Python cold starts with requirements, with and without the import cache
// (pre-started runtimes that already imported them): runs bench/python.ts in
// its own process and turns its table into rows. Container tier only.
import type { Part } from '../lib/part.js';
import { runScriptPart } from '../lib/script-part.js';

export const python: Part = async (o) => {
  if (!o.tiers.includes('container')) return { rows: [], checks: [], notes: ['python: skipped (needs the container tier)'] };
  const result = runScriptPart('bench/python.ts', o.short ? ['--short'] : [], 'python: see the table above (bench/python.ts)');
  const p50 = (variant: string) => result.rows.find((r) => r.variant === variant)?.['cold p50 ms'] as number | undefined;
  const [cache, preload] = [p50('cache'), p50('preload')];
  if (cache !== undefined && preload !== undefined) {
    result.checks.push({ aim: 'python: a cold start with preloaded requirements pays no import time (faster than importing them)', measured: `cold p50 ${preload.toFixed(1)} ms preloaded vs ${cache.toFixed(1)} ms importing`, met: preload < cache });
  }
  return result;
};
