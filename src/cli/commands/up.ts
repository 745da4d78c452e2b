// `moshctl up NAME`: plan, set up as listr2 tasks, hand the terminal to
// mosh-client, tear down from the record, exit with the client's code.
import { constants } from 'node:os';
import type { ListrTask } from 'listr2';
import { firstHopResolves, resolveRoute } from '../../config/hosts.js';
import { toSshHost, type HostConfig } from '../../config/types.js';
import { EnvError, ExitCode, Interrupted, UserError } from '../../errors.js';
import { execute } from '../../execute/executor.js';
import { SignalTrap } from '../../execute/signals.js';
import { SshRunner, sessionsFromSetup, sshConfigOption } from '../../execute/ssh-runner.js';
import { debugChainOption } from '../../transport/debug-chain.js';
import { timed } from '../../execute/timed-runner.js';
import { planUp } from '../../plan/plan.js';
import type { ClientStep } from '../../plan/types.js';
import { processIdentity } from '../../state/owner.js';
import { RECORD_VERSION, type SessionRecord } from '../../state/record.js';
import { SessionStore, stateDir } from '../../state/store.js';
import type { CommandContext } from '../context.js';
import { report } from '../report.js';
import { handOverTeardown } from '../cleanup.js';
import { terminalPrompter } from '../prompt.js';
import { hostsContext, load } from './common.js';
import { planOptions } from './plan-options.js';
import { findOnPath, findProgram } from '../../which.js';
import { clientMissingHint } from '../../execute/client.js';
import { loadSsh2 } from '../../ssh/ssh2-module.js';

/** The format of `up --no-connect --json`; bumped when a field changes meaning. */
const HAND_OVER_JSON_VERSION = 1;

export async function up(ctx: CommandContext): Promise<number> {
  const noConnect = ctx.values['no-connect'] === true;
  const json = ctx.values.json === true;
  if (json && !noConnect)
    throw UserError.one(
      '--json goes with --no-connect: without it, up hands the terminal to mosh-client and prints no data',
      `use "moshctl up ${ctx.positionals[0] ?? 'NAME'} --no-connect --json"`,
    );
  // mosh-client needs a terminal; without one it would die with tcgetattr after everything started.
  if (!noConnect && !ctx.io.stdinIsTTY) {
    throw UserError.one(
      'moshctl up needs a terminal on stdin for mosh-client, and this one has none',
      `run it in a terminal, or use "moshctl up ${ctx.positionals[0] ?? 'NAME'} --no-connect" to start the session and print what a mosh client elsewhere needs`,
    );
  }
  // A mistake in an option stops here, before ssh_config is read.
  const options = planOptions(ctx);
  // ssh2 takes ~40 ms to load: it loads while ssh -G runs for each hop, not after.
  loadSsh2().catch(() => undefined);
  const loaded = load(ctx);
  const files = loaded.files;
  const name = ctx.positionals[0] ?? '';
  const config = await resolveRoute(loaded, name, hostsContext(ctx));
  // Only a first hop behind a ProxyCommand is looked up: the transport may depend on it.
  const observed = { firstHopResolves: await firstHopResolves(config, name) };
  const plan = planUp(config, name, observed, options);
  // Checked before anything starts on a host: without mosh-client the session could never be used.
  const client = plan.steps.find((s): s is ClientStep => s.kind === 'client');
  if (client && !findProgram(client.program.path, ctx.io.env.PATH)) {
    const path = client.program.path;
    throw new EnvError(
      path === 'mosh-client'
        ? 'mosh-client is not installed on this machine'
        : `mosh-client ${path} (mosh.client, or --client) is not there or cannot run`,
      clientMissingHint(path),
      { host: 'local', step: 'check' },
    );
  }
  const route = plan.route.map((h) => config.hosts[h]).filter((h): h is HostConfig => h !== undefined);
  if (plan.sshClient === 'openssh' && !findOnPath('ssh', ctx.io.env.PATH)) {
    const asks = route.filter((h) => h.ssh_client === 'openssh').map((h) => h.name);
    throw new EnvError(
      `ssh_client: openssh (asked for by ${asks.join(', ')}) needs the OpenSSH client, and ssh is not installed on this machine`,
      'install it (Debian/Ubuntu: apt install openssh-client), or use ssh_client: ssh2 (built in)',
      { host: 'local', step: 'check' },
    );
  }
  const store = new SessionStore(stateDir(ctx.io.env));
  const record: SessionRecord = {
    version: RECORD_VERSION,
    id: store.newId(name),
    name,
    configFiles: files,
    createdAt: new Date().toISOString(),
    pid: process.pid,
    // Host name, boot id and start time: `down` and `status` signal this pid only while it is this process.
    ...processIdentity(),
    route: route.map(toSshHost),
    relays: [],
    networkTimeout: config.hosts[name]?.mosh.network_timeout ?? 0,
  };

  // When the terminal goes away (SIGHUP), writes to it fail with EIO; teardown
  // must still run, so such write errors are ignored rather than crashing moshctl.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  const abort = new AbortController();
  const agentStep = plan.steps.find((s) => s.kind === 'agent');
  const runner = new SshRunner(route, {
    signal: abort.signal,
    prompter: terminalPrompter(),
    // Only the target may be asked for the agent, and only when the plan forwards it.
    ...(agentStep ? { agentFor: agentStep.host } : {}),
    sessionsFromSetup: sessionsFromSetup(plan),
    ...sshConfigOption(ctx.io.env),
    ...debugChainOption(ctx.io.env, ctx.io.stderr),
  });
  const log = (line: string): void => ctx.io.stderr(`moshctl: ${line}\n`);
  for (const note of plan.notes) log(`note: ${note}`);
  let finished = false;
  /** Ctrl-Cs and SIGTERMs so far: a hangup (a closing terminal, maybe twice) is not the user's impatience. */
  let asked = 0;
  const trap = new SignalTrap((sig) => {
    if (sig !== 'SIGHUP') asked++;
    if (asked > 1 && sig !== 'SIGHUP' && !finished) {
      // A second Ctrl-C or SIGTERM: the user will not wait for teardown (a hop
      // that drops packets can take tens of seconds). Every process is in the
      // record from the moment its pid is known; a detached cleanup stops them,
      // and what was being started without a pid yet ends by itself once this
      // process's connections close (a relay not wired, a mosh-server not KEPT).
      const cleanup = handOverTeardown(store, record, {
        env: ctx.io.env,
        debug: ctx.debug,
        why: `${sig} again`,
      });
      log(
        cleanup.pid !== undefined
          ? `stopped waiting (${sig} again); the teardown goes on in the background (pid ${cleanup.pid}): "moshctl status" shows it, its log is ${cleanup.log}`
          : `stopped waiting (${sig} again); what may still run is in the record: run "moshctl down ${name}" to finish`,
      );
      process.exit(128 + signalNumber(sig));
    }
    abort.abort(new Interrupted(sig));
    // While mosh-client runs it owns the terminal; a signal to moshctl ends it, then teardown runs.
    runner.killClient(sig === 'SIGINT' ? 'SIGTERM' : sig);
  });
  try {
    const outcome = await execute(plan, {
      runner: ctx.io.env.MOSHCTL_TIMING || ctx.debug ? timed(runner, log) : runner,
      record,
      save: (r) => store.write(r),
      forget: (r) => store.remove(r.id),
      interrupted: () => trap.signal,
      log,
      runTasks: (tasks) => runListr(tasks, noConnect),
      beforeStep: holdForTests(ctx.io.env.MOSHCTL_TEST_HOLD, log, abort.signal),
      handOver: ({ address, port, key, program }) => {
        // The one place the key leaves moshctl, on request: stdout, for a mosh client elsewhere.
        // mosh.client names this machine's program, not the other one's; --predict and the like
        // are how that client should behave, so its line carries them as mosh-client's variables.
        const first = route[0];
        const env = Object.entries(program.env).map(([k, v]) => ` ${k}=${v}`);
        ctx.io.stdout(
          json
            ? `${JSON.stringify({ version: HAND_OVER_JSON_VERSION, session: record.id, name, host: first?.name ?? '', address, port, key, env: program.env }, null, 2)}\n`
            : `host ${first?.name ?? ''} (${address})\nport ${port}\nkey ${key}\nMOSH_KEY=${key}${env.join('')} mosh-client ${address} ${port}\n`,
        );
        log(`session ${record.id} left running for a client elsewhere; "moshctl down ${name}" ends it`);
      },
    });
    finished = true;
    const t = outcome.teardown;
    if (t.left.length === 0 && !outcome.handedOver)
      log(`session ${record.id} ended; stopped ${t.stopped.length} process(es)`);
    if (outcome.error !== undefined) {
      const e = outcome.error;
      // A signal that interrupted a step surfaces as that step's error; report it as the interruption.
      const code = report(
        trap.signal && !(e instanceof EnvError) ? new Interrupted(trap.signal) : e,
        ctx.io,
        ctx.debug,
      );
      return trap.signal ? 128 + signalNumber(trap.signal) : code;
    }
    // Ended by SIGTERM/SIGHUP (e.g. `moshctl down` from another terminal): say so in the exit code.
    if (trap.signal) return 128 + signalNumber(trap.signal);
    return outcome.clientCode ?? ExitCode.internal;
  } finally {
    trap.release();
  }
}

