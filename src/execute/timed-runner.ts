// MOSHCTL_TIMING=1: how long each side effect took, on stderr. A decorator
// over the Runner, so timing needs no code in the executor or the ssh runner.
// Each line: `timing: NAME DURATION ms (at END ms; on HOST from START ms)`,
// times counted from the end of moshctl's own start (the `start` line), so
// the wait between one step's end and the next one's start shows.
import type { Runner } from './runner.js';

export function timed(inner: Runner, log: (line: string) => void): Runner {
  const t0 = performance.now();
  // Everything before the first side effect: Node's start, loading moshctl, the config and ssh -G.
  log(`timing: start ${Math.round(t0)} ms (at 0 ms)`);
  const since = (t: number): number => Math.round(t - t0);
  const wrap =
    <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>, hostOf?: (first: A[0]) => string) =>
    async (...args: A): Promise<R> => {
      const start = performance.now();
      try {
        return await f(...args);
      } finally {
        const now = performance.now();
        const host = hostOf?.(args[0]);
        log(
          `timing: ${name} ${Math.round(now - start)} ms (at ${since(now)} ms; ${host ? `on ${host} ` : ''}from ${since(start)} ms)`,
        );
      }
    };
  const connect = wrap('connect', inner.connect.bind(inner));
  const onStep = (step: { host: string }): string => step.host;
  const onHost = (host: string): string => host;
  return {
    connect: (onReady) =>
      connect((host) => {
        log(`timing: ${host} open (at ${since(performance.now())} ms)`);
        onReady?.(host);
      }),
    startServer: wrap('server', inner.startServer.bind(inner), onStep),
    startRelay: wrap('relay', inner.startRelay.bind(inner), onStep),
    wireRelay: wrap('wire', inner.wireRelay.bind(inner), onStep),
    startForward: wrap('forward', inner.startForward.bind(inner), onStep),
    startPortForward: wrap('port-forward', inner.startPortForward.bind(inner), onStep),
    startAgent: wrap('agent', inner.startAgent.bind(inner), onStep),
    unlinkAgent: wrap('unlink-agent', inner.unlinkAgent.bind(inner), onHost),
    ...(inner.keep ? { keep: inner.keep.bind(inner) } : {}),
    runClient: wrap('client', inner.runClient.bind(inner)),
    stop: wrap('stop', inner.stop.bind(inner), onHost),
    alive: wrap('alive', inner.alive.bind(inner), onHost),
    close: wrap('close', inner.close.bind(inner)),
  };
}
