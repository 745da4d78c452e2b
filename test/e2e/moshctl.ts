// Drives `moshctl up` as a person would: in a terminal (tmux) in the lab's
// client namespace, typing into the session and reading effects on the hosts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect } from 'vitest';
import { REPO_ROOT, Tmux, type HostName, type Lab } from '../../src/lab/index.js';

export interface UpSession {
  tmux: Tmux;
  /** XDG_STATE_HOME of this moshctl: its records live below. */
  stateHome: string;
  /** moshctl's stderr (mosh-client owns the screen). */
  errFile: string;
  env: Record<string, string>;
}

let counter = 0;

/** Starts `moshctl -f <lab config> ARGS` in tmux as the client. */
export interface StartOptions {
  env?: Record<string, string>;
  config?: string;
  /** Run moshctl as the lab's ordinary client user (mctl-client) instead of root. */
  asClientUser?: boolean;
  /** No `-f`: moshctl looks for a moshproxy.yaml upwards from `cwd` (and finds none in an empty folder). */
  noConfig?: boolean;
  /** The working directory moshctl starts in (default: the one it inherits). */
  cwd?: string;
}

export async function startMoshctl(lab: Lab, args: string[], opts: StartOptions = {}): Promise<UpSession> {
  const name = `up${++counter}`;
  // The client user writes its state and stderr where it may: its own 0700 folder.
  const base = opts.asClientUser ? (lab.clientUserFiles?.dir ?? lab.dir) : lab.dir;
  const stateHome = join(base, `state-${name}`);
  const errFile = join(base, `${name}.err`);
  const env = { XDG_STATE_HOME: stateHome, ...opts.env };
  const tmux = await Tmux.start(lab, {
    ...(opts.asClientUser ? { asClientUser: true } : {}),
    name,
    // sh only to send moshctl's stderr to a file and start it in cwd; exec keeps moshctl the pane's program.
    command: [
      'sh',
      '-c',
      'err=$1; [ -z "$2" ] || cd "$2" || exit 97; shift 2; exec "$@" 2>>"$err"',
      'sh',
      errFile,
      opts.cwd ?? '',
      process.execPath,
      join(REPO_ROOT, 'bin', 'moshctl.js'),
      ...configArgs(lab, opts),
      ...args,
    ],
    env,
  });
  return { tmux, stateHome, errFile, env };
}

function configArgs(lab: Lab, opts: { noConfig?: boolean; config?: string }): string[] {
  return opts.noConfig ? [] : ['-f', opts.config ?? lab.configFile];
}

/** moshctl run as the client, outside tmux, with the same state folder as `s` (so `down` and `status` find its record). */
export function moshctlBeside(lab: Lab, s: UpSession, args: string[], config = lab.configFile) {
  return lab.exec(
    'client',
    [
      'env',
      `XDG_STATE_HOME=${s.stateHome}`,
      process.execPath,
      join(REPO_ROOT, 'bin/moshctl.js'),
      '-f',
      config,
      ...args,
    ],
    { timeoutMs: 60_000 },
  );
}

export function stderrOf(s: UpSession): string {
  return existsSync(s.errFile) ? readFileSync(s.errFile, 'utf8') : '';
}

export async function waitForStderr(
  s: UpSession,
  pattern: RegExp | string,
  timeoutMs = 20_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = stderrOf(s);
    if (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`moshctl stderr did not show ${String(pattern)}:\n${text}`);
    await sleep(100);
  }
}

