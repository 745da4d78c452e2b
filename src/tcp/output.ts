// What comes back on a forwarder's stdout: one text line (READY or ERROR), then
// frames only. Pure: the caller pushes the bytes it gets from the ssh channel. The
// bytes after the READY line may arrive in the same chunk as the line itself, so
// the switch from line to frames happens here, at the exact byte.
import { FrameDecoder, FrameError } from './framing.js';
import { parseReady, type ReadyLine } from './launch.js';

/** Longer than any READY or ERROR line: more without a newline is not a forwarder. */
const LINE_MAX = 1024;

export interface OutputStep {
  /** Set once, on the push that completes the first line. */
  ready?: ReadyLine;
  datagrams: Buffer[];
}

export class ForwarderOutput {
  private line: Buffer | undefined = Buffer.alloc(0);
  private readonly frames = new FrameDecoder();

  /** The first line has been read (READY: frames follow; ERROR: nothing does). */
  get started(): boolean {
    return this.line === undefined;
  }

  /** Throws FrameError when the first line is not the forwarder's, or the frames go out of step. */
  push(chunk: Uint8Array): OutputStep {
    if (this.line === undefined) return { datagrams: this.frames.push(chunk) };
    const text = Buffer.concat([this.line, chunk]);
    const end = text.indexOf(0x0a);
    if (end < 0) {
      if (text.length > LINE_MAX) throw this.notForwarder(text);
      this.line = text;
      return { datagrams: [] };
    }
    this.line = undefined;
    const ready = parseReady(text.subarray(0, end).toString('latin1'));
    if (!ready) throw this.notForwarder(text.subarray(0, end));
    // After an ERROR line the forwarder exits: whatever else came is not frames.
    const datagrams = 'pid' in ready ? this.frames.push(text.subarray(end + 1)) : [];
    return { ready, datagrams };
  }

  private notForwarder(text: Buffer): FrameError {
    const shown = JSON.stringify(text.subarray(0, 80).toString('latin1'));
    return new FrameError(
      `the forwarder's first line is not READY or ERROR: ${shown}; ` +
        `a login script that prints on stdout (~/.bashrc, ~/.profile) corrupts the channel`,
    );
  }
}
