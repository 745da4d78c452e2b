// Every command's options and help in one table, so --help, parsing and the
// "did you mean" for commands cannot drift apart.

export interface OptionSpec {
  type: 'boolean' | 'string';
  short?: string;
  multiple?: boolean;
  help: string;
  arg?: string;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  description: string;
  options: Record<string, OptionSpec>;
  /** Positional arguments: at least `min`, at most `max`. */
  min: number;
  max: number;
  /** Whether `-- COMMAND...` is accepted. */
  rest?: boolean;
}

export const globalOptions: Record<string, OptionSpec> = {
  file: {
    type: 'string',
    short: 'f',
    multiple: true,
    arg: 'FILE',
    help: 'config file; repeat to merge later files over earlier ones (default: $MOSHCTL_FILE, else moshproxy.yaml found upwards, plus moshproxy.override.yaml beside it)',
  },
  debug: {
    type: 'boolean',
    help: 'print the stack of an error, each remote command with its host, duration and exit code, and step timings, on stderr (also MOSHCTL_DEBUG=1)',
  },
  help: { type: 'boolean', short: 'h', help: 'show help' },
  version: { type: 'boolean', short: 'V', help: 'show the version' },
};

const json: OptionSpec = { type: 'boolean', help: 'print JSON instead of text' };
const transport: OptionSpec = {
  type: 'string',
  help: "udp (relays on every hop), tcp (mosh's datagrams inside the ssh chain, nothing on the bastions, for networks that drop UDP) or auto (udp, switching to tcp when UDP gets no reply); overrides mosh.transport",
};

const bindServer: OptionSpec = {
  type: 'string',
  arg: 'ssh|any|ADDRESS',
  help: "where mosh-server listens, as mosh's --bind-server: ssh (the address the ssh connection came in on, where the last relay or mosh-client sends), any (every IPv4 address) or an IP address of the target; overrides mosh.bind_server",
};

/** mosh's own options, as mosh takes them: they override the target's mosh settings. */
const moshOptions: Record<string, OptionSpec> = {
  server: {
    type: 'string',
    arg: 'PATH',
    help: "mosh-server on the target, as mosh's --server: its path there (~/ is the remote home), e.g. /opt/homebrew/bin/mosh-server; overrides mosh.server",
  },
  client: {
    type: 'string',
    arg: 'PATH',
    help: 'mosh-client on this machine: a path, or a name on PATH; overrides mosh.client',
  },
  predict: {
    type: 'string',
    arg: 'MODE',
    help: "mosh-client's local echo, as mosh --predict: adaptive, always, never or experimental; overrides mosh.predict",
  },
  'predict-overwrite': {
    type: 'boolean',
    help: 'predicted characters overwrite instead of being inserted, as mosh --predict-overwrite (mosh.predict_overwrite)',
  },
  'no-init': {
    type: 'boolean',
    help: "mosh-client sends no terminal initialization string (no alternate screen: the session's output stays in the scrollback), as mosh --no-init (mosh.no_init)",
  },
};

/** ssh's forwarding options, as ssh takes them: they add to the target's forward: (or ssh_config's). */
const forwardOptions: Record<string, OptionSpec> = {
  'local-forward': {
    type: 'string',
    short: 'L',
    multiple: true,
    arg: 'SPEC',
    help: "as ssh -L: [bind_address:]port:host:hostport, [bind_address:]port:remote_socket, local_socket:host:hostport or local_socket:remote_socket; listens here, connects from the target, for the whole session (across roaming); repeatable; adds to the target's forward.local",
  },
  'remote-forward': {
    type: 'string',
    short: 'R',
    multiple: true,
    arg: 'SPEC',
    help: "as ssh -R: [bind_address:]port:host:hostport, [bind_address:]port:local_socket, remote_socket:host:hostport or remote_socket:local_socket; the target listens (port 0: it chooses), connections come back here; repeatable; adds to the target's forward.remote",
  },
  'dynamic-forward': {
    type: 'string',
    short: 'D',
    multiple: true,
    arg: '[BIND:]PORT',
    help: "as ssh -D: a SOCKS4/5 proxy here, connecting from the target; repeatable; adds to the target's forward.dynamic",
  },
  'forward-agent': {
    type: 'boolean',
    short: 'A',
    help: "as ssh -A: forward this machine's ssh-agent to the target only (never a bastion), kept across reconnects at a stable SSH_AUTH_SOCK; sets forward_agent",
  },
};

const FORWARD_USAGE = '[-L SPEC]... [-R SPEC]... [-D [BIND:]PORT]... [-A]';

