// Which handler runs a set-up step: the plan names the step's kind, and this
// table is the only place that maps a kind to code.
import type { SetupStep } from '../../plan/types.js';
import { agentStep, portForwardStep } from './forwards.js';
import { forwarderStep, relayStep, serverStep, wireStep } from './mosh.js';
import type { SetupState } from './state.js';

/** The steps the executor runs as tasks (connect steps are the runner's connect(); the client comes last). */
export type TaskStep = Extract<
  SetupStep,
  { kind: 'server' | 'relay' | 'wire' | 'forward' | 'port-forward' | 'agent' }
>;

type Handlers = {
  [K in TaskStep['kind']]: (step: Extract<TaskStep, { kind: K }>, s: SetupState) => Promise<string>;
};

const handlers: Handlers = {
  server: serverStep,
  relay: relayStep,
  wire: wireStep,
  forward: forwarderStep,
  'port-forward': portForwardStep,
  agent: agentStep,
};

export const titles: Record<TaskStep['kind'], string> = {
  server: 'start mosh-server',
  relay: 'start relay',
  wire: 'wire relay',
  forward: 'start forwarder',
  'port-forward': 'forward',
  agent: 'forward the agent',
};

export function isTaskStep(step: SetupStep): step is TaskStep {
  return step.kind in handlers;
}

export function runStep(step: TaskStep, s: SetupState): Promise<string> {
  const handler = handlers[step.kind] as (step: TaskStep, s: SetupState) => Promise<string>;
  return handler(step, s);
}
