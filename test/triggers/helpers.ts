// Helpers of the async and schedule tests: polling records through the admin API.
import { admin, sleep, type TestServer } from '../helpers/server.js';

export async function asyncCall(s: TestServer, name: string, event?: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${s.url}/run/${name}`, {
    method: 'POST',
    body: event === undefined ? undefined : JSON.stringify(event),
    ...init,
    headers: { 'content-type': 'application/json', 'x-lamina-invocation-type': 'Event', ...(init.headers as Record<string, string> | undefined) },
  });
}

/** Polls GET /invocations/:id until `done` holds (no timing assumption beyond a generous cap). */
export async function waitRecord(s: TestServer, requestId: string, done: (r: any) => boolean = (r) => !['Queued', 'Running'].includes(r.status), capMs = 60_000): Promise<any> {
  const until = Date.now() + capMs;
  let last: any;
  while (Date.now() < until) {
    const r = await admin(s, 'GET', `/invocations/${requestId}`);
    last = r.body;
    if (r.status === 200 && done(r.body)) return r.body;
    await sleep(100);
  }
  throw new Error(`record ${requestId} never reached the wanted state; last: ${JSON.stringify(last)}`);
}

/** Records of a function (newest first), logs left out. */
export async function records(s: TestServer, fn: string): Promise<any[]> {
  const r = await admin(s, 'GET', `/invocations?function=${encodeURIComponent(fn)}&limit=1000`);
  if (r.status !== 200) throw new Error(r.text);
  return r.body.invocations;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, capMs = 60_000): Promise<T> {
  const until = Date.now() + capMs;
  while (Date.now() < until) {
    const v = await probe();
    if (v) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
