// Ending the server sessions of connections that died (a roam): what the runner
// learns, what counts as an orphan, and the remote commands on a real sh.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SshdSessions } from '../../src/execute/sshd-sessions.js';
import { endSshdCommand, ownSshdCommand, parseEndSshd, parseOwnSshd } from '../../src/remote/sshd-session.js';
import type { ExecResult, RemoteChain } from '../../src/transport/types.js';

const STARTED = '123456';

/** A chain whose hosts answer the learn command with a pid each, and record every command. */
function fakeChain(
  pids: Record<string, number>,
  answer?: (host: string, cmd: string) => string,
): RemoteChain & { ran: string[] } {
  const ran: string[] = [];
  return {
    hostNames: Object.keys(pids),
    reachedAddress: undefined,
    ran,
    exec: (host: string, command: string): Promise<ExecResult> => {
      ran.push(`${host}: ${command}`);
      const stdout =
        answer?.(host, command) ??
        (command === ownSshdCommand() ? `MOSHCTL-SSHD ${pids[host]} ${STARTED}\n` : '');
      return Promise.resolve({ stdout, stderr: '', code: 0 });
    },
    execUntil: () => Promise.reject(new Error('unused')),
    openChannel: () => Promise.reject(new Error('unused')),
    openStream: () => Promise.reject(new Error('unused')),
    openConnection: () => Promise.reject(new Error('unused')),
    remoteForward: () => Promise.reject(new Error('unused')),
    onClose: () => () => undefined,
    destroy: () => undefined,
    close: () => Promise.resolve(),
  };
}
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

describe('SshdSessions', () => {
  it('ends the sessions of dead connections over the next chain, and only those', async () => {
    const sshd = new SshdSessions();
    const old = fakeChain({ bastion: 101, target: 202 });
    sshd.learn(old);
    await tick();
    sshd.lost(old, ['target']); // only the target's connection dropped
    const next = fakeChain({ bastion: 301, target: 402 }, (_h, cmd) =>
      cmd.includes('o=202') ? '202 ended\n' : '',
    );
    sshd.endOrphans(next);
    await sshd.settled();
    const ends = next.ran.filter((c) => !c.endsWith(ownSshdCommand()));
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatch(/^target: .*o=202/);
    expect(ends[0]).not.toContain('o=101');
    expect(sshd.ended).toBe(1);
  });

  it('keeps an orphan whose hop cannot be reached for the chain after', async () => {
    const sshd = new SshdSessions();
    const old = fakeChain({ bastion: 101 });
    sshd.learn(old);
    await tick();
    sshd.lost(old, ['bastion']);
    const failing = fakeChain({ bastion: 1 });
    failing.exec = () => Promise.reject(new Error('unreachable'));
    sshd.endOrphans(failing);
    await sshd.settled();
    const next = fakeChain({ bastion: 301 }, () => '101 ended\n');
    sshd.endOrphans(next);
    await sshd.settled();
    expect(next.ran.some((c) => c.includes('o=101'))).toBe(true);
    expect(sshd.ended).toBe(1);
  });

  it('ends nothing when no connection died', async () => {
    const sshd = new SshdSessions();
    sshd.learn(fakeChain({ bastion: 101 }));
    await tick();
    const next = fakeChain({ bastion: 301 });
    sshd.endOrphans(next);
    await sshd.settled();
    expect(next.ran).toEqual([]);
  });
});

describe('SshdSessions with set-up commands that say the session', () => {
  const learned = (sshd: SshdSessions, next: RemoteChain & { ran: string[] }) => {
    sshd.endOrphans(next);
    return sshd.settled().then(() => next.ran.map((c) => /o=(\d+)/.exec(c)?.[1]).filter(Boolean));
  };

  it('asks only the hosts no set-up command covers, and keeps what the others said, before or after learn()', async () => {
    const sshd = new SshdSessions(['bastion', 'target']);
    const chain = fakeChain({ bastion: 101, bastion2: 151, target: 202 });
    sshd.tell(chain, 'bastion', { pid: 101, started: STARTED }); // a relay, before the chain was whole
    sshd.learn(chain);
    sshd.tell(chain, 'target', { pid: 202, started: STARTED }); // mosh-server's keeper, after
    await tick();
    expect(chain.ran.map((c) => c.split(':')[0])).toEqual(['bastion2']);
    sshd.lost(chain, chain.hostNames);
    const ends = await learned(sshd, fakeChain({ bastion: 1, bastion2: 2, target: 3 }));
    expect(ends.sort()).toEqual(['101', '151', '202']);
  });

  it('asks a covered host whose command said nothing, and not one that said none (no /proc)', async () => {
    const sshd = new SshdSessions(['bastion', 'target']);
    const chain = fakeChain({ bastion: 101, target: 202 });
    sshd.learn(chain);
    sshd.tell(chain, 'bastion', 'none');
    sshd.tell(chain, 'target', undefined);
    await tick();
    expect(chain.ran.map((c) => c.split(':')[0])).toEqual(['target']);
    sshd.tell(chain, 'target', { pid: 999, started: STARTED }); // late and unasked for: ignored
    sshd.lost(chain, chain.hostNames);
    expect(await learned(sshd, fakeChain({ bastion: 1, target: 3 }))).toEqual(['202']);
  });

  it('asks every host of a later chain, and ignores what is said over another chain', async () => {
    const sshd = new SshdSessions(['target']);
    const first = fakeChain({ target: 202 });
    const other = fakeChain({ target: 303 });
    sshd.tell(other, 'target', { pid: 303, started: STARTED });
    sshd.learn(first);
    await tick();
    expect(first.ran).toEqual([]); // waits for its own chain's command
    sshd.tell(first, 'target', { pid: 202, started: STARTED });
    sshd.lost(first, ['target']);
    const second = fakeChain({ target: 404 });
    sshd.learn(second);
    await tick();
    expect(second.ran).toEqual([`target: ${ownSshdCommand()}`]);
    expect(await learned(sshd, second)).toEqual(['202']);
  });
});

describe('sshd session commands', () => {
  const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });

  it('parses the learned pid and start time, and refuses anything else', () => {
    expect(parseOwnSshd(`noise\nMOSHCTL-SSHD 4242 ${STARTED}\n`)).toEqual({ pid: 4242, started: STARTED });
    expect(parseOwnSshd('MOSHCTL-SSHD none\n')).toBeUndefined();
    expect(parseOwnSshd("MOSHCTL-SSHD 4242 $(reboot)'\n")).toBeUndefined();
    expect(parseOwnSshd('MOSHCTL-SSHD 4242 Wed Nov 25 03:36:59 2026\n')).toBeUndefined();
  });

  it('signals no process that started at another time, and says gone for a pid that is not there', () => {
    const pid = Number(sh('sleep 30 >/dev/null 2>&1 & echo $!').trim());
    try {
      const out = parseEndSshd(
        sh(
          endSshdCommand([
            { pid, started: STARTED },
            { pid: 4194300, started: STARTED },
          ]),
        ),
      );
      expect(out.get(pid)).toBe('other');
      expect(out.get(4194300)).toBe('gone');
      process.kill(pid, 0); // still alive
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('refuses to build a command from a pid or start time it did not parse', () => {
    expect(() => endSshdCommand([{ pid: 1, started: STARTED }])).toThrow(/bug/);
    expect(() => endSshdCommand([{ pid: 5, started: "x'; reboot" }])).toThrow(/bug/);
  });
});
