// The frames of the runtime wire protocol (docs/runtime-protocol.md), carried as
// newline-delimited JSON over one duplex byte stream (fd 3 of the runtime).
import type { Duplex } from 'node:stream';
import { MAX_FRAME_BYTES, parseRuntimeFrame } from './frames.js';
import { LineChannel } from './line-channel.js';
import type { HttpFrame, ModuleKind } from './types.js';

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
      /** HTTP functions not in json mode: the event is the function-URL 2.0 event (src/http/event.ts). */
      http?: HttpFrame;
    };

/** Frames a runtime sends. */
export type RuntimeFrame =
  | { t: 'ready'; runtime: string; version: string; pid: number }
  /** `kind` (optional; absent = handler): whether the module is a fetch handler. */
  | { t: 'loaded'; kind?: ModuleKind }
  | { t: 'preloaded' }
  | { t: 'preload_error'; error: { type: string; message: string; stack?: string } }
  | { t: 'load_error'; error: { type: string; message: string; stack?: string } }
  /** `more`: work the call handed to waitUntil goes on; a `settled` frame with the call's whole duration ends it. */
  | { t: 'result'; id: string; ok: true; value?: unknown; ms?: number; more?: boolean }
  | { t: 'result'; id: string; ok: false; error: { type: string; message: string; stack?: string }; ms?: number; more?: boolean }
  | { t: 'settled'; id: string; ms?: number }
  | { t: 'log'; id: string | null; stream: 'stdout' | 'stderr'; data: string }
  | { t: 'fatal'; error: { type: string; message: string; stack?: string } };

/** The worker's end of a runtime's fd 3: every frame is checked (frames.ts) before it is handed on. */
export class Channel extends LineChannel<RuntimeFrame, WorkerFrame> {
  constructor(stream: Duplex, onFrame: (frame: RuntimeFrame) => void, onClose: (reason: string) => void) {
    super(stream, onFrame, onClose, { maxBytes: MAX_FRAME_BYTES, parse: (raw) => parseRuntimeFrame(raw) as RuntimeFrame });
  }
}
