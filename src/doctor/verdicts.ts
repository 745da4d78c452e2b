// What each of doctor's host checks found, as check results with a detail and
// a fix. Pure: run.ts gathers the facts, these say what they mean.
import { formatPortRange, type HostConfig } from '../config/types.js';
import type { EnvError } from '../errors.js';
import type { RelayStarted } from '../execute/runner.js';
import { clientMissingHint } from '../execute/client.js';
import { moshServerFailure, type ServerFound, type ServerLookup } from '../remote/mosh-server.js';
import type { ClientFacts } from './local.js';
import { isUtf8, type TargetFacts } from './remote.js';
import { LOCAL, type CheckResult } from './types.js';
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
  const lookup = (found: ServerFound[]): ServerLookup => ({ program: target.mosh.server, found });
  if (s.state === 'ok')
    out.push({
      host,
      check: 'mosh-server',
      status: 'ok',
      detail: s.path ? `${s.path}: ${s.version}` : s.version,
    });
  else if (s.state === 'missing' || s.code === 126) {
    const f = moshServerFailure(
      s.state === 'missing' ? 127 : 126,
      s.state === 'missing' ? '' : s.said,
      lookup(s.found),
    );
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

/** This machine's mosh-client, as `up` would run it (mosh.client). */
export function clientResult(c: ClientFacts): CheckResult {
  const check = 'mosh-client';
  if (c.state === 'ok') return { host: LOCAL, check, status: 'ok', detail: `${c.path}: ${c.version}` };
  if (c.state === 'missing')
    return {
      host: LOCAL,
      check,
      status: 'fail',
      detail:
        c.path === 'mosh-client'
          ? 'mosh-client is not installed on this machine'
          : `mosh-client ${c.path} (mosh.client) is not there or cannot run`,
      hint: clientMissingHint(c.path),
    };
  return {
    host: LOCAL,
    check,
    status: 'fail',
    detail: `${c.path} is there, but \`${c.path} --version\` failed: ${c.said}`,
    hint: clientMissingHint(c.path),
  };
}

/** `mosh 1.4.0` in a --version line, as [major, minor, patch]. */
export function moshVersion(line: string): [number, number, number] | undefined {
  const m = /\bmosh (\d+)\.(\d+)(?:\.(\d+))?/.exec(line);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/**
 * Whether mosh-client here and mosh-server there go together. mosh's protocol
 * has not changed since 1.0, so any pair works, but what a session can do is
 * what the older side can: before 1.4 there is no true colour (24-bit) and no
 * OSC 52 clipboard. Versions that differ in major.minor are a warning, never
 * a failure.
 */
export function versionsResult(
  target: string,
  server: TargetFacts['server'],
  client: ClientFacts | undefined,
): CheckResult {
  const check = 'mosh-versions';
  const sv = server?.state === 'ok' ? moshVersion(server.version) : undefined;
  const cv = client?.state === 'ok' ? moshVersion(client.version) : undefined;
  if (!sv || !cv)
    return {
      host: target,
      check,
      status: 'skip',
      detail: `not compared: ${!cv ? "mosh-client's" : "mosh-server's"} version is not known`,
    };
  const text = (v: [number, number, number]): string => v.join('.');
  const both = `mosh-client ${text(cv)} here, mosh-server ${text(sv)} on ${target}`;
  if (sv[0] === cv[0] && sv[1] === cv[1]) return { host: target, check, status: 'ok', detail: both };
  const older = sv[0] * 1000 + sv[1] < cv[0] * 1000 + cv[1] ? 'server' : 'client';
  const old = older === 'server' ? sv : cv;
  const before14 = old[0] < 1 || (old[0] === 1 && old[1] < 4);
  const fix =
    older === 'server'
      ? `update mosh on ${target} to ${cv[0]}.${cv[1]} or later (its package manager; brew upgrade mosh on macOS)`
      : `update mosh on this machine to ${sv[0]}.${sv[1]} or later (your package manager; brew upgrade mosh on macOS)`;
  return {
    host: target,
    check,
    status: 'warn',
    detail: before14
      ? `${both}: the session has what ${old.join('.')} has, so no true colour (24-bit) and no OSC 52 clipboard, which came with 1.4`
      : `${both}: they differ in major.minor; the session has only what the older one has`,
    hint: fix,
  };
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
