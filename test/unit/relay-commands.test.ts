import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  chooseRuntime,
  parseProbe,
  parseRelayAlive,
  parseRelayOutput,
  parseRelayStop,
  probeRuntimesCommand,
  relayAliveCommand,
  relayCommand,
  stopRelayCommand,
  type RelaySpec,
} from '../../src/relay/commands.js';
import { shellQuote } from '../../src/remote/shell.js';

/** What sh makes of a quoted word: the argument list printf receives. */
function shWords(quoted: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${quoted}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

const spec: RelaySpec = {
  runtime: 'socat',
  listen: { from: 60001, to: 60010 },
  to: { address: '10.0.2.3', port: 60001 },
  idleTimeout: 600,
};

describe('shellQuote', () => {
  const hostile = [
    "it's",
    '$(touch /tmp/pwned)',
    '`id`',
    'a b\tc\nd',
    "'; rm -rf / #",
    '--help',
    '=ls',
    '~root',
    '*',
    '\\',
    '',
    '"$HOME"',
  ];
  it.each(hostile)('keeps %j one literal word in sh', (value) => {
    expect(shWords(shellQuote(value))).toEqual([value]);
  });

  it('leaves plain words bare and quotes the rest', () => {
    expect(shellQuote('10.0.2.3:60001')).toBe('10.0.2.3:60001');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('=ls')).toBe(`'=ls'`);
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('relayCommand', () => {
  it('starts socat and nc through the fallback script, with a warning', () => {
    const socat = relayCommand({ ...spec, runtime: 'socat', to: { address: 'db-1.internal', port: 60002 } });
    expect(socat.stdin).toBeUndefined();
    expect(socat.warning).toMatch(/fallback/);
    expect(socat.command).toMatch(/^exec env 'MOSHCTL_RELAY=.*'/s);
    expect(
      socat.command.endsWith(
        ` /bin/sh -c 'eval "$MOSHCTL_RELAY"' moshctl-relay start socat 60001 60010 db-1.internal 60002 600 64`,
      ),
    ).toBe(true);
    const nc = relayCommand({ ...spec, runtime: 'nc' });
    expect(nc.warning).toMatch(/roam.*ends the session/);
    expect(nc.command).toContain(' moshctl-relay start nc 60001 60010 10.0.2.3 60001 600 64');
  });

  it('hands sh the fallback script and arguments intact', () => {
    const { command } = relayCommand({ ...spec, runtime: 'socat' });
    const words = shWords(command.replace(/^exec /, ''));
    expect(words[0]).toBe('env');
    expect(words[1]).toMatch(/^MOSHCTL_RELAY=[\s\S]*serve-socat\)[\s\S]*esac$/);
    expect(words.slice(2)).toEqual([
      '/bin/sh',
      '-c',
      'eval "$MOSHCTL_RELAY"',
      'moshctl-relay',
      'start',
      'socat',
      '60001',
      '60010',
      '10.0.2.3',
      '60001',
      '600',
      '64',
    ]);
  });

  it.each([
    ['address with shell syntax', { to: { address: '10.0.0.1;reboot', port: 1 } }],
    ['address that is an option', { to: { address: '-e/bin/sh', port: 1 } }],
    ['address with a space', { to: { address: 'a b', port: 1 } }],
    ['IPv6 address', { to: { address: '::1', port: 1 } }],
    ['bad IPv4', { to: { address: '10.0.0.256', port: 1 } }],
    ['port 0', { to: { address: 'x', port: 0 } }],
    ['fractional port', { to: { address: 'x', port: 1.5 } }],
    ['reversed range', { listen: { from: 60010, to: 60001 } }],
    ['NaN idle timeout', { idleTimeout: Number.NaN }],
    ['huge max clients', { maxClients: 1e6 }],
  ] as const)('rejects a %s', (_name, patch) => {
    expect(() => relayCommand({ ...spec, ...patch })).toThrow(/relay: invalid/);
  });
});

describe('parseRelayOutput', () => {
  it('reads the ready line among other output', () => {
    expect(parseRelayOutput('motd\r\nMOSHCTL-RELAY LISTEN 60003 PID 4242\n')).toEqual({
      port: 60003,
      pid: 4242,
    });
  });
  it('reads an error line', () => {
    expect(parseRelayOutput('MOSHCTL-RELAY ERROR no free UDP port in 60001-60010\n')).toEqual({
      error: 'no free UDP port in 60001-60010',
    });
  });
  it('returns undefined until a line arrives, and refuses impossible values', () => {
    expect(parseRelayOutput('')).toBeUndefined();
    expect(parseRelayOutput('MOSHCTL-RELAY LISTEN 600')).toBeUndefined();
    expect(parseRelayOutput('MOSHCTL-RELAY LISTEN 70000 PID 5\n')).toHaveProperty('error');
    expect(parseRelayOutput('MOSHCTL-RELAY LISTEN 60001 PID 1\n')).toHaveProperty('error');
  });
});

describe('stop and alive commands', () => {
  it('pass the pid and the recorded start time (or nothing) as arguments after the script', () => {
    expect(stopRelayCommand(4242)).toMatch(
      /^\/bin\/sh -c '[\s\S]*STOPPED[\s\S]*' moshctl-relay-stop 4242 ''$/,
    );
    expect(relayAliveCommand(4242)).toMatch(/^\/bin\/sh -c '[\s\S]*' moshctl-relay-alive 4242 ''$/);
    expect(stopRelayCommand(4242, '123456')).toMatch(/ moshctl-relay-stop 4242 123456$/);
    // Anything else in its place is dropped, never passed on.
    expect(relayAliveCommand(4242, "x'; reboot")).toMatch(/ moshctl-relay-alive 4242 ''$/);
  });
  it('refuse pids that would signal init or every process', () => {
    for (const pid of [0, 1, -1, 2.5, Number.NaN]) {
      expect(() => stopRelayCommand(pid)).toThrow(/invalid pid/);
      expect(() => relayAliveCommand(pid)).toThrow(/invalid pid/);
    }
  });
  it('stop of a pid that is gone succeeds, twice', () => {
    const pid = 4194000; // above any pid this test machine hands out
    for (let i = 0; i < 2; i++) {
      expect(execFileSync('sh', ['-c', stopRelayCommand(pid)], { encoding: 'utf8' })).toBe(
        `MOSHCTL-RELAY STOPPED ${pid}\n`,
      );
    }
    const alive = execFileSync('sh', ['-c', relayAliveCommand(pid)], { encoding: 'utf8' });
    expect(parseRelayAlive(alive)).toBe('dead');
  });
  it('parses alive output', () => {
    expect(parseRelayAlive('MOSHCTL-RELAY ALIVE 12\n')).toBe('alive');
    expect(parseRelayAlive('MOSHCTL-RELAY GONE 12\n')).toBe('dead');
    expect(parseRelayAlive('MOSHCTL-RELAY UNKNOWN 12\n')).toBe('unknown');
    expect(parseRelayAlive('noise')).toBeUndefined();
    expect(parseRelayStop('MOSHCTL-RELAY UNKNOWN 12\n')).toBe('unknown');
    expect(parseRelayStop('MOSHCTL-RELAY NOT-OURS 12\n')).toBe('other');
  });
});

describe('runtime probe and choice', () => {
  it('probes this machine', () => {
    const out = execFileSync('sh', ['-c', probeRuntimesCommand()], { encoding: 'utf8' });
    expect(out).toMatch(/^MOSHCTL-PROBE python3 (ok|old|missing)/m);
    expect(Object.keys(parseProbe(out))).toEqual(expect.arrayContaining(['python3', 'socat', 'nc']));
  });

  it('parses probe output', () => {
    expect(
      parseProbe('MOSHCTL-PROBE python3 old 3.5\nMOSHCTL-PROBE socat missing\nMOSHCTL-PROBE nc ok\n'),
    ).toEqual({
      python3: false,
      python3Version: '3.5',
      socat: false,
      nc: true,
    });
  });

  const none = { python3: false, socat: false, nc: false };
  it('honours an explicit runtime, with nc warned about', () => {
    expect(chooseRuntime('nc', { ...none, nc: true })).toMatchObject({ runtime: 'nc' });
    expect(chooseRuntime('nc', { ...none, nc: true })).toHaveProperty('warning');
    expect(chooseRuntime('nc', { ...none, socat: true })).toHaveProperty('error');
    expect(chooseRuntime('socat', { ...none, socat: true })).toMatchObject({
      runtime: 'socat',
      warning: expect.stringMatching(/fallback/) as unknown,
    });
    expect(chooseRuntime('socat', none)).toMatchObject({
      hint: expect.stringMatching(/apt install socat/) as unknown,
    });
  });
});
