// Port forwards (-L, -R, -D) and agent forwarding (-A) kept across roaming
// (issue 17), through one bastion with each ssh client: curl through a local
// forward before a roam, after a client address change and after a 15 s
// outage; the target reaching the client's server through a remote forward;
// SOCKS5 and SOCKS4a with the name resolved at the target; the client's agent
// seen by `ssh-add -l` in the session before and after a roam, and never on
// the bastion; and after exit nothing left anywhere. First, the same pieces
// with plain OpenSSH (`ssh -J`), which proves the lab's servers and its agent
// scan work, so a failure further down is moshctl's.
import { existsSync, lstatSync, readFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ForwardStatus } from '../../src/forward/types.js';
import {
  agentExposure,
  freeTcpPort,
  freeTcpPorts,
  serveHttp,
  spawnTracked,
  startAgent,
  type AgentExposure,
  type HostName,
  type HttpServer,
  type Lab,
  type LabAgent,
  type RunResult,
} from '../../src/lab/index.js';
import {
  exitSession,
  moshctlBeside,
  records,
  restoreNetwork,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  useSessions,
  waitForPromptOrExit,
  type UpSession,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

/** How long a forward may take to work again after a roam or an outage: a bound to poll within, not a goal. */
const RECOVERY_MS = 30_000;
const OUTAGE_MS = 15_000;

/** curl on a lab host, failing fast (a forward that hangs must not hold a poll for long). */
function curl(lab: Lab, host: HostName, args: string[]): Promise<RunResult> {
  return lab.exec(host, ['curl', '-sS', '--max-time', '3', ...args], { timeoutMs: 10_000 });
}

/** Polls curl until it prints `want`; returns the ms it took, or throws with curl's last words. */
async function fetchUntil(
  lab: Lab,
  host: HostName,
  args: string[],
  want: string,
  timeoutMs = RECOVERY_MS,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    const r = await curl(lab, host, args);
    if (r.code === 0 && r.stdout === want) return Date.now() - started;
    if (Date.now() - started > timeoutMs)
      throw new Error(
        `curl ${args.join(' ')} on ${host} did not get "${want.trim()}" within ${timeoutMs} ms: exit ${r.code}, ${JSON.stringify(r.stdout + r.stderr)}`,
      );
    await sleep(250);
  }
}

/** The servers every test of a describe block points its forwards at, started once. */
interface Servers {
  /** On the target's loopback: where -L and -D lead. */
  http: HttpServer;
  /** On the client's loopback: where -R leads. */
  back: HttpServer;
  /** root's agent in the client namespace, with a fresh key. */
  agent: LabAgent;
}

function useServers(ctx: { readonly lab: Lab }): { readonly servers: Servers } {
  let servers: Servers | undefined;
  beforeAll(async () => {
    const { lab } = ctx;
    for (const p of ['curl', 'ssh-agent', 'ssh-add']) {
      const r = await lab.exec('client', ['sh', '-c', `command -v ${p}`]);
      if (r.code !== 0) throw new Error(`${p} is missing: run scripts/setup.sh as root`);
    }
    servers = {
      http: await serveHttp(lab, 'target', await freeTcpPort(lab, 'target')),
      back: await serveHttp(lab, 'client', await freeTcpPort(lab, 'client')),
      agent: await startAgent(lab),
    };
  });
  afterAll(async () => {
    for (const p of servers ? [servers.agent, servers.back, servers.http] : []) await p.stop();
  });
  return {
    get servers(): Servers {
      if (!servers) throw new Error('the servers were not started (did beforeAll fail?)');
      return servers;
    },
  };
}

/** Lines of hopProcesses() that are the test's own HTTP server on the target, not a session's. */
const ownServer =
  (http: HttpServer) =>
  (line: string): boolean =>
    line.startsWith(`${http.host} ${http.pid} `);

/** Polls agentExposure(host) while `running` lasts, until it shows a socket; returns the last scan. */
async function exposureDuring(lab: Lab, host: HostName, running: Promise<unknown>): Promise<AgentExposure> {
  let done = false;
  void running.finally(() => (done = true));
  for (;;) {
    const seen = await agentExposure(lab, host);
    if (seen.sockets.length > 0 || done) return seen;
    await sleep(100);
  }
}

const none: AgentExposure = { sockets: [], processes: [] };

