// --debug: every remote command on stderr as it runs, with its host, how long
// it took and how it ended. A decorator over the RemoteChain, so neither ssh
// client carries logging code. What a command reads on stdin is never logged,
// nor its stdout (mosh-server's holds the session key); anything shaped like a
// key is masked in what is logged all the same.
import { debugEnabled, maskSecrets } from './debug-env.js';
import { endpointText } from './forward-errors.js';
import type { ExecOptions, ExecResult, RemoteChain } from './types.js';

export interface DebugChainOptions {
  /** Milliseconds, for durations; performance.now() unless a test fixes it. */
  clock?: () => number;
  /** Numbers the commands, shared by every chain of a runner, so a start and its end can be matched. */
  counter?: { next: number };
}

/** Commands and stderr as one short line each: a relay command is a few hundred bytes, a script more. */
const MAX_SHOWN = 1000;

function oneLine(text: string): string {
  const flat = text.replace(/\r?\n/g, '\\n');
  return flat.length > MAX_SHOWN ? `${flat.slice(0, MAX_SHOWN)}... (${flat.length} characters)` : flat;
}

export function debugChain(
  inner: RemoteChain,
  log: (line: string) => void,
  { clock = () => performance.now(), counter = { next: 1 } }: DebugChainOptions = {},
): RemoteChain {
  const say = (line: string): void => log(maskSecrets(line));
  const since = (start: number): string => `${Math.round(clock() - start)} ms`;

  /** Logs the start, then the end or the failure, of one remote command. */
  const traced = async <R>(
    host: string,
    command: string,
    how: string,
    run: (id: string) => Promise<R>,
    ended: (result: R, after: string) => string,
  ): Promise<R> => {
    const id = `#${counter.next++} ${host}`;
    say(`${id} ${how}$ ${oneLine(command)}`);
    const start = clock();
    try {
      const result = await run(id);
      say(`${id} ${ended(result, since(start))}`);
      return result;
    } catch (e) {
      say(`${id} failed after ${since(start)}: ${oneLine(e instanceof Error ? e.message : String(e))}`);
      throw e;
    }
  };

  const exitLine =
    (untilReady: boolean) =>
    (r: ExecResult, after: string): string => {
      if (r.code === null)
        return untilReady ? `ready after ${after} (still running)` : `ended by a signal after ${after}`;
      const stderr = r.code !== 0 && r.stderr.trim() ? `; stderr: ${oneLine(r.stderr.trim())}` : '';
      return `exit ${r.code} after ${after}${stderr}`;
    };

  /** A command kept open (a channel or a stream): logged when it opens and again when it closes. */
  const kept = <C extends { closed: Promise<void> }>(
    kind: 'channel' | 'stream',
    host: string,
    command: string,
    open: () => Promise<C>,
    note?: string,
  ): Promise<C> =>
    traced(
      host,
      command,
      `(${kind}${note ? `, ${note}` : ''}) `,
      async (id) => {
        const channel = await open();
        const opened = clock();
        const closed = (): void => say(`${id} ${kind} closed after ${since(opened)} open`);
        channel.closed.then(closed, closed);
        return channel;
      },
      (_, after) => `${kind} open after ${after}`,
    );

  inner.onClose((host, error) => say(`${host}: connection closed${error ? `: ${error.message}` : ''}`));

  return {
    get hostNames() {
      return inner.hostNames;
    },
    get reachedAddress() {
      return inner.reachedAddress;
    },
    get localAddress() {
      return inner.localAddress;
    },
    exec: (host: string, command: string, opts?: ExecOptions) =>
      traced(host, command, '', () => inner.exec(host, command, opts), exitLine(false)),
    execUntil: (host, command, opts) =>
      traced(host, command, '', () => inner.execUntil(host, command, opts), exitLine(true)),
    openChannel: (host, command, opts) =>
      kept(
        'channel',
        host,
        command,
        () => inner.openChannel(host, command, opts),
        opts.forwardAgent ? 'with the agent' : undefined,
      ),
    openStream: (host, command, opts) =>
      kept('stream', host, command, () => inner.openStream(host, command, opts)),
    openConnection: (host, to, opts) =>
      traced(
        host,
        `connect ${endpointText(to)}`,
        'forward ',
        () => inner.openConnection(host, to, opts),
        (_r, after) => `opened after ${after}`,
      ),
    remoteForward: (host, at, to, events) =>
      traced(
        host,
        `listen ${endpointText(at)} for ${endpointText(to)} here`,
        'forward ',
        () => inner.remoteForward(host, at, to, events),
        (r, after) => `accepted after ${after}${r.port !== undefined ? ` (port ${r.port})` : ''}`,
      ),
    onClose: (cb) => inner.onClose(cb),
    destroy: () => inner.destroy(),
    close: () => inner.close(),
  };
}

type Env = Readonly<Record<string, string | undefined>>;

// Kept importable from here, where they were first.
export { debugEnabled, maskSecrets };

/** SshRunner's `wrapChain` under --debug (nothing otherwise): lines go to `stderr` as "moshctl: debug: ...". */
export function debugChainOption(
  env: Env,
  stderr: (text: string) => void = (text) => void process.stderr.write(text),
): { wrapChain?: (chain: RemoteChain) => RemoteChain } {
  if (!debugEnabled(env)) return {};
  const counter = { next: 1 };
  return {
    wrapChain: (chain) => debugChain(chain, (line) => stderr(`moshctl: debug: ${line}\n`), { counter }),
  };
}
