// Section 8 of the bench (the tcp transport), shared by scripts/bench.mjs and
// scripts/bench-tcp.mjs (that section alone): the added latency of each
// transport's path against udp from the same run, and the report tables for
// every ssh client measured, each tcp figure beside its udp baseline.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const lib = fileURLToPath(new URL('./', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const us = (x) => `${Math.round(x)} µs`;
const ms = (x) => `${x.toFixed(0)} ms`;
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

/** UDP ping-pong from `host` to address:port (pingpong.mjs): {p50, p99, max, stalls, rps, lost}. */
export async function pingpong(lab, host, address, port, { n, warm }) {
  const r = await lab.exec(
    host,
    [process.execPath, join(lib, 'pingpong.mjs'), address, String(port), String(n), String(warm), '1300'],
    { timeoutMs: 30000 + n * 2500 },
  );
  const line = (r.stdout ?? '').trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`pingpong from ${host} to ${address}:${port}: ${JSON.stringify(r)}`);
  }
}

/**
 * Added latency of each transport in `modes`, side by side: moshctl's runner
 * builds the path as `up` would (transport-path.mjs, in the client namespace),
 * ending at a UDP echo on the target; the same ping-pong then runs through it.
 * udp: to the relay on the bastion; auto: to moshctl's loopback port, on by UDP
 * to that relay; tcp: to moshctl's loopback port, through the ssh chain to a forwarder.
 */
export async function transportLatency(
  lab,
  { modes = ['udp', 'auto', 'tcp'], n, warm, log, echoPort = 7071 },
) {
  lab.spawn('target', [process.execPath, join(lib, 'udp-echo.mjs'), String(echoPort)]);
  const rows = {};
  for (const mode of modes) {
    log?.(`transport latency (${lab.sshClient}): ${mode}`);
    rows[mode] = await throughPath(lab, mode, echoPort, (to, err) =>
      pingpong(lab, 'client', to.address, to.port, { n, warm }).then((r) => ({
        ...r,
        mode: to.mode ?? 'udp',
        switched: err().trim(),
      })),
    );
  }
  return rows;
}

/**
 * One path (`mode`) built by transport-path.mjs in the client namespace, as
 * `up` builds it, to the UDP echo at `echoPort` on the target: `use` gets where
 * to send, the child's pid (moshctl's runner: `ip netns exec` execs node) and
 * its stderr so far; the path is taken down after.
 */
export async function throughPath(lab, mode, echoPort, use) {
  const [cmd, ...args] = lab.clientCommand([
    process.execPath,
    join(lib, 'transport-path.mjs'),
    lab.configFile,
    mode,
    String(echoPort),
  ]);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  lab.track(child.pid);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const ended = new Promise((r) => child.on('exit', r));
  try {
    const line = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      child.on('exit', (c) => reject(new Error(`transport-path ${mode} exited ${c}: ${out}${err}`)));
    });
    return await use(JSON.parse(line), () => err, child.pid);
  } finally {
    child.stdin.end();
    await Promise.race([ended, sleep(20_000)]);
  }
}

/**
 * The latency table: one row per ssh client and path, each against udp of the
 * same client's run. `byClient`: { ssh2: rows, openssh: rows } from transportLatency.
 */
export function latencyTable(byClient, { n }) {
  const L = [
    '| ssh_client | path | p50 | ratio | added p50 | p99 | ratio | added p99 | max | round trips over 10 ms | round trips/s | lost |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [client, rows] of Object.entries(byClient)) {
    const b = rows.udp;
    for (const [mode, r] of Object.entries(rows)) {
      const label = mode === 'auto' ? `auto (stayed ${r.mode}${r.switched ? `: ${r.switched}` : ''})` : mode;
      L.push(
        `| ${client} | ${label} | ${us(r.p50)} | ${ratio(r.p50, b.p50)} | ${us(r.p50 - b.p50)} | ${us(r.p99)} | ${ratio(r.p99, b.p99)} | ${us(r.p99 - b.p99)} | ${r.max === undefined ? '–' : us(r.max)} | ${r.stalls ?? '–'} | ${Math.round(r.rps)} | ${r.lost}/${n} |`,
      );
    }
  }
  return L;
}

/** Whether tcp's added p99 over udp is within `goalUs` for every client. */
export function latencyMissed(byClient, goalUs) {
  return Object.entries(byClient)
    .filter(([, rows]) => rows.tcp && rows.tcp.p99 - rows.udp.p99 > goalUs)
    .map(([client, rows]) => ({ client, addedUs: rows.tcp.p99 - rows.udp.p99 }));
}

/**
 * The roam table: per ssh client, tcp's recovery next to udp's (the relay)
 * from the same alternating rounds. `byClient`: { ssh2: roam, openssh: roam }
 * from measureRoaming with sides `relay` and `tcp`.
 */
export function roamTable(byClient) {
  const L = [
    '| ssh_client | session | median | min | max | ratio (median) | ending it afterwards (median) |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  const med = (roam, side) => median(roam[side].map((r) => r.ms));
  for (const [client, roam] of Object.entries(byClient)) {
    for (const [side, label] of [
      ['tcp', 'tcp (moshctl up target --transport tcp)'],
      ['relay', 'baseline: udp through the relay (moshctl up target)'],
    ]) {
      const xs = roam[side].map((r) => r.ms);
      L.push(
        `| ${client} | ${label} | ${ms(med(roam, side))} | ${ms(Math.min(...xs))} | ${ms(Math.max(...xs))} | ${ratio(med(roam, side), med(roam, 'relay'))} | ${ms(median(roam[side].map((r) => r.exitMs)))} |`,
      );
    }
  }
  L.push('');
  for (const [client, roam] of Object.entries(byClient))
    L.push(
      `Each round (ms), ${client}, tcp / udp: ${roam.tcp.map((r, i) => `${r.ms.toFixed(0)} / ${roam.relay[i]?.ms.toFixed(0) ?? '–'}`).join(', ')}.`,
    );
  return L;
}

/** tcp's median recovery per client, for the goal line. */
export function roamMedians(byClient) {
  return Object.fromEntries(
    Object.entries(byClient).map(([client, roam]) => [client, median(roam.tcp.map((r) => r.ms))]),
  );
}