/**
 * The steps as a task list, on stderr: stdout carries data only (`--no-connect`'s
 * hand-over). listr2 draws its live list on stdout, so it is used only where
 * both are the same terminal; anywhere else plain lines go to stderr.
 */
async function runListr(tasks: ListrTask[], handsOver: boolean): Promise<void> {
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2');
  const common = {
    // Steps run by their dependencies on their own; the list shows them side by side.
    concurrent: true,
    exitOnError: true,
    // listr2's own handler calls process.exit without cleanup; moshctl handles signals itself.
    registerSignalListeners: false,
  } as const;
  if (!handsOver && process.stdout.isTTY === true && process.stderr.isTTY === true) {
    await new Listr(tasks, {
      ...common,
      renderer: 'default',
      rendererOptions: { collapseErrors: false },
    }).run();
    return;
  }
  const logger = new ListrLogger({
    processOutput: new ProcessOutput(process.stderr, process.stderr),
    useIcons: true,
  });
  await new Listr(tasks, { ...common, renderer: 'simple', rendererOptions: { logger } }).run();
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
    log(`holding before step ${step} (MOSHCTL_TEST_HOLD; SIGUSR2 goes on)`);
    // A pending promise does not keep Node running: before `connect` nothing else
    // does, and Node would exit (code 13) instead of waiting. A timer does.
    const keepAlive = setInterval(() => undefined, 60_000);
    return new Promise((resolve) => {
      // A test does something to the world while up waits (a hop dies), then lets it go on: SIGUSR2.
      const release = (): void => {
        clearInterval(keepAlive);
        process.off('SIGUSR2', release);
        signal.removeEventListener('abort', release);
        resolve();
      };
      process.on('SIGUSR2', release);
      signal.addEventListener('abort', release, { once: true });
    });
  };
}

function signalNumber(sig: NodeJS.Signals): number {
  return constants.signals[sig];
}
