// -R under OpenSSH, carried the way ssh2 carries it: the master is asked to
// send each connection to a Unix socket of moshctl's in the chain's private
// control folder, and moshctl joins it to the forward's destination here. So
// both clients count connections the same way for status (an OpenSSH master
// tells its mux clients nothing of the connections it carries), and a
// connection ends when the chain under it does.
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import type { Endpoint } from '../forward/types.js';
import type { RemoteForwardEvents } from '../transport/types.js';

export interface Joiner {
  /** Where the master sends the target's connections. */
  readonly path: string;
  /** A request asked again (a retry) joins to this destination and tells these events from now on. */
  retarget(to: Endpoint, events: RemoteForwardEvents): void;
  /** Stops listening; `broken`: the chain went, so the connections it carried are broken ones. */
  close(broken: boolean): void;
}

function endpointText(to: Endpoint): string {
  return 'path' in to ? to.path : `${to.host}:${to.port}`;
}

/** Listens at `path` (mode 0600 from the folder's 0700) and joins each connection to `to`. */
export async function listenJoiner(path: string, to: Endpoint, events: RemoteForwardEvents): Promise<Joiner> {
  let current = { to, events };
  const open = new Set<[Socket, Socket]>();
  let ending = false;
  let brokenEnd = false;
  const server: Server = createServer({ allowHalfOpen: true }, (incoming) => {
    const { to, events } = current;
    // The destination first, as ssh does: a refused one refuses the far end at once.
    const out =
      'path' in to
        ? netConnect({ path: to.path, allowHalfOpen: true })
        : netConnect({ host: to.host, port: to.port, allowHalfOpen: true });
    let joined = false;
    incoming.pause();
    out.once('error', (err: NodeJS.ErrnoException) => {
      if (joined) return;
      incoming.destroy();
      events.onError?.(`connect to ${endpointText(to)} on this machine: ${err.code ?? err.message}`);
    });
    out.once('connect', () => {
      joined = true;
      const pair: [Socket, Socket] = [incoming, out];
      open.add(pair);
      events.onConnection?.();
      let closed = 0;
      const oneClosed = (): void => {
        if (++closed < 2) return;
        open.delete(pair);
        events.onClosed?.(ending && brokenEnd);
      };
      incoming.on('close', oneClosed);
      out.on('close', oneClosed);
      incoming.on('error', () => out.destroy());
      out.on('error', () => incoming.destroy());
      incoming.pipe(out);
      out.pipe(incoming);
      incoming.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  server.on('error', () => undefined);
  return {
    path,
    retarget(to, events) {
      current = { to, events };
    },
    close(broken) {
      if (ending) return;
      ending = true;
      brokenEnd = broken;
      server.close();
      for (const [a, b] of open) {
        a.destroy();
        b.destroy();
      }
    },
  };
}
