// Optional settings of one call, the 4th argument of Invoker.invoke. Kept tiny:
// several features add their own optional fields here; a 3-argument call
// means "the current version, the default way".

export interface InvokeOptions {
  /** Run this stored version instead of the current one (a `name:3` qualifier, an alias or its canary weight). */
  version?: number;
}
