// The pure half of `moshctl doctor`: which checks a route has and in what
// order, what a connect failure means for each hop's checks, what a check that
// never ran is told, and which failure comes first. No I/O here.
import type { MoshTransport } from '../config/types.js';
import { EnvError, ExitCode, type ConnectFault } from '../errors.js';
import {
  CHECK_LABELS,
  DOCTOR_VERSION,
  LOCAL,
  type CheckId,
  type CheckResult,
  type DoctorReport,
} from './types.js';
import { hostPort } from '../host-port.js';

export interface RouteHop {
  name: string;
  address: string;
  port: number;
  user: string;
}

/** Checks that cross the whole route rather than belong to one hop. */
export const ROUND_TRIPS: readonly CheckId[] = ['udp-round-trip', 'tcp-round-trip'];

/** What the target is asked to carry besides mosh: its checks are there only when it has them. */
export interface TargetAsks {
  forwards: boolean;
  agent: boolean;
}

/** Every check of a route, in the order they are reported: this machine's, each hop's own, then the round trips. */
export function checkOrder(
  route: readonly string[],
  asks: TargetAsks = { forwards: false, agent: false },
): { host: string; check: CheckId }[] {
  const target = route[route.length - 1];
  if (target === undefined) throw new Error('bug: a route without hosts');
  const out: { host: string; check: CheckId }[] = [{ host: LOCAL, check: 'mosh-client' }];
  const targetOwn: CheckId[] = [
    'mosh-server',
    'mosh-versions',
    'locale',
    ...(asks.forwards ? (['port-forwards'] as const) : []),
    ...(asks.agent ? (['agent-forwarding'] as const) : []),
  ];
  for (const host of route) {
    const own: CheckId[] = host === target ? targetOwn : ['forwarding', 'relay-runtime'];
    for (const check of ['reachable', 'host-key', 'auth', ...own] as CheckId[]) out.push({ host, check });
  }
  // The datagrams go to the first hop (its relay, or the target itself without bastions).
  out.push({ host: route[0] ?? target, check: 'udp-round-trip' }, { host: target, check: 'tcp-round-trip' });
  return out;
}

/** A connect failure as the ssh layers classified it (EnvError's where.host and where.fault). */
export interface ConnectFailure {
  host: string;
  fault: ConnectFault | undefined;
  message: string;
  hint: string;
}

/** The connect failure an error is, when the ssh layers raised it for a hop of `route`; else undefined (rethrow it). */
export function connectFailureOf(error: unknown, route: readonly string[]): ConnectFailure | undefined {
  if (!(error instanceof EnvError) || error.where.step !== 'connect') return undefined;
  const host = error.where.host;
  if (host === undefined || !route.includes(host)) return undefined;
  return { host, fault: error.where.fault, message: error.message, hint: error.hint };
}

/**
 * The connection checks of every hop after `runner.connect()`: all ok without
 * a failure; with one, ok up to it, then the check the fault names fails. A
 * refused forward is the previous hop's fault, though the error names the hop
 * that could not be opened. Checks after the failure are left out (see assemble).
 */
export function connectResults(
  route: readonly RouteHop[],
  failure: ConnectFailure | undefined,
  readyMs: Readonly<Record<string, number>> = {},
): CheckResult[] {
  const out: CheckResult[] = [];
  const failedAt = failure ? route.findIndex((h) => h.name === failure.host) : route.length;
  if (failedAt < 0) throw new Error(`bug: ${failure?.host ?? ''} is not on the route`);
  // Only a hop behind another can be refused a forward; for the first, it can only be unreachable.
  const fault = failure?.fault === 'forward' && failedAt === 0 ? 'reach' : failure?.fault;
  const fail = (host: string, check: CheckId): CheckResult => ({
    host,
    check,
    status: 'fail',
    detail: failure?.message ?? '',
    ...(failure?.hint ? { hint: failure.hint } : {}),
  });
  const last = route.length - 1;
  route.forEach((h, i) => {
    if (i > failedAt) return;
    const ms = readyMs[h.name];
    const reached: CheckResult = {
      host: h.name,
      check: 'reachable',
      status: 'ok',
      detail: `${hostPort(h.address, h.port)}${ms !== undefined ? `, logged in after ${ms} ms` : ''}`,
    };
    const key: CheckResult = { host: h.name, check: 'host-key', status: 'ok', detail: 'known' };
    const login: CheckResult = { host: h.name, check: 'auth', status: 'ok', detail: `as ${h.user}` };
    if (i < failedAt) {
      out.push(reached, key, login);
      const next = route[i + 1];
      if (i === last || !next) return;
      if (i + 1 < failedAt || fault === 'host-key' || fault === 'auth')
        out.push({
          host: h.name,
          check: 'forwarding',
          status: 'ok',
          detail: `opened ${next.name} through it`,
        });
      else if (fault === 'forward') out.push(fail(h.name, 'forwarding'));
      else
        out.push({
          host: h.name,
          check: 'forwarding',
          status: 'skip',
          detail: `not confirmed: ${next.name} could not be reached through it`,
        });
      return;
    }
    // The hop that failed.
    switch (fault) {
      case 'forward':
        return;
      case 'host-key':
        out.push({ ...reached, detail: `${hostPort(h.address, h.port)} answered` }, fail(h.name, 'host-key'));
        return;
      case 'auth':
        out.push(
          { ...reached, detail: `${hostPort(h.address, h.port)} answered` },
          key,
          fail(h.name, 'auth'),
        );
        return;
      default:
        out.push(fail(h.name, 'reachable'));
    }
  });
  return out;
}

