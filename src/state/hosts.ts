import type { HostConfig } from '../config/types.js';
import type { RecordedHop, SessionRecord } from './record.js';

/** The hosts of a recorded session as the ssh layer takes them; relay and mosh settings play no part in teardown. */
export function routeOf(record: SessionRecord): HostConfig[] {
  return record.route.map((h: RecordedHop) => ({
    ...h,
    chain: [],
    relay: { ports: { from: 1, to: 1 }, runtime: 'auto' },
    mosh: {
      server_ports: { from: 1, to: 1 },
      network_timeout: record.networkTimeout,
      signal_timeout: 1,
      locale: 'C.UTF-8',
    },
  }));
}
