// Optional extras of one call, beside its event (Invoker.invoke's 4th argument).
// Each feature adds its own optional field, so three-argument calls keep working.
import type { HttpCall } from '../http/call.js';

export interface InvokeOptions {
  /** The raw HTTP request, for HTTP functions (src/http): the worker builds their event from it. */
  http?: HttpCall;
}
