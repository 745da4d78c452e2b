// doctor's reports as text and JSON, compared as literal text.
import { describe, expect, it } from 'vitest';
import { assemble, checkOrder } from '../../src/doctor/checks.js';
import { formatReport, reportJson } from '../../src/doctor/format.js';
import type { CheckResult } from '../../src/doctor/types.js';

const route = ['bastion', 'box'];
const allOk = checkOrder(route).map(({ host, check }): CheckResult =>
  check === 'tcp-round-trip'
    ? { host, check, status: 'skip', detail: 'not needed: UDP works' }
    : { host, check, status: 'ok', detail: `${check} fine` },
);

describe('doctor text', () => {
  it('groups checks by hop in route order, the round trips last, and ends with the verdict', () => {
    expect(formatReport(assemble('box', route, 'udp', allOk))).toBe(
      [
        'box: local → bastion → box (transport udp)',
        'local',
        '  ok    mosh-client     mosh-client fine',
        'bastion',
        '  ok    reachable       reachable fine',
        '  ok    host key        host-key fine',
        '  ok    login           auth fine',
        '  ok    forwarding      forwarding fine',
        '  ok    relay runtime   relay-runtime fine',
        'box',
        '  ok    reachable       reachable fine',
        '  ok    host key        host-key fine',
        '  ok    login           auth fine',
        '  ok    mosh-server     mosh-server fine',
        '  ok    mosh versions   mosh-versions fine',
        '  ok    locale          locale fine',
        'round trip',
        '  ok    udp round trip  bastion: udp-round-trip fine',
        '  skip  tcp round trip  box: not needed: UDP works',
        'all checks passed',
        '',
      ].join('\n'),
    );
  });

  it('names the first failure and its fix', () => {
    const ran = allOk.map((c) =>
      c.check === 'locale'
        ? { ...c, status: 'fail' as const, detail: 'xx is not UTF-8', hint: 'set mosh.locale' }
        : c,
    );
    const text = formatReport(assemble('box', route, 'udp', ran));
    expect(text).toContain('  FAIL  locale          xx is not UTF-8\n');
    expect(text.endsWith('first failure: locale of box: xx is not UTF-8\n  hint: set mosh.locale\n')).toBe(
      true,
    );
  });

  it('says each warning and its fix, and still passes', () => {
    const ran = allOk.map((c) =>
      c.check === 'mosh-versions'
        ? {
            ...c,
            status: 'warn' as const,
            detail: 'mosh-client 1.3.2 here, mosh-server 1.4.0 on box: no true colour',
            hint: 'update mosh on this machine',
          }
        : c,
    );
    const text = formatReport(assemble('box', route, 'udp', ran));
    expect(text).toContain(
      '  warn  mosh versions   mosh-client 1.3.2 here, mosh-server 1.4.0 on box: no true colour\n',
    );
    expect(
      text.endsWith(
        'warning: mosh versions of box: mosh-client 1.3.2 here, mosh-server 1.4.0 on box: no true colour\n  hint: update mosh on this machine\nall checks passed\n',
      ),
    ).toBe(true);
  });
});

describe('doctor JSON', () => {
  it('one target: the report itself, version 3', () => {
    const r = assemble('box', route, 'auto', allOk);
    const data = JSON.parse(reportJson([r], true)) as Record<string, unknown>;
    expect(Object.keys(data)).toEqual(['version', 'target', 'route', 'transport', 'checks', 'firstFailure']);
    expect(data).toMatchObject({ version: 3, target: 'box', route, transport: 'auto', firstFailure: null });
    expect((data.checks as unknown[])[1]).toEqual({
      host: 'bastion',
      check: 'reachable',
      status: 'ok',
      detail: 'reachable fine',
    });
  });

  it('every host: version 3 and the reports under targets', () => {
    const r = assemble('box', route, 'udp', allOk);
    const data = JSON.parse(reportJson([r, r], false)) as { version: number; targets: unknown[] };
    expect(data.version).toBe(3);
    expect(data.targets).toHaveLength(2);
  });
});
