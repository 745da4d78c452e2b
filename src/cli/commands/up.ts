// `moshctl up NAME`: plan, set up as listr2 tasks, hand the terminal to
// mosh-client, tear down from the record, exit with the client's code.
import { constants, hostname } from 'node:os';
import type { ListrTask } from 'listr2';
import type { HostConfig } from '../../config/types.js';
import { EnvError, ExitCode, Interrupted } from '../../errors.js';
import { execute } from '../../execute/executor.js';
import { SignalTrap } from '../../execute/signals.js';
import { SshRunner } from '../../execute/ssh-runner.js';
import { timed } from '../../execute/timed-runner.js';
import { planUp } from '../../plan/plan.js';
import { RECORD_VERSION, type RecordedHop, type SessionRecord } from '../../state/record.js';
import { SessionStore, stateDir } from '../../state/store.js';
import type { CommandContext } from '../main.js';
import { report } from '../main.js';
import { load } from './common.js';
import { findOnPath } from './path.js';

export async function up(ctx: CommandContext): Promise<number> {
  const { config, files } = load(ctx);
  const name = ctx.positionals[0] ?? '';
  const plan = planUp(config, name, {}, { command: ctx.rest });
  // Checked before anything starts on a host: without mosh-client the session could never be used.
  if (!findOnPath('mosh-client', ctx.io.env.PATH)) {
    throw new EnvError(
      'mosh-client is not installed on this machine',
      'install mosh (Debian/Ubuntu: apt install mosh; macOS: brew install mosh)',
      { host: 'local', step: 'check' },
    );
  }
  const route = plan.route.map((h) => config.hosts[h]).filter((h): h is HostConfig => h !== undefined);
  const store = new SessionStore(stateDir(ctx.io.env));
  const record: SessionRecord = {
    version: RECORD_VERSION,
    id: store.newId(name),
    name,
    configFiles: files,
    createdAt: new Date().toISOString(),
    pid: process.pid,
    machine: hostname(),
    route: route.map(recordedHop),
    relays: [],
    networkTimeout: config.hosts[name]?.mosh.network_timeout ?? 0,
  };

  // When the terminal goes away (SIGHUP), writes to it fail with EIO; teardown
  // must still run, so such write errors are ignored rather than crashing moshctl.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  const abort = new AbortController();
  const runner = new SshRunner(route, { signal: abort.signal });
  const trap = new SignalTrap((sig) => {
    abort.abort(new Interrupted(sig));
    // While mosh-client runs it owns the terminal; a signal to moshctl ends it, then teardown runs.
    runner.killClient(sig === 'SIGINT' ? 'SIGTERM' : sig);
  });
  const log = (line: string): void => ctx.io.stderr(`moshctl: ${line}\n`);
  try {
    const outcome = await execute(plan, {
      runner: ctx.io.env.MOSHCTL_TIMING ? timed(runner, log) : runner,
      record,
      save: (r) => store.write(r),
      forget: (r) => store.remove(r.id),
      interrupted: () => trap.signal,
      log,
      runTasks: (tasks) => runListr(tasks),
      beforeStep: holdForTests(ctx.io.env.MOSHCTL_TEST_HOLD, log, abort.signal),
    });
    const t = outcome.teardown;
    if (t.left.length === 0) log(`session ${record.id} ended; stopped ${t.stopped.length} process(es)`);
    if (outcome.error !== undefined) {
      const e = outcome.error;
      // A signal that interrupted a step surfaces as that step's error; report it as the interruption.
      const code = report(trap.signal && !(e instanceof EnvError) ? new Interrupted(trap.signal) : e, ctx.io);
      return trap.signal ? 128 + signalNumber(trap.signal) : code;
    }
    // Ended by SIGTERM/SIGHUP (e.g. `moshctl down` from another terminal): say so in the exit code.
    if (trap.signal) return 128 + signalNumber(trap.signal);
    return outcome.clientCode ?? ExitCode.internal;
  } finally {
    trap.release();
  }
}

async function runListr(tasks: ListrTask[]): Promise<void> {
  const { Listr } = await import('listr2');
  const tty = process.stderr.isTTY === true;
  await new Listr(tasks, {
    concurrent: false,
    exitOnError: true,
    // listr2's own handler calls process.exit without cleanup; moshctl handles signals itself.
    registerSignalListeners: false,
    renderer: tty ? 'default' : 'simple',
    fallbackRenderer: 'simple',
    rendererOptions: { collapseErrors: false },
  }).run();
}

/**
 * MOSHCTL_TEST_HOLD=connect|server|relay|client: wait before that step until a
 * signal arrives, so end-to-end tests can interrupt `up` at each step. Unset
 * in normal use.
 */
function holdForTests(
  kind: string | undefined,
  log: (line: string) => void,
  signal: AbortSignal,
): ((step: string) => Promise<void>) | undefined {
  if (!kind) return undefined;
  return (step) => {
    if (step !== kind || signal.aborted) return Promise.resolve();
    log(`holding before step ${step} (MOSHCTL_TEST_HOLD)`);
    // A pending promise does not keep Node running: before `connect` nothing else
    // does, and Node would exit (code 13) instead of waiting. A timer does.
    const keepAlive = setInterval(() => undefined, 60_000);
    return new Promise((resolve) =>
      signal.addEventListener(
        'abort',
        () => {
          clearInterval(keepAlive);
          resolve();
        },
        { once: true },
      ),
    );
  };
}

function recordedHop(h: HostConfig): RecordedHop {
  return {
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    identity_file: h.identity_file,
    known_hosts: h.known_hosts,
  };
}

function signalNumber(sig: NodeJS.Signals): number {
  return constants.signals[sig];
}
