// Whether the target lets the session's port forwards and agent through,
// asked the way `up` will ask: a connection opened from the target to each
// -L destination (and to its own sshd for -D), each -R listener requested, a
// channel with the agent. A policy refusal (AllowTcpForwarding, PermitOpen,
// PermitListen, AllowAgentForwarding) fails the check with its fix before a
// session does; a destination that is only not listening yet is a warning.
import type { HostConfig } from '../config/types.js';
import { EnvError } from '../errors.js';
import type { ForwardSpec } from '../forward/types.js';
import type { CheckResult, DoctorRunner } from './types.js';

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** One spec's outcome: nothing wrong, a policy refusal, or works but not yet usable. */
type Probe =
  { spec: ForwardSpec; ok: true } | { spec: ForwardSpec; ok: false; error: EnvError; policy: boolean };

const POLICY = /administratively prohibited|refused to listen|AllowTcpForwarding|PermitOpen|PermitListen/;

export async function forwardResults(runner: DoctorRunner, target: HostConfig): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const host = target.name;
  if (target.forwards.length > 0) {
    const probes: Probe[] = [];
    for (const spec of target.forwards) {
      try {
        await runner.probeForward(host, spec);
        probes.push({ spec, ok: true });
      } catch (e) {
        if (!(e instanceof EnvError)) throw e;
        probes.push({ spec, ok: false, error: e, policy: POLICY.test(e.message) });
      }
    }
    const refused = probes.find((p) => !p.ok && p.policy);
    const quiet = probes.filter((p): p is Extract<Probe, { ok: false }> => !p.ok && !p.policy);
    const all = target.forwards.map((f) => f.text).join(', ');
    if (refused && !refused.ok) {
      out.push({
        host,
        check: 'port-forwards',
        status: 'fail',
        detail: `${refused.spec.text} (${refused.spec.source}): ${refused.error.message}`,
        hint: refused.error.hint,
      });
    } else if (quiet[0]) {
      out.push({
        host,
        check: 'port-forwards',
        status: 'warn',
        detail: `allowed, but ${quiet.map((q) => `${q.spec.text}: ${q.error.message}`).join('; ')}`,
        hint: quiet[0].error.hint,
      });
    } else out.push({ host, check: 'port-forwards', status: 'ok', detail: `${all}: allowed` });
  }
  if (target.forward_agent) {
    try {
      const got = await runner.probeAgent(host);
      out.push(
        got
          ? {
              host,
              check: 'agent-forwarding',
              status: 'ok',
              detail: `${host} gets the agent; no bastion does`,
            }
          : {
              host,
              check: 'agent-forwarding',
              status: 'fail',
              detail: `${host} did not accept the agent: no SSH_AUTH_SOCK in a channel that asked for it`,
              hint: `allow it on ${host}: AllowAgentForwarding yes in its sshd_config, and no no-agent-forwarding/restrict option on the key in authorized_keys`,
            },
      );
    } catch (e) {
      if (!(e instanceof EnvError)) throw e;
      out.push({
        host,
        check: 'agent-forwarding',
        status: 'fail',
        detail: message(e),
        hint: e.hint,
      });
    }
  }
  return out;
}
