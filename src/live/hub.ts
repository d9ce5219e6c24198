// The live feed of one gateway: finished calls and deploys, fanned out to
// every subscriber (the console's and the CLI's event streams, the server's
// terminal log). Publishing is synchronous and cheap; a subscriber that
// throws is dropped rather than allowed to break the call that published.
import type { InvocationRecord } from '../metering/types.js';
import type { InvokeOptions } from '../worker/invoke-options.js';

export type LiveEvent =
  | { type: 'invocation'; record: InvocationRecord }
  | { type: 'deployed'; name: string; version: number; at: string }
  | { type: 'removed'; name: string; at: string };

export type Subscriber = (e: LiveEvent) => void;

export class LiveHub {
  private readonly subscribers = new Set<Subscriber>();
  private readonly closers = new Set<() => void>();

  subscribe(fn: Subscriber, onClose?: () => void): () => void {
    this.subscribers.add(fn);
    if (onClose) this.closers.add(onClose);
    return () => {
      this.subscribers.delete(fn);
      if (onClose) this.closers.delete(onClose);
    };
  }

  publish(e: LiveEvent): void {
    for (const fn of this.subscribers) {
      try {
        fn(e);
      } catch {
        this.subscribers.delete(fn);
      }
    }
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Ends every stream (the server is stopping: long-lived responses would hold it open). */
  close(): void {
    for (const c of [...this.closers]) c();
    this.closers.clear();
    this.subscribers.clear();
  }
}

/** Publishes the registry's deploys and removals (a cluster gateway's refreshes included). */
export function feedFromRegistry(hub: LiveHub, registry: { on(e: 'deployed', fn: (fv: { name: string; version: number }) => void): unknown; on(e: 'removed', fn: (name: string) => void): unknown }): void {
  registry.on('deployed', (fv) => hub.publish({ type: 'deployed', name: fv.name, version: fv.version, at: new Date().toISOString() }));
  registry.on('removed', (name) => hub.publish({ type: 'removed', name, at: new Date().toISOString() }));
}

/**
 * Publishes the record of every call `invoker` answers. A cluster gateway uses
 * it: its calls' records are made on remote workers, and the call's answer is
 * where this gateway sees them (calls through other gateways are not seen).
 */
export function publishCalls<T extends { invoke(name: string, requestId: string, event: unknown, opts?: InvokeOptions): Promise<{ record: InvocationRecord }> }>(invoker: T, hub: LiveHub): T {
  const invoke = invoker.invoke.bind(invoker);
  // Every argument passes through (the raw HTTP request, a pinned version, the trigger).
  invoker.invoke = async (name, requestId, event, opts) => {
    const result = await invoke(name, requestId, event, opts);
    hub.publish({ type: 'invocation', record: result.record });
    return result;
  };
  return invoker;
}