export const commands: CommandSpec[] = [
  {
    name: 'validate',
    usage: 'moshctl validate [--json]',
    summary: 'check the config file',
    description:
      'Checks the config and prints "ok", or every problem with file, line and column (exit 2); without a moshproxy.yaml, says there is none and none is needed (exit 0). --json gives the same as data on stdout, problems included.',
    options: { json },
    min: 0,
    max: 0,
  },
  {
    name: 'config',
    usage: 'moshctl config [--json] [--resolved [NAME]]',
    summary: 'print the merged, interpolated config',
    description:
      "Prints the config as moshctl reads it: files merged, variables interpolated; without a moshproxy.yaml, says so (none is needed). With --resolved, every host of moshproxy.yaml, or NAME's route (a host of either file), as up sees it.",
    options: {
      json,
      resolved: {
        type: 'boolean',
        help: "every host (or NAME's route) as up sees it: moshproxy.yaml, then ssh_config (ssh -G), then OpenSSH's defaults, each value with its source; the ssh client with why",
      },
    },
    min: 0,
    max: 1,
  },
  {
    name: 'plan',
    usage: `moshctl plan NAME [--json] [--no-connect] ${FORWARD_USAGE} [--transport udp|tcp|auto] [--bind-server ssh|any|ADDRESS] [--server PATH] [--client PATH] [--predict MODE] [--predict-overwrite] [--no-init] [-- COMMAND...]`,
    summary: 'print the steps `up NAME` would take',
    description:
      'Prints, in order, every step `up NAME` would take (ssh hops, mosh-server, one relay per hop, port forwards, the client) with its host and why, then the teardown, and notes (forwards left out, forwards reachable from the network). Touches no host.',
    options: {
      json,
      'no-connect': { type: 'boolean', help: 'plan `up --no-connect`' },
      ...forwardOptions,
      transport,
      'bind-server': bindServer,
      ...moshOptions,
    },
    min: 1,
    max: 1,
    rest: true,
  },
  {
    name: 'up',
    usage: `moshctl up NAME [--no-connect [--json]] ${FORWARD_USAGE} [--transport udp|tcp|auto] [--bind-server ssh|any|ADDRESS] [--server PATH] [--client PATH] [--predict MODE] [--predict-overwrite] [--no-init] [-- COMMAND...]`,
    summary: 'open a mosh session to NAME through its jump hosts',
    description:
      "Connects through the via chain (NAME may be a host of moshproxy.yaml or one ssh knows from ssh_config), starts mosh-server on NAME and a UDP relay on every hop, then hands the terminal to mosh-client. Port forwards (-L, -R, -D, the target's forward:) and the agent (-A) ride the ssh chain, which moshctl keeps for the whole session and reopens after a roam; they end with the session, so --no-connect takes none. When the client exits everything is torn down and moshctl exits with the client's exit code. COMMAND runs instead of the login shell. Needs a terminal on stdin unless --no-connect.",
    options: {
      'no-connect': {
        type: 'boolean',
        help: 'start server and relays, record the session and print host, port, key and a mosh-client line for a client elsewhere (the key goes to stdout); "moshctl down NAME" ends it',
      },
      json: { type: 'boolean', help: 'with --no-connect: print the hand-over as JSON' },
      ...forwardOptions,
      transport,
      'bind-server': bindServer,
      ...moshOptions,
    },
    min: 1,
    max: 1,
    rest: true,
  },
  {
    name: 'down',
    usage: 'moshctl down [NAME] [--all] [--force] [--id ID]',
    summary: 'stop sessions and their relays',
    description:
      "Stops what `up` started, from its state record: NAME's sessions, every session of this config without NAME, every session of this user with --all, one session with --id. A session another machine started (a state folder on a shared home) is left alone unless --force. Safe to run twice.",
    options: {
      all: { type: 'boolean', help: 'every session of this user, whatever its config' },
      id: {
        type: 'string',
        arg: 'ID',
        help: 'only the session with this id (as status shows it), whatever its config',
      },
      force: {
        type: 'boolean',
        help: "also sessions another machine started: stop their server and relays from here (that machine's moshctl up is not signalled)",
      },
    },
    min: 0,
    max: 1,
  },
  {
    name: 'status',
    usage: 'moshctl status [--json]',
    summary: 'list sessions and whether their processes are alive',
    description:
      'Lists sessions (name, hops, ports, age) and checks on the hosts whether the server and each relay run; while its up runs, a session also shows the kept ssh chain, each port forward (listening, connections, last error) and whether the agent is forwarded.',
    options: { json },
    min: 0,
    max: 0,
  },
  {
    name: 'completion',
    usage: 'moshctl completion bash|zsh|fish',
    summary: 'print a shell completion script',
    description:
      'Prints a script that completes commands, options, --transport values and host names (from moshproxy.yaml and ~/.ssh/config, read at each TAB) in bash, zsh or fish. bash: eval "$(moshctl completion bash)" in ~/.bashrc; zsh: source <(moshctl completion zsh) in ~/.zshrc, after compinit; fish: moshctl completion fish > ~/.config/fish/completions/moshctl.fish.',
    options: {},
    min: 1,
    max: 1,
  },
  {
    name: 'doctor',
    usage: 'moshctl doctor [NAME] [--json]',
    summary: "check NAME's route hop by hop and say what to fix",
    description:
      'Checks this machine\'s mosh-client (mosh.client: where, which version), then each hop of the route to NAME in order: reachable within connect_timeout, host key known, login, TCP forwarding to the next hop, the relay runtime a bastion will use; on NAME, the mosh-server up would run (mosh.server) with its path and version, or where one is when it is missing, whether its version goes with mosh-client\'s (a warning when major.minor differ: before 1.4 no true colour and no OSC 52 clipboard), a UTF-8 mosh.locale, and whether NAME lets its port forwards and agent through (AllowTcpForwarding, PermitOpen, PermitListen, AllowAgentForwarding); then a UDP round trip through the relays to a short-lived echo on NAME (in place of mosh-server, on a port of mosh.server_ports) and, when that fails, the same through the tcp transport. Prints one line per check, each warning with its fix, and the first failure with its fix (exit 1), or "all checks passed" (exit 0; warnings do not fail). Everything it starts is stopped. Without NAME, every host of moshproxy.yaml, one after another.',
    options: { json },
    min: 0,
    max: 1,
  },
];