/**
 * Every check of the route in report order: those that ran as they ended,
 * the rest skipped with why (the failure that kept them from running).
 */
export function assemble(
  target: string,
  route: readonly string[],
  transport: MoshTransport,
  ran: readonly CheckResult[],
  asks?: TargetAsks,
): DoctorReport {
  const order = checkOrder(route, asks);
  const found = new Map(ran.map((r) => [`${r.host}\0${r.check}`, r]));
  for (const key of found.keys())
    if (!order.some((o) => `${o.host}\0${o.check}` === key))
      throw new Error(`bug: doctor has no check ${key.replace('\0', ' ')}`);
  // Known before the walk: a check reported before the failure (a bastion's relay runtime) may have been skipped for it.
  const first = order
    .map((o) => found.get(`${o.host}\0${o.check}`))
    .find((r): r is CheckResult => r?.status === 'fail');
  const checks = order.map(({ host, check }): CheckResult => {
    const r = found.get(`${host}\0${check}`);
    if (r) return r;
    const why = first ? `not checked: ${CHECK_LABELS[first.check]} of ${first.host} failed` : 'not checked';
    return { host, check, status: 'skip', detail: why };
  });
  const settled = settleTransport(checks, transport, target);
  return {
    version: DOCTOR_VERSION,
    target,
    route: [...route],
    transport,
    checks: settled,
    firstFailure: settled.find((c) => c.status === 'fail') ?? null,
  };
}

/** The checks only the udp path needs: relays on the bastions and UDP end to end. */
const UDP_PATH: readonly CheckId[] = ['relay-runtime', 'udp-round-trip'];

/**
 * What a failure of the udp path means depends on the transport: with tcp it
 * is not used at all; with auto, tcp takes over when it fails, so it is not a
 * failure while tcp works; with udp, a working tcp is the way out, and the
 * hint says so.
 */
export function settleTransport(
  checks: readonly CheckResult[],
  transport: MoshTransport,
  target: string,
): CheckResult[] {
  const tcp = checks.find((c) => c.check === 'tcp-round-trip');
  const tcpWorks = tcp?.status === 'ok';
  return checks.map((c) => {
    if (!UDP_PATH.includes(c.check) || c.status !== 'fail') return c;
    if (transport === 'auto' && tcpWorks) {
      const { hint: _, ...rest } = c;
      return {
        ...rest,
        status: 'skip',
        detail: `${c.detail}; transport auto goes by tcp instead, which works`,
      };
    }
    if (transport === 'udp' && tcpWorks) {
      return {
        ...c,
        detail: `${c.detail}; tcp would work (checked)`,
        hint: `${c.hint ? `${c.hint}; or ` : ''}use --transport tcp or --transport auto (or set mosh.transport: tcp or auto for ${target}): the tcp round trip through the ssh chain worked`,
      };
    }
    return c;
  });
}

/** The exit code of a whole doctor run: the first failure is the world's (EnvError's code), else 0. */
export function doctorExitCode(reports: readonly DoctorReport[]): number {
  return reports.some((r) => r.firstFailure) ? ExitCode.environment : ExitCode.ok;
}
