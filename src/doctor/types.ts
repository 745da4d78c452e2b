// What `moshctl doctor` reports: one result per check, in route order, and the
// first failure with its fix. Plain data, so text and JSON come from the same place.
import type { MoshTransport } from '../config/types.js';
import type { SshRunner } from '../execute/ssh-runner.js';

/**
 * Format version of `doctor --json`; bump it when a field changes meaning.
 * 2: status `warn`; checks `mosh-client` (host `local`) and `mosh-versions`.
 * 3: checks `port-forwards` and `agent-forwarding` of a target that has them.
 */
export const DOCTOR_VERSION = 3;

/**
 * This machine's mosh-client first; then each hop's checks, in the order a
 * failure stops the next: reaching it, its host key, logging in, then
 * (bastions) forwarding to the next hop and the relay runtime, or (the
 * target) mosh-server, whether its version goes with mosh-client's, a
 * UTF-8 locale, and whether it lets the session's port forwards and agent through. The two round trips cross the whole route and come last.
 */
export const CHECKS = [
  'mosh-client',
  'reachable',
  'host-key',
  'auth',
  'forwarding',
  'relay-runtime',
  'mosh-server',
  'mosh-versions',
  'locale',
  'port-forwards',
  'agent-forwarding',
  'udp-round-trip',
  'tcp-round-trip',
] as const;
export type CheckId = (typeof CHECKS)[number];

/** What a check is called in the text output. */
export const CHECK_LABELS: Record<CheckId, string> = {
  'mosh-client': 'mosh-client',
  reachable: 'reachable',
  'host-key': 'host key',
  auth: 'login',
  forwarding: 'forwarding',
  'relay-runtime': 'relay runtime',
  'mosh-server': 'mosh-server',
  'mosh-versions': 'mosh versions',
  locale: 'locale',
  'port-forwards': 'port forwards',
  'agent-forwarding': 'agent',
  'udp-round-trip': 'udp round trip',
  'tcp-round-trip': 'tcp round trip',
};

/** warn: works, but not as well as it could (mosh versions that differ); never the first failure. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** The host of the checks about this machine (mosh-client). */
export const LOCAL = 'local';

export interface CheckResult {
  host: string;
  check: CheckId;
  status: CheckStatus;
  detail: string;
  /** How to fix it; with a failure. */
  hint?: string;
}

export interface DoctorReport {
  version: typeof DOCTOR_VERSION;
  target: string;
  /** Hops, client side first, then the target. */
  route: string[];
  /** mosh.transport of the target; what `up` would use. */
  transport: MoshTransport;
  checks: CheckResult[];
  /** The first check that failed, in route order; null when none did. */
  firstFailure: CheckResult | null;
}

/** What doctor needs of a runner; SshRunner has it all, a recording fake stands in for it in tests. */
export type DoctorRunner = Pick<
  SshRunner,
  | 'connect'
  | 'ask'
  | 'openChannel'
  | 'startRelay'
  | 'wireRelay'
  | 'startForward'
  | 'stop'
  | 'probeForward'
  | 'probeAgent'
>;
