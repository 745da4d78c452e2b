// The tcp transport after a roam: mosh-client's latest datagram went into the
// dead chain (or waited while there was none), and mosh-client sends the next
// only at its 3 s heartbeat. The tunnel sends it again as the first frame of
// the new stream, so mosh-server hears from the new forwarder at once. Real
// loopback sockets; only the forwarder's stream is a fake that records frames.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTunnel } from '../../src/execute/tcp-tunnel.js';
import { FrameDecoder } from '../../src/tcp/framing.js';
import type { KeptChain } from '../../src/execute/kept-chain.js';
import type { ByteChannel, RemoteChain } from '../../src/transport/types.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A forwarder's stream that says READY and records every datagram written to it. */
function recordingStream(got: string[]): ByteChannel {
  const decoder = new FrameDecoder();
  let markClosed!: () => void;
  let closed = false;
  return {
    write: (data) => {
      for (const d of decoder.push(Buffer.from(data))) got.push(d.toString());
    },
    onData: (cb) => setImmediate(() => cb(Buffer.from('MOSHCTL-FWD READY PID 4242 RUNTIME perl\n'))),
    end: () => {
      closed = true;
      markClosed();
    },
    closed: new Promise<void>((r) => (markClosed = r)),
    get isClosed() {
      return closed;
    },
    stderr: () => '',
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup() {
  const streams: string[][] = [];
  const chain = (n: number) => ({ hostNames: ['gate', 'box'], n }) as unknown as RemoteChain;
  const kept: KeptChain = { whenUp: () => Promise.resolve(chain(0)), suspect: () => undefined };
  const t = new TcpTunnel({
    host: 'box',
    kept,
    open: () => {
      const got: string[] = [];
      streams.push(got);
      return Promise.resolve(recordingStream(got));
    },
  });
  const port = await t.start();
  const client: Socket = createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  cleanups.push(
    () => t.stop(),
    () => client.close(),
  );
  const send = async (text: string) => {
    client.send(text, port, '127.0.0.1');
    await sleep(50);
  };
  return { t, chain, streams, send };
}

describe('TcpTunnel after the chain is lost', () => {
  it('sends mosh-client’s latest datagram first on the new stream, once', async () => {
    const { t, chain, streams, send } = await setup();
    const first = chain(1);
    await t.attach(first);
    await send('seq 1');
    await send('seq 2'); // goes into the chain that is about to die
    t.detach(first);
    await send('seq 3'); // no stream: waits as the latest
    await send('seq 4');
    await t.attach(chain(2));
    await send('seq 5');
    expect(streams).toEqual([
      ['seq 1', 'seq 2'],
      ['seq 4', 'seq 5'],
    ]);
  });

  it('sends nothing extra on the first stream when mosh-client has not sent yet', async () => {
    const { t, chain, streams, send } = await setup();
    await t.attach(chain(1));
    await send('seq 1');
    expect(streams).toEqual([['seq 1']]);
  });
});
