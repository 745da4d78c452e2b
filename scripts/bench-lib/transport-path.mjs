// One transport's path for the latency benchmark, built by moshctl's own runner
// exactly as `moshctl up target` builds it, but ending at a UDP echo server on
// the target instead of mosh-server (whose datagrams cannot be forged):
//   node transport-path.mjs CONFIG udp|auto|tcp ECHO_PORT
// Run in the client namespace. Prints one JSON line, {address, port}, where a
// ping-pong from this namespace should send; keeps the path up until stdin
// ends, then stops what it started and exits.
import { resolveRoute } from '../../dist/config/hosts.js';
import { loadConfig } from '../../dist/config/load.js';
import { toSshHost } from '../../dist/config/types.js';
import { SshRunner } from '../../dist/execute/ssh-runner.js';
import { planUp } from '../../dist/plan/plan.js';

const [configFile, mode, echoText] = process.argv.slice(2);
const echoPort = Number(echoText);
const loaded = loadConfig([configFile], process.env);
const config = await resolveRoute(loaded, 'target', {});
const plan = planUp(config, 'target', {}, { transport: mode });
const route = plan.route.map((h) => toSshHost(config.hosts[h]));
const runner = new SshRunner(route);
const step = (kind) => plan.steps.find((s) => s.kind === kind);

let relay;
try {
  const { reachedAddress } = await runner.connect();
  const relayStep = step('relay');
  if (relayStep) {
    relay = await runner.startRelay(relayStep);
    relay = (await runner.wireRelay(relayStep, echoPort)) ?? relay;
  }
  let out;
  if (mode === 'udp') out = { address: reachedAddress, port: relay.port };
  else {
    const udp = mode === 'auto' ? { address: reachedAddress, port: relay.port } : undefined;
    // The echo listens on every address of the target: the forwarder sends to its loopback,
    // as it does to a mosh-server bound to 127.0.0.1 for tcp.
    const f = await runner.startForward(step('forward'), { address: '127.0.0.1', port: echoPort }, udp, (c) =>
      process.stderr.write(`switched to ${c.now}: ${c.why}\n`),
    );
    out = { address: '127.0.0.1', port: f.port, mode: f.mode };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.stdin.resume();
  await new Promise((r) => process.stdin.on('end', r));
} finally {
  if (relay) await runner.stop(relayStepHost(), relay.pid, 'relay', relay.started).catch(() => undefined);
  await runner.close();
}
process.exit(0);

function relayStepHost() {
  return step('relay')?.host ?? 'bastion';
}