describe.skipIf(reason)('the lab pieces, through plain OpenSSH (ssh -J)', () => {
  const ctx = useLab({});
  const s = useServers(ctx);

  it('-L, -R and -D through ssh -J reach the servers; ssh -A -J shows the agent on the target only', async () => {
    const { lab } = ctx;
    const { http, back, agent } = s.servers;
    const [local = 0, socks = 0] = await freeTcpPorts(lab, 'client', 2);
    const remote = await freeTcpPort(lab, 'target');
    const [ssh, ...rest] = lab.sshArgv('target');
    const tunnel = spawnTracked(lab, 'client', [
      ssh ?? 'ssh',
      '-N',
      '-o',
      'ExitOnForwardFailure=yes',
      '-L',
      `127.0.0.1:${local}:127.0.0.1:${http.port}`,
      '-D',
      `127.0.0.1:${socks}`,
      '-R',
      `${remote}:127.0.0.1:${back.port}`,
      ...rest,
    ]);
    try {
      await fetchUntil(lab, 'client', [`http://127.0.0.1:${local}${http.path}`], http.body, 15_000);
      const byName = `http://localhost:${http.port}${http.path}`;
      expect((await curl(lab, 'client', ['--socks5-hostname', `127.0.0.1:${socks}`, byName])).stdout).toBe(
        http.body,
      );
      expect((await curl(lab, 'client', ['--socks4a', `127.0.0.1:${socks}`, byName])).stdout).toBe(http.body);
      // The control: the client's own localhost has nothing there, so the name was resolved at the target.
      expect((await curl(lab, 'client', [byName])).code).not.toBe(0);
      expect((await curl(lab, 'target', [`http://127.0.0.1:${remote}${back.path}`])).stdout).toBe(back.body);
    } finally {
      await tunnel.stop();
    }
    expect(await lab.canReach('client', '127.0.0.1', local)).toBe(false);

    // -A through -J: the agent reaches the target (ssh-add -l there lists the key), never the bastion.
    const withAgent = (host: HostName): Promise<RunResult> => {
      const [cmd, ...args] = lab.sshArgv(host, ['ssh-add -l; sleep 3']);
      return lab.exec('client', ['env', `SSH_AUTH_SOCK=${agent.socket}`, cmd ?? 'ssh', '-A', ...args], {
        timeoutMs: 20_000,
      });
    };
    const toTarget = withAgent('target');
    const onTarget = await exposureDuring(lab, 'target', toTarget);
    const onBastion = await agentExposure(lab, 'bastion');
    const listed = await toTarget;
    expect(listed.stdout).toContain(agent.fingerprint);
    expect(onTarget.sockets).toHaveLength(1);
    expect(onTarget.processes.join('\n')).toContain(`SSH_AUTH_SOCK=${onTarget.sockets[0]}`);
    expect(onBastion).toEqual(none);
    // The positive control for the bastion: `ssh -A bastion` does show there, so the scan can see it.
    const toBastion = withAgent('bastion');
    const direct = await exposureDuring(lab, 'bastion', toBastion);
    expect((await toBastion).stdout).toContain(agent.fingerprint);
    expect(direct.sockets).toHaveLength(1);
    expect(direct.processes).not.toEqual([]);
    expect(await settleNoHopProcesses(lab, 15_000, ownServer(http))).toEqual([]);
    expect(await agentExposure(lab, 'target')).toEqual(none);
    expect(await agentExposure(lab, 'bastion')).toEqual(none);
  });
});

/** What the test reads of `up`'s state record: the forwards and the agent (src/state/record.ts). */
interface ForwardRecord {
  forwards?: ForwardStatus[];
  agent?: { host: string; socket: string; up: boolean; lastError?: string };
}

function readForwardRecord(s: UpSession): ForwardRecord | undefined {
  const [file] = records(s);
  if (!file) return undefined;
  try {
    return JSON.parse(readFileSync(join(s.stateHome, 'moshctl', 'sessions', file), 'utf8')) as ForwardRecord;
  } catch {
    return undefined; // replaced as we read it
  }
}

/** Waits until the record has a forward whose text includes `spec` and `pred` holds for it. */
async function forwardStatus(
  s: UpSession,
  spec: string,
  pred: (f: ForwardStatus) => boolean,
  timeoutMs = 10_000,
): Promise<ForwardStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rec = readForwardRecord(s);
    const f = rec?.forwards?.find((x) => x.text.includes(spec));
    if (f && pred(f)) return f;
    if (Date.now() > deadline)
      throw new Error(`no forward ${spec} as expected in the record: ${JSON.stringify(rec?.forwards)}`);
    await sleep(200);
  }
}

