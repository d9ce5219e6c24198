// The worker's end of the runtime wire protocol (docs/runtime-protocol.md):
// newline-delimited JSON frames over one duplex byte stream (fd 3 of the runtime).
import type { Duplex } from 'node:stream';

/** Frames the worker sends. */
export type WorkerFrame =
  | {
      t: 'load';
      entry: string;
      handler: string;
      env: Record<string, string>;
      function: { name: string; version: number; memoryMb: number; timeoutMs: number };
    }
  | {
      t: 'invoke';
      id: string;
      event: unknown;
      context: { requestId: string; functionName: string; functionVersion: number; memoryLimitMb: number; deadlineMs: number; coldStart: boolean };
    };

/** Frames a runtime sends. */
export type RuntimeFrame =
  | { t: 'ready'; runtime: string; version: string; pid: number }
  | { t: 'loaded' }
  | { t: 'load_error'; error: { type: string; message: string; stack?: string } }
  | { t: 'result'; id: string; ok: true; value?: unknown; ms?: number }
  | { t: 'result'; id: string; ok: false; error: { type: string; message: string; stack?: string }; ms?: number }
  | { t: 'log'; id: string | null; stream: 'stdout' | 'stderr'; data: string }
  | { t: 'fatal'; error: { type: string; message: string; stack?: string } };

/** A frame longer than this is a protocol violation (results are capped by the runtime well below it). */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export class Channel {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private closed = false;

  constructor(
    private readonly stream: Duplex,
    private readonly onFrame: (frame: RuntimeFrame) => void,
    private readonly onClose: (reason: string) => void,
  ) {
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('error', (err) => this.close(`channel error: ${err.message}`));
    stream.on('close', () => this.close('channel closed'));
  }

  send(frame: WorkerFrame): void {
    if (this.closed) return;
    this.stream.write(JSON.stringify(frame) + '\n');
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.destroy();
    this.onClose(reason);
  }

  private receive(chunk: Buffer): void {
    let start = 0;
    let nl = chunk.indexOf(10);
    while (nl !== -1) {
      let line: Buffer = chunk.subarray(start, nl);
      if (this.bufferedBytes > 0) {
        this.buffered.push(line);
        line = Buffer.concat(this.buffered);
        this.buffered = [];
        this.bufferedBytes = 0;
      }
      if (line.length > 0) this.dispatch(line);
      if (this.closed) return;
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.buffered.push(rest);
      this.bufferedBytes += rest.length;
      if (this.bufferedBytes > MAX_FRAME_BYTES) this.close('runtime sent an oversized frame');
    }
  }

  private dispatch(line: Buffer): void {
    let frame: RuntimeFrame;
    try {
      frame = JSON.parse(line.toString('utf8')) as RuntimeFrame;
    } catch {
      this.close('runtime sent a malformed frame');
      return;
    }
    this.onFrame(frame);
  }
}
