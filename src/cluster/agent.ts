// A worker's membership loop: register with the gateway (any gateway of the
// cluster: --gateway may be a load balancer), heartbeat every `heartbeatMs`
// with its load and warm functions, register again when a gateway no longer
// knows it, and deregister when it stops. It never gives up on an
// unreachable gateway: the worker keeps serving calls meanwhile.
import { fetch, type Dispatcher } from 'undici';
import { INTERNAL_PREFIX, type MembershipAnswer, type WorkerInfo, type WorkerReport } from './protocol.js';

export interface AgentOptions {
  gatewayUrl: string;
  secret: string;
  id: string;
  url: string;
  boot: string;
  info: WorkerInfo;
  heartbeatMs: number;
  /** Trusts the cluster's CA for an https gateway (cluster/tls.ts); default: undici's own. */
  dispatcher?: Dispatcher;
  report: () => WorkerReport;
  log: { info(msg: string): void; warn(msg: string): void };
}

export class Agent {
  private seq = 0;
  private registered = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private outage = false;
  private loop: Promise<void> | undefined;
  /** The state the gateways hold for this worker (up, draining), from their last answer. */
  state = 'unregistered';
  /** The gateways' heartbeat timeout, from their last answer (until then: three periods, their default). */
  timeoutMs: number;

  constructor(private readonly o: AgentOptions) {
    this.timeoutMs = 3 * o.heartbeatMs;
  }

  start(): void {
    this.schedule(0);
  }

  private onRegistered!: () => void;
  /** Resolves at the first successful registration (or never; use with a timeout). */
  private readonly firstRegistration = new Promise<void>((resolve) => (this.onRegistered = resolve));

  registeredOnce(): Promise<void> {
    return this.firstRegistration;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.loop = this.beat().finally(() => {
        this.loop = undefined;
        this.schedule(this.registered ? this.o.heartbeatMs : Math.min(2000, this.o.heartbeatMs));
      });
    }, ms);
    this.timer.unref();
  }

  private async post(route: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${this.o.gatewayUrl}${INTERNAL_PREFIX}/workers/${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.o.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(Math.max(2000, this.o.heartbeatMs * 2)),
      ...(this.o.dispatcher ? { dispatcher: this.o.dispatcher } : {}),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json };
  }

  private async beat(): Promise<void> {
    try {
      let r: { status: number; json: unknown };
      if (this.registered) {
        r = await this.post('heartbeat', { id: this.o.id, url: this.o.url, boot: this.o.boot, seq: ++this.seq, stats: this.o.report() });
        if (r.status === 404) {
          this.o.log.warn(`the gateway no longer knows worker ${this.o.id}; registering again`);
          this.registered = false;
        }
      }
      if (!this.registered) {
        r = await this.post('register', { id: this.o.id, url: this.o.url, boot: this.o.boot, info: this.o.info, stats: this.o.report() });
        if (r.status === 200) {
          this.registered = true;
          this.seq = 0;
          this.o.log.info(`registered with ${this.o.gatewayUrl} as ${this.o.id} (${this.o.url})`);
          this.onRegistered();
        }
      }
      if (r!.status === 401) throw new Error('the gateway refused the cluster secret (LAMINA_CLUSTER_SECRET must match)');
      if (r!.status !== 200) throw new Error(`HTTP ${r!.status}: ${JSON.stringify(r!.json)?.slice(0, 200)}`);
      const answer = r!.json as MembershipAnswer;
      if (Number(answer.timeoutMs) > 0) this.timeoutMs = Number(answer.timeoutMs);
      if (answer.state !== this.state) {
        if (this.state !== 'unregistered' || answer.state !== 'up') this.o.log.info(`worker ${this.o.id} is now ${answer.state} at the gateways`);
        this.state = answer.state;
      }
      if (this.outage) this.o.log.info(`gateway ${this.o.gatewayUrl} reachable again`);
      this.outage = false;
    } catch (err) {
      if (!this.outage) this.o.log.warn(`cannot reach gateway ${this.o.gatewayUrl}: ${(err as Error).message}; retrying`);
      this.outage = true;
    }
  }

  /** Stops heartbeating and tells the gateways this worker is leaving (best effort, a few seconds at most). */
  async deregister(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.loop;
    if (!this.registered) return;
    for (let i = 0; i < 3; i++) {
      try {
        const r = await this.post('deregister', { id: this.o.id, boot: this.o.boot });
        if (r.status === 200) return;
      } catch {
        // retry
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    this.o.log.warn(`could not deregister from ${this.o.gatewayUrl}; the gateways will notice the missing heartbeats`);
  }
}