/** Waits for the shell prompt of the session (root's "# "). */
export async function waitForPrompt(s: UpSession, timeoutMs = 30_000): Promise<void> {
  try {
    await s.tmux.waitFor(/# $/m, timeoutMs);
  } catch (err) {
    // When mosh-client gave up, the pane is dead and only moshctl's stderr says why.
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${message}\nmoshctl stderr:\n${stderrOf(s)}`, { cause: err });
  }
}

/**
 * Waits for the shell prompt, but fails at once, with moshctl's stderr, when
 * moshctl exits first (a refused option, a failed set-up) instead of waiting
 * out the whole timeout for a prompt that cannot come.
 */
export async function waitForPromptOrExit(s: UpSession, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (/# $/m.test(await s.tmux.capture())) return;
    const code = await s.tmux.exitStatus();
    if (code !== undefined)
      throw new Error(`moshctl exited ${code} before the prompt; stderr:\n${stderrOf(s)}`);
    if (Date.now() > deadline)
      throw new Error(
        `no prompt within ${timeoutMs} ms; screen:\n${await s.tmux.capture()}\nstderr:\n${stderrOf(s)}`,
      );
    await sleep(100);
  }
}

let marker = 0;

/**
 * Types a command into the session that writes the namespace it runs in to a
 * file, and waits until the file says the target's: proof that keystrokes
 * reach the target and the session is alive. Returns how long it took.
 */
export async function typeAndCheck(
  lab: Lab,
  s: UpSession,
  timeoutMs = 30_000,
  host: HostName = 'target',
  /** Where the typed command writes its proof; one the remote user may write to. */
  dir = lab.dir,
): Promise<number> {
  const file = join(dir, `typed-${++marker}`);
  const started = Date.now();
  await s.tmux.sendKeys(`ip netns identify > ${file}`);
  await s.tmux.sendEnter();
  const want = lab.host(host).ns;
  for (;;) {
    const got = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
    if (got === want) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `typed command had no effect on ${host} within ${timeoutMs} ms (file: "${got}"); screen:\n${await s.tmux.capture()}`,
      );
    }
    await sleep(100);
  }
}

let roundTrips = 0;

/**
 * typeAndCheck proves keystrokes reach the target; this proves the way back:
 * the target computes a number only its output can put on the client's screen
 * (mosh's local echo shows the typed `$((…))`, never the result). A relay that
 * stays locked on an old client address passes typeAndCheck and fails this.
 */
export async function bothWays(lab: Lab, s: UpSession, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  await typeAndCheck(lab, s, timeoutMs);
  const a = 1000 + ++roundTrips;
  await s.tmux.sendKeys(`echo rt-$((${a}*7))`);
  await s.tmux.sendEnter();
  await s.tmux.waitFor(
    new RegExp(`^rt-${a * 7}\\s*$`, 'm'),
    Math.max(1000, timeoutMs - (Date.now() - started)),
  );
  return Date.now() - started;
}

/** The client's link goes down for `ms`, then up again (the client keeps its addresses). */
export async function outage(lab: Lab, ms: number): Promise<void> {
  await lab.linkDown('client');
  try {
    await sleep(ms);
  } finally {
    await lab.linkUp('client');
  }
}

/** A test that failed half-way must not leave the next one offline (useSessions' cleanup). */
export function restoreNetwork(ctx: { readonly lab: Lab }): () => Promise<void> {
  return async () => {
    await ctx.lab.linkUp('client');
    await ctx.lab.clearDrops();
  };
}

/** Types `exit` and waits for moshctl to end; returns its exit status. */
export async function exitSession(s: UpSession, timeoutMs = 30_000): Promise<number> {
  await s.tmux.sendKeys('exit');
  await s.tmux.sendEnter();
  return waitForExit(s, timeoutMs);
}

export async function waitForExit(s: UpSession, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const code = await s.tmux.exitStatus();
    if (code !== undefined) return code;
    if (Date.now() > deadline)
      throw new Error(`moshctl did not exit within ${timeoutMs} ms; stderr:\n${stderrOf(s)}`);
    await sleep(100);
  }
}

/**
 * moshctl exits with `code` within `timeoutMs`, nothing is left running on
 * any host and no state record remains; returns its stderr for more checks.
 */
export async function expectEnded(lab: Lab, s: UpSession, code: number, timeoutMs = 30_000): Promise<string> {
  const got = await waitForExit(s, timeoutMs);
  const err = stderrOf(s);
  expect(got, err).toBe(code);
  expect(await settleNoSessionProcesses(lab), err).toEqual([]);
  expect(records(s), err).toEqual([]);
  return err;
}

/** Session records in this moshctl's state directory. */
export function records(s: UpSession): string[] {
  const dir = join(s.stateHome, 'moshctl', 'sessions');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
}

/** The parts of a state record the e2e tests read. */
export interface RecordFile {
  pid: number;
  server?: { host: string; pid: number; port: number };
  relays: { host: string; pid: number; port: number; runtime: string }[];
}

/** The session's state record, waiting for it to be written. */
export async function readRecord(s: UpSession, timeoutMs = 10_000): Promise<RecordFile> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [file] = records(s);
    if (file) {
      try {
        return JSON.parse(readFileSync(join(s.stateHome, 'moshctl', 'sessions', file), 'utf8')) as RecordFile;
      } catch {
        // written meanwhile (atomically, but the name may be gone): read again
      }
    }
    if (Date.now() > deadline) throw new Error(`no state record; stderr:\n${stderrOf(s)}`);
    await sleep(100);
  }
}

/**
 * SIGKILLs `up` and its mosh-client, as a laptop that dies would: no teardown,
 * and no goodbye that ends mosh-server. Up is stopped first. Killed first, it
 * ends its tmux pane's shell, whose terminal then hangs up on mosh-client,
 * which says goodbye; a mosh-client killed first lets up start its teardown.
 * Either can run between two kills on a loaded machine (up then mosh-client
 * lost mosh-server in 5 of 32 tries there; stopped first, in none of 40).
 */
export function killUpAndClient(upPid: number, clientPid: number): void {
  process.kill(upPid, 'SIGSTOP');
  process.kill(clientPid, 'SIGKILL');
  process.kill(upPid, 'SIGKILL');
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** Session processes (mosh-server, mosh-client, relays) still alive in the lab, as "host pid cmdline". */
export async function sessionProcesses(lab: Lab): Promise<string[]> {
  const hosts: HostName[] = [
    'client',
    'bastion',
    'target',
    ...(lab.hosts.bastion2 ? (['bastion2'] as const) : []),
  ];
  const found: string[] = [];
  for (const host of hosts) {
    for (const pid of await lab.pidsIn(host)) {
      const cmd = cmdline(pid);
      if (isZombie(pid) || cmd.startsWith('sshd:') || cmd.includes('/sshd ')) continue;
      // The lab's access-broker bridges and endpoints (socat … /broker/…) are the lab's, not a session's.
      if (/^socat .*\/broker\//.test(cmd)) continue;
      if (/mosh-server|mosh-client|--idle-timeout|socat|moshctl-relay|\bnc\b/.test(cmd))
        found.push(`${host} ${pid} ${cmd}`);
    }
  }
  return found;
}

/**
 * Every process left on the hops (not the client) other than each sshd
 * listener: an `sshd: user@notty` session of a dead connection counts, as do
 * mosh-server, relays and their shells. As "host pid cmdline".
 */
export async function hopProcesses(lab: Lab): Promise<string[]> {
  const hosts: HostName[] = ['bastion', 'target', ...(lab.hosts.bastion2 ? (['bastion2'] as const) : [])];
  const found: string[] = [];
  for (const host of hosts) {
    for (const pid of await lab.pidsIn(host)) {
      const cmd = cmdline(pid);
      if (isZombie(pid) || cmd === '' || cmd.includes('[listener]') || cmd.includes('/sshd ')) continue;
      found.push(`${host} ${pid} ${cmd}`);
    }
  }
  return found;
}

/** Waits until hopProcesses() is empty; returns what is left on timeout. */
export async function settleNoHopProcesses(
  lab: Lab,
  timeoutMs = 15_000,
  /** Lines ("host pid cmdline") that belong to the lab, not to a session, such as an access broker's bridge. */
  ignore: (line: string) => boolean = () => false,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = (await hopProcesses(lab)).filter((l) => !ignore(l));
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(250);
  }
}

/**
 * A client address change, then a 15 s outage of the client's link, the
 * session checked after each (typing reaches the target within `recoveryMs`).
 */
export async function roamAndOutage(
  lab: Lab,
  s: UpSession,
  recoveryMs = 30_000,
  outageMs = 15_000,
): Promise<void> {
  await lab.roam();
  await typeAndCheck(lab, s, recoveryMs);
  await lab.linkDown('client');
  await sleep(outageMs);
  await lab.linkUp('client');
  await typeAndCheck(lab, s, recoveryMs);
}

/** Waits until no session process is left anywhere in the lab; returns what is left on timeout. */
export async function settleNoSessionProcesses(lab: Lab, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await sessionProcesses(lab);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(200);
  }
}

/**
 * Sessions of one describe block. `start` runs moshctl and tracks it; after
 * every test its terminals are killed and no session process may be left on
 * any host. Leftovers are also killed by pid (they run in this lab's
 * namespaces), so one failing test does not fail every later one.
 */
export function useSessions(
  ctx: { readonly lab: Lab },
  cleanup?: () => Promise<void> | void,
): {
  start: (args: string[], opts?: StartOptions) => Promise<UpSession>;
} {
  const open: UpSession[] = [];
  afterEach(async () => {
    await cleanup?.();
    for (const s of open.splice(0)) await s.tmux.kill();
    const left = await settleNoSessionProcesses(ctx.lab);
    for (const p of left) {
      try {
        process.kill(Number(p.split(' ')[1]), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    expect(left).toEqual([]);
  });
  return {
    start: async (args, opts = {}) => {
      const s = await startMoshctl(ctx.lab, args, opts);
      open.push(s);
      return s;
    },
  };
}

/** How a moshctl run without a terminal ended. */
export interface Completed {
  code: number | null;
  stdout: string;
  stderr: string;
  /** How long it ran. */
  ms: number;
}

/**
 * Runs moshctl as the client to completion with no terminal at all: stdin is
 * a pipe and, through setsid, there is no controlling terminal either, so it
 * can neither ask for a passphrase nor start mosh-client (`up` needs
 * --no-connect). `noAgent` takes SSH_AUTH_SOCK away; `asClientUser` runs it as
 * the lab's ordinary client user, whose clean environment has no agent anyway.
 */
export async function runWithoutTerminal(
  lab: Lab,
  args: string[],
  opts: {
    config?: string;
    /** No `-f`: moshctl looks upwards from `cwd` for a moshproxy.yaml. */
    noConfig?: boolean;
    /** Where moshctl starts (default: the one it inherits). */
    cwd?: string;
    env?: Record<string, string>;
    asClientUser?: boolean;
    noAgent?: boolean;
    timeoutMs?: number;
  } = {},
): Promise<Completed> {
  const moshctl = [
    'sh',
    '-c',
    '[ -z "$1" ] || cd "$1" || exit 97; shift; exec "$@"',
    'sh',
    opts.cwd ?? '',
    process.execPath,
    join(REPO_ROOT, 'bin', 'moshctl.js'),
    ...configArgs(lab, opts),
    ...args,
  ];
  const env = opts.env ?? {};
  const argv = opts.asClientUser
    ? ['setsid', '--wait', ...lab.asClientUser(moshctl, env)]
    : [
        'setsid',
        '--wait',
        'env',
        ...(opts.noAgent ? ['-u', 'SSH_AUTH_SOCK'] : []),
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ...moshctl,
      ];
  const started = Date.now();
  const r = await lab.exec('client', argv, { timeoutMs: opts.timeoutMs ?? 60_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}
