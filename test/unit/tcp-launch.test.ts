// launch.ts, the text: the command, its validation, and the lines the forwarder prints.
// tcp-forwarder.test.ts runs the command for real.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  LAUNCH_SH,
  PERL_BOOT,
  PYTHON_BOOT,
  forwarderLaunch,
  parseExit,
  parseReady,
  type ForwarderLaunchSpec,
} from '../../src/tcp/launch.js';
import { readForwarderPrograms } from '../../src/tcp/script.js';
import { shellQuote } from '../../src/remote/shell.js';

const programs = {
  python3: readFileSync(new URL('../../src/tcp/runtime/forwarder.py', import.meta.url), 'utf8'),
  perl: readFileSync(new URL('../../src/tcp/runtime/forwarder.pl', import.meta.url), 'utf8'),
};
const spec = (more: Partial<ForwarderLaunchSpec> = {}): ForwarderLaunchSpec => ({
  runtime: 'auto',
  to: { address: '127.0.0.1', port: 60001 },
  idleTimeout: 300,
  ...more,
});

describe('forwarderLaunch', () => {
  it('runs a constant script under /bin/sh with every value a quoted argument', () => {
    const { command, stdin } = forwarderLaunch(spec(), programs);
    const P = programs.python3.length;
    const L = programs.perl.length;
    expect(command).toBe(
      `/bin/sh -c ${shellQuote(LAUNCH_SH)} moshctl-fwd auto ${P} ${L} --to 127.0.0.1:60001 --idle-timeout 300`,
    );
    expect(stdin).toBe(programs.python3 + programs.perl);
    expect(Buffer.byteLength(stdin)).toBe(P + L);
  });

  it('sends one program, with counts to match, when a single runtime is asked for', () => {
    const py = forwarderLaunch(spec({ runtime: 'python3' }), programs);
    expect(py.stdin).toBe(programs.python3);
    expect(py.command).toMatch(new RegExp(`' moshctl-fwd python3 ${programs.python3.length} 0 --to `));
    const pl = forwarderLaunch(spec({ runtime: 'perl', to: { address: '::1', port: 7 } }), programs);
    expect(pl.stdin).toBe(programs.perl);
    expect(pl.command).toMatch(
      new RegExp(`' moshctl-fwd perl 0 ${programs.perl.length} --to '\\[::1\\]:7' --idle-timeout 300$`),
    );
  });

  it('keeps the script on one line free of backslashes, and the bootstraps free of single quotes', () => {
    expect(LAUNCH_SH).not.toMatch(/[\\\n]/);
    expect(PYTHON_BOOT).not.toMatch(/['\\]/);
    expect(PERL_BOOT).not.toMatch(/['\\]/);
  });

  it.each(['a;b', '$(reboot)', '-oProxyCommand', 'fe80::1%eth0', '', 'x'.repeat(254), '10.0.0.1 ; id'])(
    'refuses the mosh-server address %j',
    (address) => {
      expect(() => forwarderLaunch(spec({ to: { address, port: 1 } }), programs)).toThrow(
        'invalid mosh-server address',
      );
    },
  );

  it('takes IPv4, IPv6 and names', () => {
    for (const [address, arg] of [
      ['127.0.0.1', '127.0.0.1:9'],
      ['::1', `'[::1]:9'`],
      ['localhost', 'localhost:9'],
    ])
      expect(forwarderLaunch(spec({ to: { address: address!, port: 9 } }), programs).command).toContain(
        ` --to ${arg} `,
      );
  });

  it('refuses bad numbers, runtimes and programs', () => {
    const at = (port: number) => spec({ to: { address: '::1', port } });
    expect(() => forwarderLaunch(at(0), programs)).toThrow('mosh-server port');
    expect(() => forwarderLaunch(at(65536), programs)).toThrow('mosh-server port');
    expect(() => forwarderLaunch(spec({ idleTimeout: 0 }), programs)).toThrow('idle timeout');
    expect(() => forwarderLaunch(spec({ idleTimeout: 2.5 }), programs)).toThrow('idle timeout');
    expect(() => forwarderLaunch(spec({ runtime: 'ruby' as 'auto' }), programs)).toThrow('runtime');
    expect(() => forwarderLaunch(spec(), { ...programs, perl: '# é' })).toThrow('ASCII');
    expect(() => forwarderLaunch(spec(), { ...programs, python3: '' })).toThrow('ASCII');
    // the program not sent is not checked
    expect(forwarderLaunch(spec({ runtime: 'perl' }), { ...programs, python3: '' }).stdin).toBe(
      programs.perl,
    );
  });

  it('reads the programs from beside the module', async () => {
    expect(await readForwarderPrograms()).toEqual(programs);
  });
});

describe('parseReady and parseExit', () => {
  it.each([
    ['MOSHCTL-FWD READY PID 4242 RUNTIME python3', { pid: 4242, runtime: 'python3' }],
    ['MOSHCTL-FWD READY PID 17 RUNTIME perl\r\n', { pid: 17, runtime: 'perl' }],
    ['MOSHCTL-FWD ERROR --to: bad port', { error: '--to: bad port' }],
    ['MOSHCTL-FWD READY PID 1 RUNTIME perl', { error: expect.stringContaining('impossible pid') as string }],
    ['MOSHCTL-FWD READY PID 12 RUNTIME ruby', undefined],
    ['MOSHCTL-RELAY LISTEN 60001 PID 12 RUNTIME perl', undefined],
    ['Welcome to bastion', undefined],
  ])('%j', (line, parsed) => {
    expect(parseReady(line)).toEqual(parsed);
  });

  it('reads the exit line', () => {
    expect(parseExit('MOSHCTL-FWD EXIT idle sent=3 received=2 dropped=1 refused=0\n')).toEqual({
      why: 'idle',
      sent: 3,
      received: 2,
      dropped: 1,
      refused: 0,
    });
    expect(parseExit('MOSHCTL-FWD EXIT later sent=3 received=2 dropped=1 refused=0')).toBeUndefined();
  });
});
