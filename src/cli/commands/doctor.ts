// `moshctl doctor [NAME] [--json]`: checks each hop of NAME's route in order
// (src/doctor) and names the first that fails and how to fix it; without NAME,
// every host of moshproxy.yaml, one after another. Progress on stderr, the
// report on stdout; nothing it started is left running, also after Ctrl-C.
import { constants } from 'node:os';
import { firstHopResolves, resolveRoute } from '../../config/hosts.js';
import type { HostConfig } from '../../config/types.js';
import { Interrupted, UserError } from '../../errors.js';
import { SignalTrap } from '../../execute/signals.js';
import { SshRunner, sshConfigOption } from '../../execute/ssh-runner.js';
import { doctorExitCode } from '../../doctor/checks.js';
import { formatReport, reportJson } from '../../doctor/format.js';
import { localClientFacts } from '../../doctor/local.js';
import { diagnose } from '../../doctor/run.js';
import type { DoctorReport } from '../../doctor/types.js';
import { loadSsh2 } from '../../ssh/ssh2-module.js';
import { debugChainOption } from '../../transport/debug-chain.js';
import type { CommandContext } from '../context.js';
import { terminalPrompter } from '../prompt.js';
import { report } from '../report.js';
import { hostsContext, load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  loadSsh2().catch(() => undefined);
  const loaded = load(ctx);
  const named = ctx.positionals[0];
  const names = named !== undefined ? [named] : [...loaded.declared.names];
  if (names.length === 0)
    throw UserError.one(
      loaded.files.length > 0
        ? `no hosts to check in ${loaded.files.join(', ')}`
        : 'no hosts to check: there is no moshproxy.yaml to list them',
      'name the host to check, any that ssh reaches: moshctl doctor NAME',
    );
  const json = ctx.values.json === true;
  const log = (line: string): void => ctx.io.stderr(`moshctl: doctor: ${line}\n`);
  const abort = new AbortController();
  let signals = 0;
  const trap = new SignalTrap((sig) => {
    // A second Ctrl-C does not wait for the stops: relays, echo and forwarder end by themselves within seconds.
    if (++signals > 1) {
      log(`stopped waiting (${sig} again); what doctor started exits by itself within 30 s`);
      process.exit(128 + constants.signals[sig]);
    }
    abort.abort(new Interrupted(sig));
  });
  const reports: DoctorReport[] = [];
  try {
    for (const name of names) {
      const config = await resolveRoute(loaded, name, hostsContext(ctx));
      const host = config.hosts[name];
      const route = [...(host?.chain ?? []), name]
        .map((h) => config.hosts[h])
        .filter((h): h is HostConfig => h !== undefined);
      const runner = new SshRunner(route, {
        signal: abort.signal,
        prompter: terminalPrompter(),
        // Asked only of the target, and only when it is to get the agent, as `up` does.
        ...(host?.forward_agent ? { agentFor: name } : {}),
        ...sshConfigOption(ctx.io.env),
        ...debugChainOption(ctx.io.env, ctx.io.stderr),
      });
      const started = performance.now();
      let r: DoctorReport;
      try {
        const observed = { firstHopResolves: await firstHopResolves(config, name) };
        r = await diagnose(config, name, runner, {
          log,
          signal: abort.signal,
          observed,
          localClient: (program) => localClientFacts(program, ctx.io.env),
        });
      } finally {
        await runner.close();
      }
      log(`${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      reports.push(r);
      if (!json) ctx.io.stdout(`${reports.length > 1 ? '\n' : ''}${formatReport(r)}`);
    }
  } catch (e) {
    // Whatever a step was doing when the signal came, the run was interrupted.
    if (trap.signal) {
      report(new Interrupted(trap.signal), ctx.io, ctx.debug);
      return 128 + constants.signals[trap.signal];
    }
    throw e;
  } finally {
    trap.release();
  }
  if (json) ctx.io.stdout(reportJson(reports, named !== undefined));
  return doctorExitCode(reports);
}
