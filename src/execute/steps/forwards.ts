// The handlers of what ssh gave the user besides a shell: port forwards and
// the forwarded agent. Unlike mosh's steps, a failure here does not end the
// session unless asked (ExitOnForwardFailure), as with ssh: it is warned
// about, and status shows it.
import type { ForwardStatus } from '../../forward/types.js';
import type { AgentStep, PortForwardStep } from '../../plan/types.js';
import type { SessionRecord } from '../../state/record.js';
import type { SetupState } from './state.js';

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** What a forward listens on, for the task's title. */
function listening(status: ForwardStatus, step: PortForwardStep): string {
  const where = step.spec.kind === 'remote' ? `on ${step.host}` : 'here';
  const port = status.port !== undefined ? ` (port ${status.port})` : '';
  return `${step.spec.text}: listening ${where}${port}`;
}

export async function portForwardStep(step: PortForwardStep, s: SetupState): Promise<string> {
  await s.check('port-forward');
  const record = s.o.record;
  const forwards = (record.forwards ??= []);
  const index =
    forwards.push({ text: step.spec.text, listening: false, open: 0, total: 0, broken: 0, refused: 0 }) - 1;
  s.o.save(record);
  const update = (status: ForwardStatus): void => {
    forwards[index] = status;
    s.saveSoon();
  };
  try {
    const status = await s.o.runner.startPortForward(step, update);
    forwards[index] = status;
    s.o.save(record);
    return listening(status, step);
  } catch (e) {
    if (step.required) throw e;
    const why = message(e);
    forwards[index] = { ...(forwards[index] as ForwardStatus), listening: false, lastError: why };
    s.o.save(record);
    s.setupNotes.push(`warning: ${step.spec.text} (${step.spec.source}) is not forwarded: ${why}`);
    return `${step.spec.text}: not forwarded (${why})`;
  }
}

export async function agentStep(step: AgentStep, s: SetupState): Promise<string> {
  await s.check('agent');
  const record = s.o.record;
  const agent: NonNullable<SessionRecord['agent']> = { host: step.host, socket: step.socket, up: false };
  record.agent = agent;
  s.o.save(record);
  try {
    await s.o.runner.startAgent(step, (state) => {
      agent.up = state.up;
      if (state.lastError !== undefined) Object.assign(agent, { lastError: state.lastError });
      s.saveSoon();
    });
    agent.up = true;
    s.o.save(record);
    return `agent forwarded to ${step.host} only: SSH_AUTH_SOCK=${step.socket}`;
  } catch (e) {
    // As ssh -A where the server refuses: the session goes on without the agent.
    const why = message(e);
    Object.assign(agent, { up: false, lastError: why });
    s.o.save(record);
    s.setupNotes.push(`warning: the agent is not forwarded to ${step.host}: ${why}`);
    return `agent not forwarded (${why})`;
  }
}
