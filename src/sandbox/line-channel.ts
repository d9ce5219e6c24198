// Newline-delimited JSON framing over a byte stream: the worker's end of the
// runtime protocol (fd 3) and both ends of the isolate host's channel. A line
// longer than `maxBytes`, or one that is not JSON, closes the stream.
import type { Duplex } from 'node:stream';

export class LineChannel<In, Out> {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private closed = false;

  constructor(
    private readonly stream: Duplex,
    private readonly onFrame: (frame: In) => void,
    private readonly onClose: (reason: string) => void,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('error', (err) => this.close(`channel error: ${err.message}`));
    stream.on('close', () => this.close('channel closed'));
  }

  send(frame: Out): void {
    if (!this.closed) this.stream.write(JSON.stringify(frame) + '\n');
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
      let line = chunk.subarray(start, nl);
      if (this.partBytes > 0) {
        this.parts.push(line);
        line = Buffer.concat(this.parts);
        this.parts = [];
        this.partBytes = 0;
      }
      if (line.length > 0) {
        let frame: In;
        try {
          frame = JSON.parse(line.toString('utf8')) as In;
        } catch {
          return this.close('malformed frame');
        }
        this.onFrame(frame);
      }
      if (this.closed) return;
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.parts.push(rest);
      this.partBytes += rest.length;
      if (this.partBytes > this.maxBytes) this.close('oversized frame');
    }
  }
}
