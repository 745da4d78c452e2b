// moshctl owns SIGINT, SIGTERM and SIGHUP while it has things running: listr2's
// own handler would exit at once without cleanup (facts.md), and a terminal
// that goes away must still lead to teardown.
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export class SignalTrap {
  private received: NodeJS.Signals | undefined;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();

  constructor(onSignal: (signal: NodeJS.Signals) => void) {
    for (const sig of SIGNALS) {
      const handler = (): void => {
        this.received ??= sig;
        onSignal(sig);
      };
      this.handlers.set(sig, handler);
      process.on(sig, handler);
    }
  }

  get signal(): NodeJS.Signals | undefined {
    return this.received;
  }

  release(): void {
    for (const [sig, handler] of this.handlers) process.off(sig, handler);
    this.handlers.clear();
  }
}
