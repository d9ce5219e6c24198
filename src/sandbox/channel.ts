// The frames of the runtime wire protocol (docs/runtime-protocol.md), carried as
// newline-delimited JSON over one duplex byte stream (fd 3 of the runtime).
import { LineChannel } from './line-channel.js';
import type { InvokeHttp } from './types.js';

/** Frames the worker sends. */
export type WorkerFrame =
  | {
      t: 'load';
      entry: string;
      /** Optional (python): directories put on the import path ahead of the function's own (its installed requirements, read-only). */
      importPaths?: string[];
      handler: string;
      env: Record<string, string>;
      function: { name: string; version: number; memoryMb: number; timeoutMs: number };
    }
  | {
      /** Optional (node): import the function's dependencies ahead of `load` (pre-started runtimes, SOCK's import cache). */
      t: 'preload';
      entry: string;
      importPaths?: string[];
      env: Record<string, string>;
    }
  | {
      t: 'invoke';
      id: string;
      event: unknown;
      context: { requestId: string; functionName: string; functionVersion: number; memoryLimitMb: number; deadlineMs: number; coldStart: boolean };
      /** HTTP functions only (not json mode): how the request arrived (docs/runtime-protocol.md). */
      http?: InvokeHttp;
    };

/** Frames a runtime sends. */
export type RuntimeFrame =
  | { t: 'ready'; runtime: string; version: string; pid: number }
  | { t: 'loaded' }
  | { t: 'preloaded' }
  | { t: 'preload_error'; error: { type: string; message: string; stack?: string } }
  | { t: 'load_error'; error: { type: string; message: string; stack?: string } }
  | { t: 'result'; id: string; ok: true; value?: unknown; ms?: number }
  | { t: 'result'; id: string; ok: false; error: { type: string; message: string; stack?: string }; ms?: number }
  | { t: 'log'; id: string | null; stream: 'stdout' | 'stderr'; data: string }
  | { t: 'fatal'; error: { type: string; message: string; stack?: string } };

/** The worker's end of a runtime's fd 3. */
export class Channel extends LineChannel<RuntimeFrame, WorkerFrame> {}