let typed = 0;

/**
 * Types `ssh-add -l` into the session (its output shown and kept in a file)
 * and SSH_AUTH_SOCK as the session's shell has it; returns both.
 */
async function agentInSession(lab: Lab, s: UpSession): Promise<{ listing: string; socket: string }> {
  const n = ++typed;
  const listing = join(lab.dir, `agent-list-${n}`);
  const socket = join(lab.dir, `agent-sock-${n}`);
  await s.tmux.sendKeys(`ssh-add -l 2>&1 | tee ${listing}.tmp; mv ${listing}.tmp ${listing}`);
  await s.tmux.sendEnter();
  await s.tmux.sendKeys(`echo "$SSH_AUTH_SOCK" > ${socket}.tmp; mv ${socket}.tmp ${socket}`);
  await s.tmux.sendEnter();
  const deadline = Date.now() + 20_000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline)
      throw new Error(`typed ssh-add -l had no effect within 20 s; screen:\n${await s.tmux.capture()}`);
    await sleep(100);
  }
  return { listing: readFileSync(listing, 'utf8'), socket: readFileSync(socket, 'utf8').trim() };
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

describe.skipIf(reason).each(SSH_CLIENTS)(
  'forwards kept across roaming, through one bastion (%s)',
  (sshClient) => {
    const ctx = useLab({ sshClient });
    const s = useServers(ctx);
    const sessions = useSessions(ctx, restoreNetwork(ctx));

    async function up(args: string[], env: Record<string, string> = {}): Promise<UpSession> {
      const session = await sessions.start(['up', 'target', ...args], { env });
      // A refused option (`Unknown option '-L'` before the feature) fails here at once, with moshctl's words.
      await waitForPromptOrExit(session);
      await typeAndCheck(ctx.lab, session);
      return session;
    }

    async function endsClean(session: UpSession): Promise<void> {
      const { lab } = ctx;
      expect(await exitSession(session)).toBe(0);
      expect(await settleNoSessionProcesses(lab), stderrOf(session)).toEqual([]);
      expect(records(session)).toEqual([]);
      expect(await settleNoHopProcesses(lab, 15_000, ownServer(s.servers.http)), stderrOf(session)).toEqual(
        [],
      );
    }

    it('-L: curl gets the body before a roam, after a roam and after a 15 s outage; status shows it listening with counters', async () => {
      const { lab } = ctx;
      const { http } = s.servers;
      const port = await freeTcpPort(lab, 'client');
      const spec = `127.0.0.1:${port}:127.0.0.1:${http.port}`;
      const session = await up(['-L', spec]);
      const url = [`http://127.0.0.1:${port}${http.path}`];
      await fetchUntil(lab, 'client', url, http.body, 5_000);

      await lab.roam();
      await typeAndCheck(lab, session, RECOVERY_MS);
      console.log(
        `-L (${sshClient}): curl got the body ${await fetchUntil(lab, 'client', url, http.body)} ms after the roam`,
      );

      await lab.linkDown('client');
      await sleep(OUTAGE_MS);
      await lab.linkUp('client');
      console.log(
        `-L (${sshClient}): curl got the body ${await fetchUntil(lab, 'client', url, http.body)} ms after a ${OUTAGE_MS} ms outage`,
      );

      // Each curl above was one connection; some during recovery may have broken or been refused.
      const f = await forwardStatus(session, spec, (x) => x.listening && x.total >= 3 && x.open === 0);
      console.log(`-L (${sshClient}): ${JSON.stringify(f)}`);
      const status = await moshctlBeside(lab, session, ['status']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(spec);
      expect(status.stdout).toMatch(/listening/);
      await endsClean(session);
    });

    it('-R: the target reaches the client’s server through it, before and after a roam', async () => {
      const { lab } = ctx;
      const { back } = s.servers;
      const port = await freeTcpPort(lab, 'target');
      const session = await up(['-R', `${port}:127.0.0.1:${back.port}`]);
      const url = [`http://127.0.0.1:${port}${back.path}`];
      await fetchUntil(lab, 'target', url, back.body, 5_000);
      await lab.roam();
      await typeAndCheck(lab, session, RECOVERY_MS);
      console.log(
        `-R (${sshClient}): the target got the body ${await fetchUntil(lab, 'target', url, back.body)} ms after the roam`,
      );
      await forwardStatus(session, `${port}:127.0.0.1:${back.port}`, (x) => x.listening && x.total >= 2);
      await endsClean(session);
      expect(await lab.canReach('target', '127.0.0.1', port)).toBe(false);
    });

    it('-D: SOCKS5 with the name resolved at the target, and SOCKS4a', async () => {
      const { lab } = ctx;
      const { http } = s.servers;
      const port = await freeTcpPort(lab, 'client');
      const session = await up(['-D', String(port)]);
      const byName = `http://localhost:${http.port}${http.path}`;
      await fetchUntil(lab, 'client', ['--socks5-hostname', `127.0.0.1:${port}`, byName], http.body, 5_000);
      await fetchUntil(lab, 'client', ['--socks4a', `127.0.0.1:${port}`, byName], http.body, 5_000);
      // Nothing listens on the client's own localhost:HTTPPORT: the name was resolved at the target.
      expect((await curl(lab, 'client', [byName])).code).not.toBe(0);
      await endsClean(session);
      expect(await lab.canReach('client', '127.0.0.1', port)).toBe(false);
    });

    it('-A: ssh-add -l in the session lists the client’s key before and after a roam; nothing of the agent on the bastion', async () => {
      const { lab } = ctx;
      const { agent } = s.servers;
      const session = await up(['-A'], agent.env);
      const before = await agentInSession(lab, session);
      expect(before.listing, before.listing).toContain(agent.fingerprint);
      expect(before.socket).not.toBe('');
      // The scan sees the forwarded agent on the target, so an empty one on the bastion means absent.
      expect((await agentExposure(lab, 'target')).sockets).not.toEqual([]);
      expect(await agentExposure(lab, 'bastion')).toEqual(none);

      await lab.roam();
      await typeAndCheck(lab, session, RECOVERY_MS);
      const deadline = Date.now() + RECOVERY_MS;
      let after = await agentInSession(lab, session);
      while (!after.listing.includes(agent.fingerprint) && Date.now() < deadline) {
        await sleep(500);
        after = await agentInSession(lab, session);
      }
      expect(after.listing, after.listing).toContain(agent.fingerprint);
      // The shell's SSH_AUTH_SOCK is the stable link: the same path now leads to the new chain's agent.
      expect(after.socket).toBe(before.socket);
      expect(await agentExposure(lab, 'bastion')).toEqual(none);
      await endsClean(session);
      expect(lstatOrUndefined(before.socket)).toBeUndefined();
      expect(await agentExposure(lab, 'target')).toEqual(none);
    });

    it('-L, -R, -D and -A at once: after exit nothing is left on any host, the ports are closed and the agent link is gone', async () => {
      const { lab } = ctx;
      const { http, back, agent } = s.servers;
      const [local = 0, socks = 0] = await freeTcpPorts(lab, 'client', 2);
      const remote = await freeTcpPort(lab, 'target');
      const session = await up(
        [
          '-L',
          `127.0.0.1:${local}:127.0.0.1:${http.port}`,
          '-R',
          `${remote}:127.0.0.1:${back.port}`,
          '-D',
          String(socks),
          '-A',
        ],
        agent.env,
      );
      await fetchUntil(lab, 'client', [`http://127.0.0.1:${local}${http.path}`], http.body, 5_000);
      await fetchUntil(lab, 'target', [`http://127.0.0.1:${remote}${back.path}`], back.body, 5_000);
      const viaSocks = [
        '--socks5-hostname',
        `127.0.0.1:${socks}`,
        `http://localhost:${http.port}${http.path}`,
      ];
      await fetchUntil(lab, 'client', viaSocks, http.body, 5_000);
      const inSession = await agentInSession(lab, session);
      expect(inSession.listing).toContain(agent.fingerprint);
      expect(lstatOrUndefined(inSession.socket)).toBeDefined();
      expect(await agentExposure(lab, 'bastion')).toEqual(none);

      await endsClean(session);
      // Connections are refused at once: nothing listens any more (canReach is `nc -z`, 1 s).
      expect(await lab.canReach('client', '127.0.0.1', local)).toBe(false);
      expect(await lab.canReach('client', '127.0.0.1', socks)).toBe(false);
      expect(await lab.canReach('target', '127.0.0.1', remote)).toBe(false);
      expect(lstatOrUndefined(inSession.socket)).toBeUndefined();
      expect(await agentExposure(lab, 'target')).toEqual(none);
      expect(await agentExposure(lab, 'bastion')).toEqual(none);
    });
  },
);
