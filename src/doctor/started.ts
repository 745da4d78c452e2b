// What doctor started on hosts, kept so that all of it is stopped at the end,
// whatever happened in between.
import type { RelayStarted } from '../execute/runner.js';
import type { LineChannel } from '../transport/types.js';
import type { DoctorRunner } from './types.js';

/**
 * What doctor's relays and forwarder are given as idle timeout: they are
 * stopped at the end, and this bounds them when moshctl cannot stop them
 * (killed with SIGKILL), instead of mosh.network_timeout (a day by default).
 */
export const IDLE_SECONDS = 30;

/** Every relay and channel doctor started, as each start succeeds; stopAll ends them all. */
export class Started {
  private readonly relays: { host: string; relay: RelayStarted }[] = [];
  private readonly channels: LineChannel[] = [];

  constructor(
    private readonly runner: DoctorRunner,
    private readonly log: (line: string) => void,
  ) {}

  relay(host: string, relay: RelayStarted): void {
    this.relays.push({ host, relay });
  }

  channel(c: LineChannel): void {
    this.channels.push(c);
  }

  /** Relays by QUIT (or pid), the echo by ending its stdin; never throws. */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.relays.splice(0).map(async ({ host, relay }) => {
        try {
          const outcome = await this.runner.stop(host, relay.pid, 'relay', relay.started);
          if (outcome === 'unknown')
            this.log(
              `could not tell whether the relay on ${host} (pid ${relay.pid}) still runs; it exits by itself within ${IDLE_SECONDS} s`,
            );
        } catch (e) {
          this.log(
            `could not stop the relay on ${host} (pid ${relay.pid}): ${e instanceof Error ? e.message : String(e)}; it exits by itself within ${IDLE_SECONDS} s`,
          );
        }
      }),
    );
    for (const c of this.channels.splice(0)) {
      c.end();
      await Promise.race([c.closed, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    }
  }
}
