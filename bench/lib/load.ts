// Load generators: wrk for open-ended throughput/latency (the standard tool),
// and a closed-loop generator (N calls outstanding, each reissued as soon as the
// previous one returns) for the elasticity test. Targets are loopback only.
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { summarize } from './stats.js';

export interface LoadResult {
  tool: string;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
}

// wrk reports latency in microseconds; done() prints one JSON line we parse.
const WRK_SCRIPT = `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY") or "{}"
if os.getenv("BENCH_INVOCATION_TYPE") then wrk.headers["x-lamina-invocation-type"] = os.getenv("BENCH_INVOCATION_TYPE") end
done = function(s, lat, req)
  local e = s.errors
  io.write(string.format('WRKJSON {"requests":%d,"us":%d,"errors":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    s.requests, s.duration, e.connect + e.read + e.write + e.status + e.timeout,
    lat:percentile(50), lat:percentile(90), lat:percentile(99), lat.max))
end
`;

let wrkScript: string | undefined;
export function haveWrk(): boolean {
  return !spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error;
}

/** wrk with one thread and `connections` keep-alive connections, POSTing `body`. */
/** `invocationType` "Event" sends every call asynchronously (the async part). */
export async function wrk(url: string, connections: number, seconds: number, body = '{}', invocationType?: string): Promise<LoadResult> {
  if (!wrkScript) {
    wrkScript = path.join(mkdtempSync(path.join(os.tmpdir(), 'lamina-bench-wrk-')), 'report.lua');
    writeFileSync(wrkScript, WRK_SCRIPT);
  }
  const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--timeout', '10s', '-s', wrkScript, url];
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('wrk', args, { env: { ...process.env, BENCH_BODY: body, ...(invocationType ? { BENCH_INVOCATION_TYPE: invocationType } : {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (b: Buffer) => (text += b.toString()));
    p.stderr.on('data', (b: Buffer) => (text += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text.slice(-300)}`))));
  });
  const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`no result from wrk: ${out.slice(-300)}`);
  const r = JSON.parse(line.slice(8)) as Record<string, number>;
  return {
    tool: 'wrk',
    requests: r.requests!,
    rps: r.requests! / (r.us! / 1e6),
    p50: r.p50! / 1000,
    p90: r.p90! / 1000,
    p99: r.p99! / 1000,
    max: r.max! / 1000,
    errors: r.errors!,
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** One HTTP request; resolves with the whole response and its latency in ms. */
export function request(url: string, opts: { method?: string; body?: string; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const body = opts.body ?? '';
    const req = http.request(
      url,
      { method: opts.method ?? 'POST', agent: opts.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }));
        res.on('error', reject);
        res.on('close', () => {
          if (!res.complete) reject(Object.assign(new Error('the connection closed before the response ended'), { code: 'ECLOSED' }));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface ClosedLoopOptions {
  /** One or more URLs; each new call goes to the one with the fewest calls outstanding (client-side load balancing). */
  targets: string[];
  outstanding: number;
  durationMs: number;
  body: string;
  /** How long calls issued before the end may take to finish before they are abandoned. */
  drainMs: number;
}

export interface ClosedLoopResult {
  /** Latency (ms) of every successful call issued during the run. */
  latencies: number[];
  /** Issue time (ms since start) of each entry of `latencies`. */
  issuedAt: number[];
  errors: number;
  /** Calls still running when the drain time ran out (counted in errors too). */
  abandoned: number;
  /** Responses with x-lamina-cold-start: 1 (Lamina only: instances started). */
  cold: number;
  /** Until the last call finished (ms). */
  elapsedMs: number;
  /** Successful calls per second over the whole run, drain included. */
  rps: number;
  /** Successful calls per second finished within durationMs (the steady closed-loop rate). */
  rpsInWindow: number;
  statuses: Record<string, number>;
  /** The first response body (or error) seen for each failing status. */
  errorSamples: Record<string, string>;
}

/**
 * N callers, each issuing a call as soon as its previous one returned, until
 * durationMs; calls issued before then are waited for (up to drainMs), so slow
 * calls are measured rather than cut off.
 */
export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const agents = o.targets.map(() => new http.Agent({ keepAlive: true, maxSockets: o.outstanding }));
  const inflight = o.targets.map(() => 0);
  const r: ClosedLoopResult = { latencies: [], issuedAt: [], errors: 0, abandoned: 0, cold: 0, elapsedMs: 0, rps: 0, rpsInWindow: 0, statuses: {}, errorSamples: {} };
  let inWindow = 0;
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  let lastDone = t0;
  let running = 0;
  let closed = false; // calls abandoned after the drain time must not count twice

  const caller = async () => {
    while (performance.now() < end) {
      let i = 0;
      for (let j = 1; j < o.targets.length; j++) if (inflight[j]! < inflight[i]!) i = j;
      inflight[i]!++;
      running++;
      const issued = performance.now() - t0;
      try {
        const res = await request(o.targets[i]!, { body: o.body, agent: agents[i] });
        if (closed) return;
        r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1;
        if (res.status === 200) {
          r.latencies.push(res.ms);
          r.issuedAt.push(issued);
          if (performance.now() <= end) inWindow++;
          if (res.headers['x-lamina-cold-start'] === '1') r.cold++;
        } else {
          r.errors++;
          r.errorSamples[res.status] ??= res.body.slice(0, 300);
        }
      } catch (err) {
        if (closed) return;
        r.errors++;
        const key = (err as NodeJS.ErrnoException).code ?? 'error';
        r.statuses[key] = (r.statuses[key] ?? 0) + 1;
        r.errorSamples[key] ??= (err as Error).message;
        await new Promise((res) => setTimeout(res, 10)); // no hot loop against a dead target
      } finally {
        if (!closed) {
          inflight[i]!--;
          running--;
          lastDone = performance.now();
        }
      }
    }
  };

  const callers = Promise.all(Array.from({ length: o.outstanding }, caller));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, o.durationMs + o.drainMs)));
  await Promise.race([callers, deadline]);
  clearTimeout(timer);
  closed = true;
  r.abandoned = running;
  if (running) r.statuses.abandoned = running;
  r.errors += running;
  for (const a of agents) a.destroy();
  r.elapsedMs = lastDone - t0;
  r.rps = r.latencies.length / (r.elapsedMs / 1000);
  r.rpsInWindow = inWindow / (o.durationMs / 1000);
  return r;
}

/** The warm test's fallback when wrk is not installed: the closed loop with `connections` callers. */
export async function nodeLoad(url: string, connections: number, seconds: number, body = '{}'): Promise<LoadResult> {
  const r = await closedLoop({ targets: [url], outstanding: connections, durationMs: seconds * 1000, body, drainMs: 10_000 });
  const s = summarize(r.latencies);
  return { tool: 'node', requests: s.n, rps: r.rps, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max, errors: r.errors };
}
