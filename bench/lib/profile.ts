// Summarizes a V8 .cpuprofile (node --cpu-prof): self time by function and by
// package, so "where does the time go" fits in a table.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time that was not idle, ms. */
  busyMs: number;
  byFunction: { name: string; where: string; ms: number; pct: number }[];
  byGroup: { group: string; ms: number; pct: number }[];
}

/** Which part of the stack a frame belongs to. */
function groupOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  if (url.includes('/dist/')) return 'lamina';
  return url.split('/').pop() ?? url;
}

function shortUrl(url: string): string {
  return url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
}

/**
 * Self time by function and by package. `window` (ms since the profile began)
 * keeps only the samples taken in it, e.g. the measured run without start-up.
 * Native frames (syscalls, no script) are named with their nearest JS caller.
 */
export function summarizeProfile(file: string, top = 15, window?: { fromMs: number; toMs: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += (p.timeDeltas[i] ?? 0) / 1000;
    if (window && (t < window.fromMs || t > window.toMs)) continue;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  const fns = new Map<string, { name: string; where: string; ms: number }>();
  const groups = new Map<string, number>();
  let busy = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    busy += ms;
    let where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    if (!url) {
      let a = parent.get(id);
      while (a !== undefined && !byId.get(a)!.callFrame.url) a = parent.get(a);
      const caller = a !== undefined ? byId.get(a)!.callFrame : undefined;
      if (caller) where = `<- ${caller.functionName || '(anonymous)'} ${shortUrl(caller.url)}:${caller.lineNumber + 1}`;
    }
    const key = `${functionName}@${where}`;
    const f = fns.get(key) ?? { name: functionName || '(anonymous)', where, ms: 0 };
    f.ms += ms;
    fns.set(key, f);
    const g = groupOf(url, functionName);
    groups.set(g, (groups.get(g) ?? 0) + ms);
  }
  const pct = (ms: number) => (100 * ms) / busy;
  return {
    busyMs: busy,
    byFunction: [...fns.values()].sort((a, b) => b.ms - a.ms).slice(0, top).map((f) => ({ ...f, pct: pct(f.ms) })),
    byGroup: [...groups].map(([group, ms]) => ({ group, ms, pct: pct(ms) })).sort((a, b) => b.ms - a.ms).slice(0, top),
  };
}
