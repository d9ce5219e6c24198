// Part `aws`: what the AWS Lambda API costs over Lamina's own route. The same
// warm no-op function is called through POST /run/noop, POST /run/noop:live
// (an alias resolved per call) and the AWS SDK's Invoke (SigV4 checked per
// call); rounds are interleaved and medians taken. The fair figure is the
// server's CPU time per call (the SDK's own signing runs in this process).
import path from 'node:path';
import { CreateAliasCommand, InvokeCommand, LambdaClient, PublishVersionCommand } from '@aws-sdk/client-lambda';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { credentialLookup } from '../../src/gateway/aws/plugin.js';
import { verifySigV4 } from '../../src/gateway/aws/sigv4.js';
import { log, type Part } from '../lib/part.js';
import { FUNCTIONS, cpuTimeMs, startLamina, type LaminaServer } from '../lib/server.js';
import { median, summarize } from '../lib/stats.js';
import { fmt, table } from '../lib/table.js';

const CALLERS = 8;
const BODY = '{"hello":"world"}';

async function loop(call: () => Promise<void>, ms: number): Promise<{ latencies: number[]; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await call();
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { latencies, errors };
}

/** CPU time of one signature check in this process (what the server adds per AWS call), in µs. */
async function verifyCost(n: number): Promise<number> {
  const lookup = credentialLookup({ token: 'bench-token' });
  const req = new HttpRequest({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', path: '/2015-03-31/functions/noop/invocations', query: {}, headers: { host: '127.0.0.1', 'content-type': 'application/json' }, body: BODY });
  const signer = new SignatureV4({ credentials: { accessKeyId: 'admin', secretAccessKey: 'bench-token' }, region: 'us-east-1', service: 'lambda', sha256: Hash.bind(null, 'sha256') });
  const out = await signer.sign(req);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(out.headers)) headers[k.toLowerCase()] = v;
  const signed = { method: 'POST', rawUrl: out.path, headers, body: Buffer.from(BODY) };
  for (let i = 0; i < n / 10; i++) await verifySigV4(signed, lookup);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await verifySigV4(signed, lookup);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

export const aws: Part = async (o) => {
  const rounds = o.short ? 1 : 3;
  const ms = (o.short ? 1 : 5) * 1000;
  const tier = o.tiers[0] ?? 'process';
  const notes: string[] = [];
  let lamina: LaminaServer | undefined;
  try {
    lamina = await startLamina({ sandbox: tier });
    await lamina.deploy('noop', path.join(FUNCTIONS, 'noop'), { sandbox: tier });
    const client = new LambdaClient({ endpoint: lamina.url, region: 'us-east-1', credentials: { accessKeyId: 'admin', secretAccessKey: lamina.token }, maxAttempts: 1 });
    const v = await client.send(new PublishVersionCommand({ FunctionName: 'noop' }));
    await client.send(new CreateAliasCommand({ FunctionName: 'noop', Name: 'live', FunctionVersion: v.Version }));
    const url = lamina.url;
    const post = async (u: string) => {
      const res = await fetch(u, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(String(res.status));
    };
    const targets: { name: string; call: () => Promise<void> }[] = [
      { name: 'POST /run/noop', call: () => post(`${url}/run/noop`) },
      { name: 'POST /run/noop:live (alias)', call: () => post(`${url}/run/noop:live`) },
      {
        name: 'AWS SDK Invoke (SigV4)',
        call: async () => {
          const r = await client.send(new InvokeCommand({ FunctionName: 'noop', Payload: Buffer.from(BODY) }));
          if (r.StatusCode !== 200 || r.FunctionError) throw new Error('failed');
        },
      },
    ];
    log(`  tier ${lamina.tier}; ${CALLERS} callers; ${rounds} x ${ms / 1000} s per target, rounds interleaved`);
    for (const t of targets) await loop(t.call, o.short ? 300 : 1000); // warm-up
    const runs = new Map(targets.map((t) => [t.name, [] as { rps: number; p50: number; p99: number; cpuUs: number; errors: number }[]]));
    for (let r = 0; r < rounds; r++) {
      for (const t of r % 2 ? [...targets].reverse() : targets) {
        const c0 = cpuTimeMs(lamina.pid);
        const t0 = performance.now();
        const res = await loop(t.call, ms);
        const elapsed = performance.now() - t0;
        const c1 = cpuTimeMs(lamina.pid);
        const s = summarize(res.latencies);
        runs.get(t.name)!.push({ rps: (res.latencies.length * 1000) / elapsed, p50: s.p50, p99: s.p99, cpuUs: ((c1 - c0) * 1000) / Math.max(1, res.latencies.length), errors: res.errors });
      }
    }
    client.destroy();
    const rows: { route: string; rps: number; p50Ms: number; p99Ms: number; serverCpuUsPerCall: number; errors: number }[] = targets.map((t) => {
      const rs = runs.get(t.name)!;
      return {
        route: t.name,
        rps: median(rs.map((x) => x.rps)),
        p50Ms: median(rs.map((x) => x.p50)),
        p99Ms: median(rs.map((x) => x.p99)),
        serverCpuUsPerCall: median(rs.map((x) => x.cpuUs)),
        errors: rs.reduce((n, x) => n + x.errors, 0),
      };
    });
    rows.push({ route: 'verifySigV4 alone (in process)', rps: NaN, p50Ms: NaN, p99Ms: NaN, serverCpuUsPerCall: await verifyCost(o.short ? 500 : 5000), errors: 0 });
    log(table(['route', 'req/s', 'p50 ms', 'p99 ms', 'server CPU us/call', 'errors'], rows.map((r) => [r.route, fmt(r.rps, 0), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.serverCpuUsPerCall, 0), r.errors])));
    return { rows, checks: [], notes };
  } finally {
    await lamina?.stop();
  }
};
