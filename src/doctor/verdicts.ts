// What each of doctor's host checks found, as check results with a detail and
// a fix. Pure: run.ts gathers the facts, these say what they mean.
import { formatPortRange, type HostConfig } from '../config/types.js';
import type { EnvError } from '../errors.js';
import type { RelayStarted } from '../execute/runner.js';
import { moshServerFailure } from '../remote/mosh-server.js';
import { isUtf8, type TargetFacts } from './remote.js';
import type { CheckResult } from './types.js';
import type { ProbeResult } from './udp-probe.js';
import { hostPort } from '../host-port.js';

type Target = Pick<HostConfig, 'name' | 'mosh'>;

export function failed(host: string, check: CheckResult['check'], e: EnvError): CheckResult {
  return { host, check, status: 'fail', detail: e.message, hint: e.hint };
}

/** mosh-server and the locale, from what targetCheckCommand printed. */
export function targetResults(
  target: Target,
  facts: TargetFacts,
  exec: { code: number | null; stderr: string },
): CheckResult[] {
  const host = target.name;
  const locale = target.mosh.locale;
  const s = facts.server;
  if (s === undefined) {
    // Not even the marker: the login shell ran something else (ForceCommand, a nologin shell).
    const said = exec.stderr.trim().split('\n').pop();
    return [
      {
        host,
        check: 'mosh-server',
        status: 'fail',
        detail: `a command run there printed nothing of its own (exit code ${exec.code ?? 'none'}${said ? `: ${said}` : ''})`,
        hint: `mosh-server runs on ${host} in an ssh session: allow this user to run commands there (no ForceCommand or nologin shell)`,
      },
    ];
  }
  const out: CheckResult[] = [];
  if (s.state === 'ok') out.push({ host, check: 'mosh-server', status: 'ok', detail: s.version });
  else if (s.state === 'missing') {
    const f = moshServerFailure(127, '');
    out.push({ host, check: 'mosh-server', status: 'fail', detail: f.message, hint: f.hint });
  } else
    out.push({
      host,
      check: 'mosh-server',
      status: 'fail',
      detail: `mosh-server is there, but \`mosh-server --version\` failed: ${s.said || 'no output'}`,
      hint: `reinstall mosh on ${host} (Debian/Ubuntu: apt install --reinstall mosh)`,
    });
  const charmap = facts.charmap;
  if (charmap === undefined || charmap === 'unknown')
    out.push({
      host,
      check: 'locale',
      status: 'skip',
      detail: `${locale}: not checked (no \`locale\` program there to ask)`,
    });
  else if (isUtf8(charmap))
    out.push({ host, check: 'locale', status: 'ok', detail: `${locale} (${charmap})` });
  else
    out.push({
      host,
      check: 'locale',
      status: 'fail',
      detail: `${locale} is not a UTF-8 locale there (its character set: ${charmap || 'none'}), and mosh-server needs one`,
      hint: moshServerFailure(1, 'Unknown locale').hint,
    });
  return out;
}

export function relayOk(host: string, r: RelayStarted): CheckResult {
  // The warning's first clause says what kind of relay it is; the README has the rest.
  const weaker = r.warning ? `; ${r.warning.split(':')[0] ?? ''}` : '';
  return {
    host,
    check: 'relay-runtime',
    status: 'ok',
    detail: `${r.runtime}, on UDP port ${r.port}${weaker}`,
  };
}

/** The UDP round trip through the relays (or straight to the target) to the echo. */
export function udpResult(
  route: readonly Pick<HostConfig, 'name' | 'relay' | 'mosh'>[],
  sentTo: { address: string; port: number },
  probe: ProbeResult,
  waitMs: number,
): CheckResult {
  const first = route[0];
  const target = route[route.length - 1];
  if (!first || !target) throw new Error('bug: a route without hosts');
  const through = route.map((h) => h.name).join(' → ');
  if (probe.echoed > 0)
    return {
      host: first.name,
      check: 'udp-round-trip',
      status: 'ok',
      detail: `${probe.echoed}/${probe.sent} echoes from ${through} in ${Math.round(probe.rttMs ?? 0)} ms`,
    };
  const servers = `${target.name}'s mosh.server_ports ${formatPortRange(target.mosh.server_ports)}`;
  return {
    host: first.name,
    check: 'udp-round-trip',
    status: 'fail',
    detail: `no echo within ${waitMs / 1000} s of ${probe.sent} datagrams to ${first.name} (${hostPort(sentTo.address, sentTo.port)})`,
    hint:
      route.length > 1
        ? `UDP is dropped between this machine and ${first.name} (its relay.ports ${formatPortRange(first.relay.ports)}) or between the hops (the last one to ${servers}); let it through there`
        : `UDP is dropped between this machine and ${servers}; let it through there`,
  };
}

/** The same round trip through moshctl's local port, the ssh chain and a forwarder on the target. */
export function tcpResult(
  target: string,
  forwarder: string | undefined,
  probe: ProbeResult,
  waitMs: number,
): CheckResult {
  if (probe.echoed > 0)
    return {
      host: target,
      check: 'tcp-round-trip',
      status: 'ok',
      detail: `${probe.echoed}/${probe.sent} echoes through the ssh chain and a ${forwarder ?? 'datagram'} forwarder on ${target} in ${Math.round(probe.rttMs ?? 0)} ms`,
    };
  return {
    host: target,
    check: 'tcp-round-trip',
    status: 'fail',
    detail: `no echo within ${waitMs / 1000} s through the ssh chain and the forwarder on ${target}`,
    hint: `run moshctl doctor with --debug to see the forwarder's command and how long each step took`,
  };
}
