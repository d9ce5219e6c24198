// Newline-delimited JSON framing over a byte stream: the worker's end of the
// runtime protocol (fd 3) and both ends of the isolate host's channel. What
// arrives may be hostile: a line longer than `maxBytes`, one that is not JSON,
// one that `parse` refuses, or one whose handling throws closes the stream
// with a "protocol violation" reason, and nothing escapes to the caller.
import type { Duplex } from 'node:stream';
import { bufferBudget } from './buffer-budget.js';

export interface LineChannelOptions<In> {
  /** Longest line accepted, in bytes. */
  maxBytes?: number;
  /** Checks a parsed line's shape; throws (with a message) to refuse it. */
  parse?: (raw: unknown) => In;
}

/** Prefix of every close reason caused by what the other end sent. */
export const VIOLATION = 'protocol violation';

export class LineChannel<In, Out> {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private closed = false;
  private readonly maxBytes: number;
  private readonly parse: (raw: unknown) => In;

  constructor(
    private readonly stream: Duplex,
    private readonly onFrame: (frame: In) => void,
    private readonly onClose: (reason: string) => void,
    opts: LineChannelOptions<In> = {},
  ) {
    this.maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
    this.parse = opts.parse ?? ((raw) => raw as In);
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('error', (err) => this.close(`channel error: ${err.message}`));
    stream.on('close', () => this.close('channel closed'));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends a frame; throws when it cannot be serialized (the stream stays usable). */
  send(frame: Out): void {
    if (this.closed) return;
    const line = JSON.stringify(frame) + '\n';
    // Frames sent in the same turn of the event loop leave in one write (writev): under
    // load many calls share a channel (the isolate host's, an instance with
    // instanceConcurrency > 1), and the requests parsed in one turn share a kernel write.
    // setImmediate runs after every I/O callback of the turn; nextTick would flush per callback.
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      setImmediate(this.uncork);
    }
    this.stream.write(line);
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.stream.uncork();
  };

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.dropParts();
    this.stream.destroy();
    this.onClose(reason);
  }

  private dropParts(): void {
    if (this.partBytes > 0) bufferBudget.release(this.partBytes);
    this.parts = [];
    this.partBytes = 0;
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    let start = 0;
    let nl = chunk.indexOf(10);
    while (nl !== -1) {
      let line = chunk.subarray(start, nl);
      if (this.partBytes + line.length > this.maxBytes) return this.close(`${VIOLATION}: a frame longer than ${this.maxBytes} bytes`);
      if (this.partBytes > 0) {
        this.parts.push(line);
        line = Buffer.concat(this.parts);
        this.dropParts();
      }
      if (line.length > 0 && !this.deliver(line)) return;
      if (this.closed) return;
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.partBytes + rest.length > this.maxBytes) return this.close(`${VIOLATION}: a frame longer than ${this.maxBytes} bytes`);
      // Partial lines of every channel in this process share one bound, so many sandboxes cannot fill the server's memory.
      if (!bufferBudget.take(rest.length)) return this.close(`${VIOLATION}: the server's frame buffers are full (a partial frame of ${this.partBytes + rest.length} bytes)`);
      // Copy: the chunk's memory may be a slice of a much larger buffer.
      this.parts.push(Buffer.from(rest));
      this.partBytes += rest.length;
    }
  }

  /** Parses, checks and hands on one line; false when the channel closed over it. */
  private deliver(line: Buffer): boolean {
    let frame: In;
    try {
      frame = this.parse(JSON.parse(line.toString('utf8')));
    } catch (err) {
      this.close(`${VIOLATION}: ${err instanceof SyntaxError ? 'a frame that is not JSON' : (err as Error).message}`);
      return false;
    }
    try {
      this.onFrame(frame);
    } catch (err) {
      this.close(`${VIOLATION}: handling a frame failed: ${(err as Error).message}`);
      return false;
    }
    return true;
  }
}
