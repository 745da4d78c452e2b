// One SshHost for tests, with neutral values: each test overrides only what it
// is about, and a new SshHost field is added here once.
import type { SshHost } from '../../src/config/types.js';

export function sshHost(over: Partial<SshHost> = {}): SshHost {
  return {
    name: 'bastion',
    ssh_name: 'bastion',
    address: '192.0.2.1',
    port: 22,
    user: 'root',
    identity_files: [],
    certificate_files: [],
    known_hosts: [],
    global_known_hosts: [],
    host_key_alias: undefined,
    host_key_policy: 'strict',
    identity_agent: 'none',
    connect_timeout: 10,
    server_alive_interval: 15,
    proxy_command: undefined,
    ssh_client: 'ssh2',
    hash_known_hosts: false,
    ...over,
  };
}
