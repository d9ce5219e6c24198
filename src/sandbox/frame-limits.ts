// Size caps of the runtime protocol, apart from the validators (frames.ts) so
// the isolate host's bundle can use them without pulling in zod.

/** The runtimes' cap on a call's result, in UTF-8 bytes (node, python and isolate runtimes enforce it). */
export const MAX_RESULT_BYTES = 6 * 1024 * 1024;
/** Longest line a runtime may send: a capped result plus room for the frame around it. */
export const MAX_FRAME_BYTES = MAX_RESULT_BYTES + 1024 * 1024;
/** Longest line an isolate host may send: its result value travels as an escaped JSON string, which at most doubles it. */
export const MAX_HOST_FRAME_BYTES = 2 * MAX_RESULT_BYTES + 1024 * 1024;
