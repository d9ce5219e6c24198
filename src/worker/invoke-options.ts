// Optional per-call settings passed with Invoker.invoke's 4th argument. Kept in
// its own tiny file because several features add their fields here.

/** How a call reached Lamina: a synchronous HTTP call, the async queue, a schedule, or the AWS API. */
export type InvocationTrigger = 'http' | 'event' | 'schedule' | 'aws';

export interface InvokeOptions {
  /** Recorded with the call (default "http"). */
  trigger?: InvocationTrigger;
  /** 1 for the first try of an async event, 2 for its first retry...: retries are metered as `requestId#attempt`. */
  attempt?: number;
}
