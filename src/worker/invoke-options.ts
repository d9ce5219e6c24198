// Optional extras of one call, beside its event (Invoker.invoke's 4th argument).
// Each feature adds its own optional field, so three-argument calls keep working.
import type { HttpCall } from '../http/call.js';

/** How a call reached Lamina: a synchronous HTTP call, the async queue, a schedule, or the AWS API. */
export type InvocationTrigger = 'http' | 'event' | 'schedule' | 'aws';

export interface InvokeOptions {
  /** The raw HTTP request, for HTTP functions (src/http): the worker builds their event from it. */
  http?: HttpCall;
  /** Recorded with the call (default "http"). */
  trigger?: InvocationTrigger;
  /** 1 for the first try of an async event, 2 for its first retry...: retries are metered as `requestId#attempt`. */
  attempt?: number;
  /** Run this stored version instead of the current one (a `name:3` qualifier, an alias or its canary weight). */
  version?: number;
}
