// Reading a SOCKS request off a client socket of a dynamic forward: the
// handshake's bytes go through the pure parser (socks.ts), and what the
// client sent after its request is put back for the stream that follows.
import type { Socket } from 'node:net';
import { SocksHandshake, type SocksRequest, type SocksStep } from '../../forward/socks.js';

export type SocksRead =
  | { request: SocksRequest }
  /** The client asked for something this server does not do: send `fail.send`, then close. */
  | { fail: Extract<SocksStep, { kind: 'fail' }> }
  /** The client went away or took longer than the bound (it was closed). */
  | { gone: true };

/** Reads until the request is complete; leaves the socket paused, its early data unshifted. */
export function readSocksRequest(client: Socket, timeoutMs: number): Promise<SocksRead> {
  const hs = new SocksHandshake();
  return new Promise((resolve) => {
    const finish = (read: SocksRead): void => {
      clearTimeout(timer);
      client.off('data', onData);
      client.off('end', onEnd);
      client.off('close', onEnd);
      resolve(read);
    };
    const onEnd = (): void => {
      client.destroy();
      finish({ gone: true });
    };
    const onData = (chunk: Buffer): void => {
      const step = hs.push(chunk);
      if (step.kind === 'more') {
        if (step.send) client.write(step.send);
        return;
      }
      client.pause();
      if (step.kind === 'fail') {
        finish({ fail: step });
        return;
      }
      if (step.send) client.write(step.send);
      if (step.rest.length > 0) client.unshift(step.rest);
      finish({ request: step.request });
    };
    // A client that holds a socket here without finishing its request is dropped after the bound.
    const timer = setTimeout(onEnd, timeoutMs);
    client.on('data', onData);
    client.once('end', onEnd);
    client.once('close', onEnd);
    // The listener pauses new connections (pauseOnConnect): a data listener alone does not start reading.
    client.resume();
  });
}
