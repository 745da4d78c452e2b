// A command kept running with its stdin and stdout as a line protocol: a
// relay's control channel. Both ssh clients feed one of these with the bytes
// they get; the relay side of the protocol is src/relay/control.ts.
import type { LineChannel } from './types.js';

const STDERR_KEEP = 4096;

/**
 * The first line `match` makes something of, read past any others (a PONG
 * from a ping, say); undefined when the channel closes or the time runs out.
 */
export async function awaitLine<T>(
  channel: LineChannel,
  match: (line: string) => T | undefined,
  timeoutMs: number,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = await channel.nextLine(Math.max(1, deadline - Date.now())).catch(() => undefined);
    if (line === undefined) return undefined;
    const found = match(line);
    if (found !== undefined) return found;
  }
}

export class LineQueue implements LineChannel {
  private buffer = '';
  private readonly lines: string[] = [];
  private readonly waiting: ((line: string | undefined) => void)[] = [];
  private err = '';
  private ended = false;
  private markClosed!: () => void;
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  constructor(
    private readonly write: (text: string) => void,
    private readonly endInput: () => void,
  ) {}

  get isClosed(): boolean {
    return this.ended;
  }

  /** Bytes from the command's stdout. */
  push(data: string): void {
    this.buffer += data;
    for (let i = this.buffer.indexOf('\n'); i >= 0; i = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, i).replace(/\r$/, '');
      this.buffer = this.buffer.slice(i + 1);
      const waiter = this.waiting.shift();
      if (waiter) waiter(line);
      else this.lines.push(line);
    }
  }

  pushStderr(data: string): void {
    this.err = (this.err + data).slice(-STDERR_KEEP);
  }

  /** The command ended or the connection under it dropped. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiting.splice(0)) w(undefined);
    this.markClosed();
  }

  nextLine(timeoutMs: number): Promise<string | undefined> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const waiter = (line: string | undefined): void => {
        clearTimeout(timer);
        resolve(line);
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.push(waiter);
    });
  }

  send(line: string): void {
    if (!this.ended) this.write(line.endsWith('\n') ? line : `${line}\n`);
  }

  end(): void {
    if (!this.ended) this.endInput();
  }

  stderr(): string {
    return this.err;
  }
}
