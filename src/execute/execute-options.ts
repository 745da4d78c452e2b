// What `up` hands the executor: the runner, the record and how to keep it,
// how signals and progress reach it. Apart from executor.ts so the step
// handlers can take it without importing the executor.
import type { ListrTask } from 'listr2';
import type { ClientProgram } from '../plan/types.js';
import type { SessionRecord } from '../state/record.js';
import type { Runner } from './runner.js';

export interface ExecuteOptions {
  runner: Runner;
  record: SessionRecord;
  /** Persists the record; called after every process is created or stopped. */
  save: (record: SessionRecord) => void;
  /** Removes the record once teardown left nothing behind. */
  forget: (record: SessionRecord) => void;
  /** Set when a signal arrived; checked between steps. */
  interrupted: () => NodeJS.Signals | undefined;
  /** Where progress and warnings go. */
  log: (line: string) => void;
  /** Renders tasks; listr2 in the CLI, a plain loop in tests. */
  runTasks: (tasks: ListrTask[]) => Promise<void>;
  /** Awaited before each setup step (by kind); lets tests interrupt at a chosen step. */
  beforeStep?: (kind: string) => Promise<void>;
  /** `--no-connect`: hands address, port and key to whoever asked (stdout). The only place the key leaves. */
  handOver?: (session: { address: string; port: number; key: string; program: ClientProgram }) => void;
}
