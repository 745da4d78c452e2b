import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { moshServerCommand, moshServerFailure, parseMoshServerOutput } from '../../src/remote/mosh-server.js';
import { aliveCommand, parseAlive, parseStop, stopByPidCommand } from '../../src/remote/processes.js';

const step = {
  ports: { from: 60000, to: 61000 },
  networkTimeout: 86400,
  signalTimeout: 60,
  locale: 'C.UTF-8',
};

describe('mosh-server command', () => {
  it('puts the timeouts inline through env and quotes the command', () => {
    expect(moshServerCommand(step)).toBe(
      "env 'MOSH_SERVER_NETWORK_TMOUT=86400' 'MOSH_SERVER_SIGNAL_TMOUT=60' mosh-server new -p 60000:61000 -l 'LANG=C.UTF-8'",
    );
    expect(moshServerCommand({ ...step, command: ['sh', '-c', "echo 'hi'; $(id)"] })).toBe(
      `env 'MOSH_SERVER_NETWORK_TMOUT=86400' 'MOSH_SERVER_SIGNAL_TMOUT=60' mosh-server new -p 60000:61000 -l 'LANG=C.UTF-8' -- sh -c 'echo '\\''hi'\\''; $(id)'`,
    );
  });

  it('the quoted command reaches the program as the same words', () => {
    const cmd = moshServerCommand({ ...step, command: ['printf', '%s|', 'a b', "c'd", '$(x)', '`y`'] });
    const words = cmd.slice(cmd.indexOf(' -- ') + 4);
    expect(execFileSync('sh', ['-c', words], { encoding: 'utf8' })).toBe("a b|c'd|$(x)|`y`|");
  });

  it('parses the connect line (stdout) and the detached pid (stderr)', () => {
    const out = '\r\nMOSH CONNECT 60003 PkxRd7ZoPZVjHA5L7g5wWA\r\n';
    const err = 'mosh-server (mosh 1.4.0)\n\n[mosh-server detached, pid = 15593]\n';
    expect(parseMoshServerOutput(out, err)).toEqual({
      port: 60003,
      key: 'PkxRd7ZoPZVjHA5L7g5wWA',
      pid: 15593,
    });
    expect(parseMoshServerOutput(out, '')).toBeUndefined();
    expect(parseMoshServerOutput('MOSH CONNECT 60003 short', err)).toBeUndefined();
  });

  it('explains failures without the output that may hold the key', () => {
    expect(moshServerFailure(127, 'env: ‘mosh-server’: No such file or directory').message).toMatch(
      /not installed/,
    );
    expect(moshServerFailure(1, 'Error binding to any interface: bind: Address already in use').hint).toMatch(
      /widen mosh.server_ports/,
    );
    expect(moshServerFailure(1, 'odd\nlast words').message).toBe(
      'mosh-server exited with code 1: last words',
    );
  });
});

describe('stopping and checking processes by pid', () => {
  const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });

  it('stops a matching process, leaves another program alone, and says gone the second time', () => {
    const child = execFileSync('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
    const pid = Number(child.trim());
    try {
      expect(parseAlive(sh(aliveCommand([{ pid, marker: 'sleep' }])))).toEqual(new Map([[pid, true]]));
      expect(parseStop(sh(stopByPidCommand(pid, 'mosh-server')))).toBe('other');
      expect(parseAlive(sh(aliveCommand([{ pid, marker: 'mosh-server' }])))).toEqual(new Map([[pid, false]]));
      expect(parseStop(sh(stopByPidCommand(pid, 'sleep 30')))).toBe('stopped');
      // TERM was sent without waiting; once the process is gone, a second stop says so.
      const deadline = Date.now() + 5000;
      while (parseAlive(sh(aliveCommand([{ pid, marker: 'sleep' }]))).get(pid) && Date.now() < deadline) {
        execFileSync('sleep', ['0.1']);
      }
      expect(parseStop(sh(stopByPidCommand(pid, 'sleep 30')))).toBe('gone');
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already stopped by the test
      }
    }
  });

  it('refuses a pid that is not a plain positive number', () => {
    expect(() => stopByPidCommand(0, 'x')).toThrow(/invalid pid/);
    expect(() => stopByPidCommand(1.5, 'x')).toThrow(/invalid pid/);
    expect(() => stopByPidCommand(4194305, 'x')).toThrow(/invalid pid/);
  });
});
