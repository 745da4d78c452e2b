#!/usr/bin/env node
// A lab by hand: `node dist/lab/cli.js up` builds one and leaves it running
// (for poking at moshctl from a shell), `down <runid>` removes it, `status`
// lists labs, `cleanup` removes labs whose owner died (`--all`: every lab).

import { Lab, type HostName } from './index.js';
import { findLeftovers } from './leftovers.js';
import { isAlive } from './proc.js';
import { DEFAULT_PREFIX, cleanupStale, readRecords, teardown } from './registry.js';

const USAGE = `usage: node dist/lab/cli.js <command>
  up [--bastions 1|2] [--broker HOST[,HOST]] [--ipv6 behind-bastion|direct]
                        build a lab and leave it up; prints its run id and config
                        (--broker: also reach those hosts through an access broker;
                        --ipv6: an IPv6-only target, behind the bastion or reached directly)
  down <runid>          remove that lab
  status                list labs and anything left behind
  cleanup [--all]       remove labs whose owner died (--all: every lab, also ones left up)`;

async function up(args: string[]): Promise<number> {
  const i = args.indexOf('--bastions');
  const n = i >= 0 ? args[i + 1] : '1';
  if (n !== '1' && n !== '2') {
    console.error(USAGE);
    return 2;
  }
  const v = args.indexOf('--ipv6');
  const ipv6 = v >= 0 ? args[v + 1] : undefined;
  if (ipv6 !== undefined && ipv6 !== 'behind-bastion' && ipv6 !== 'direct') {
    console.error(USAGE);
    return 2;
  }
  const b = args.indexOf('--broker');
  const broker = b >= 0 ? ((args[b + 1] ?? '').split(',') as HostName[]) : [];
  const started = Date.now();
  const lab = await Lab.create({
    bastions: n === '2' ? 2 : 1,
    persistent: true,
    broker,
    ...(ipv6 ? { ipv6 } : {}),
  });
  const client = lab.hosts.client.ns;
  const through = broker.length
    ? lab.brokerSshConfig({ hosts: broker.map((h) => ({ alias: `${h}-broker`, host: h })) })
    : undefined;
  const brokerLines = broker.map(
    (h) => `  ssh through a broker:   ip netns exec ${client} ssh -F ${through?.path ?? ''} ${h}-broker\n`,
  );
  console.log(`lab ${lab.runId} is up (${Date.now() - started} ms)
  config:     ${lab.configFile}
  directory:  ${lab.dir}
  namespaces: ${Object.values(lab.hosts)
    .map((h: { ns: string }) => h.ns)
    .join(' ')}

  a shell as the client:   ip netns exec ${client} bash
  moshctl as the client:   ip netns exec ${client} node bin/moshctl.js -f ${lab.configFile} up target
  plain ssh to the target: ip netns exec ${client} ${lab.sshArgv('target').join(' ')}
${brokerLines.join('')}  remove it:               node dist/lab/cli.js down ${lab.runId}`);
  return 0;
}

async function down(runId: string | undefined): Promise<number> {
  const rec = readRecords().find((r) => r.runId === runId);
  if (!rec) {
    console.error(`no lab with run id "${runId ?? ''}"; see: node dist/lab/cli.js status`);
    return 1;
  }
  const problems = await teardown(rec);
  for (const p of problems) console.error(p);
  if (problems.length === 0) console.log(`lab ${rec.runId} removed`);
  return problems.length === 0 ? 0 : 1;
}

async function status(): Promise<number> {
  const records = readRecords();
  if (records.length === 0) console.log('no labs');
  for (const r of records) {
    const state = r.owner === null ? 'left up' : isAlive(r.owner) ? `owned by pid ${r.owner.pid}` : 'stale';
    console.log(`${r.runId}  ${state}  ${r.createdAt}  ${r.dir}`);
  }
  const left = await findLeftovers(DEFAULT_PREFIX);
  const stray = [...left.namespaces, ...left.processes.map((p) => `${p.comm}[${p.pid}] in ${p.ns}`)];
  if (stray.length > 0) console.log(`left behind: ${stray.join(', ')}\n(run: node dist/lab/cli.js cleanup)`);
  return 0;
}

async function cleanup(all: boolean): Promise<number> {
  let problems = 0;
  if (all) {
    for (const rec of readRecords()) {
      const p = await teardown(rec);
      problems += p.length;
      for (const line of p) console.error(line);
      console.log(`removed ${rec.runId}`);
    }
  }
  for (const removed of await cleanupStale(DEFAULT_PREFIX)) console.log(`removed ${removed}`);
  return problems === 0 ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help') {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (process.getuid?.() !== 0) {
    console.error('the lab builds network namespaces and needs root');
    return 1;
  }
  switch (cmd) {
    case 'up':
      return up(args);
    case 'down':
      return down(args[0]);
    case 'status':
      return status();
    case 'cleanup':
      return cleanup(args.includes('--all'));
    default:
      console.error(USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
