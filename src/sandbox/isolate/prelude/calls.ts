// Which call the code running now belongs to. A bare V8 context has no async
// context tracking, so every entry into the isolate (a call, a timer, a fetch
// settling) sets `current` to the call it belongs to; logs follow it.
export interface CallState {
  deadlineMs: number;
  logBytes: number;
}

export const calls = new Map<string, CallState>();
let current: string | null = null;

export function enter(id: string | null): void {
  current = id;
}

/** The call running now, or null when it has already ended (or none). */
export function currentCall(): string | null {
  return current !== null && calls.has(current) ? current : null;
}
