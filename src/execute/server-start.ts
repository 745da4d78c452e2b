// Starting mosh-server on the target, in a channel that stays open: the shell
// around it (the keeper) stops it when told its pid over that channel, and
// stops it by itself when its MOSH CONNECT line cannot get out (the connection
// dropped meanwhile), so a mosh-server nobody heard of is never left running.
import { EnvError } from '../errors.js';
import type { ServerStep } from '../plan/types.js';
import {
  KEPT,
  moshServerBindFallback,
  moshServerFailure,
  moshServerKeptCommand,
  moshServerSilent,
  parseKeeper,
  parseMoshServerOutput,
  parseServerBound,
  parseServerExit,
  parseServerFound,
  parseServerStarted,
  redactKey,
  stopKeeperCommand,
} from '../remote/mosh-server.js';
import { parseSessionReport, type SessionReport } from '../remote/sshd-session.js';
import { closedWhileRunning } from '../transport/errors.js';
import { awaitLine } from '../transport/line-channel.js';
import type { ExecResult, LineChannel, RemoteChain } from '../transport/types.js';
import type { OnStarted, ServerStarted } from './runner.js';

const SERVER_TIMEOUT_MS = 20_000;

/**
 * Starts mosh-server for `step` over `chain`; resolves with what it printed
 * and the channel kept for its stop. `onStarted` is told the keeper shell as
 * soon as it says its pid, then mosh-server; once it returned from that, the
 * keeper hears KEPT (until then it stops mosh-server if its channel closes).
 * `ask` runs a short command on the target (to stop a mosh-server that said
 * nothing in time). `onSession` is told the connection's session process
 * when the keeper reported it (see SshdSessions.tell).
 */
export async function startMoshServer(
  chain: RemoteChain,
  step: ServerStep,
  ask: (command: string) => Promise<ExecResult>,
  onStarted?: OnStarted,
  onSession?: (report: SessionReport) => void,
): Promise<ServerStarted & { channel: LineChannel }> {
  const channel = await chain.openChannel(step.host, moshServerKeptCommand(step), { stdin: '' });
  // mosh-server's output, both streams merged, up to the line saying its parent exited.
  const lines: string[] = [];
  let keeper: ReturnType<typeof parseKeeper>;
  let session: SessionReport | undefined;
  const code = await awaitLine(
    channel,
    (l) => {
      if (session === undefined && (session = parseSessionReport(l))) {
        onSession?.(session);
        return undefined;
      }
      lines.push(l);
      if (keeper === undefined && (keeper = parseKeeper(l))) onStarted?.({ kind: 'keeper', ...keeper });
      return parseServerExit(l);
    },
    SERVER_TIMEOUT_MS,
  );
  const started = lines.map(parseServerStarted).find((x) => x !== undefined);
  const bound = lines.map(parseServerBound).find((x) => x !== undefined);
  const output = lines.join('\n');
  // Once a pid is parsed the server runs, whatever the exit code: it must be recorded to be stopped.
  const parsed = parseMoshServerOutput(output, output);
  if (parsed) {
    const server = { pid: parsed.pid, port: parsed.port, ...(started ? { started } : {}) };
    onStarted?.({ kind: 'mosh-server', ...server });
    channel.send(KEPT);
    const warning = moshServerBindFallback(output);
    return {
      ...server,
      key: parsed.key,
      ...(bound ? { bound } : {}),
      ...(warning ? { warning } : {}),
      channel,
    };
  }
  channel.end();
  // The message may quote mosh-server's output; never let a key through.
  // moshctl's own marker lines are not mosh-server's words.
  const said = redactKey(
    `${channel.stderr()}\n${lines.filter((l) => !l.startsWith('MOSHCTL-SERVER ')).join('\n')}`,
  );
  if (code === undefined) {
    // Read before the keeper is stopped below: stopping it closes the channel too.
    if (channel.isClosed) throw closedWhileRunning(step.host, 'mosh-server new');
    // A mosh-server that said nothing in time is stopped with its keeper, not left behind.
    if (keeper !== undefined) await ask(stopKeeperCommand(keeper.pid, keeper.started)).catch(() => undefined);
    const f = moshServerSilent(SERVER_TIMEOUT_MS, said);
    throw new EnvError(f.message, f.hint, { host: step.host, step: 'start mosh-server' });
  }
  const found = lines.map(parseServerFound).filter((x) => x !== undefined);
  const f = moshServerFailure(code, said, { program: step.program, found });
  throw new EnvError(f.message, f.hint, { host: step.host, step: 'start mosh-server' });
}
