// MOSHCTL_TIMING=1: how long each side effect took, on stderr. A decorator
// over the Runner, so timing needs no code in the executor or the ssh runner.
import type { Runner } from './runner.js';

export function timed(inner: Runner, log: (line: string) => void): Runner {
  const t0 = performance.now();
  // Everything before the first side effect: Node's start, loading moshctl, the config and ssh -G.
  log(`timing: start ${Math.round(t0)} ms (at 0 ms)`);
  const wrap =
    <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const start = performance.now();
      try {
        return await f(...args);
      } finally {
        const now = performance.now();
        log(`timing: ${name} ${Math.round(now - start)} ms (at ${Math.round(now - t0)} ms)`);
      }
    };
  const connect = wrap('connect', inner.connect.bind(inner));
  return {
    connect: (onReady) =>
      connect((host) => {
        log(`timing: ${host} open (at ${Math.round(performance.now() - t0)} ms)`);
        onReady?.(host);
      }),
    startServer: wrap('server', inner.startServer.bind(inner)),
    startRelay: wrap('relay', inner.startRelay.bind(inner)),
    wireRelay: wrap('wire', inner.wireRelay.bind(inner)),
    startForward: wrap('forward', inner.startForward.bind(inner)),
    startPortForward: wrap('port-forward', inner.startPortForward.bind(inner)),
    startAgent: wrap('agent', inner.startAgent.bind(inner)),
    unlinkAgent: wrap('unlink-agent', inner.unlinkAgent.bind(inner)),
    ...(inner.keep ? { keep: inner.keep.bind(inner) } : {}),
    runClient: wrap('client', inner.runClient.bind(inner)),
    stop: wrap('stop', inner.stop.bind(inner)),
    alive: wrap('alive', inner.alive.bind(inner)),
    close: wrap('close', inner.close.bind(inner)),
  };
}
