// What transport auto costs where UDP passes, against udp from the same run,
// for scripts/bench-auto.mjs (the question: should auto be the default?).
//
// - Latency: moshctl's runner builds each path as `up` does
//   (transport-path.mjs), ending at a UDP echo on the target; the same
//   ping-pong as section 3 runs through it from the client. udp and auto take
//   turns, `rounds` times, so a drift of the machine hits both.
// - CPU: the time moshctl's main thread spent on the CPU (/proc/PID/schedstat,
//   in ns) during auto's ping-pong, per round trip: what carrying every
//   datagram costs the `up` process. With udp it carries none.
// - First output and end to end: `moshctl up target -- sh -c 'echo FIRST-FRAME'`
//   with and without `--transport auto`, in a terminal (script(1)), alternating.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { throughPath } from './tcp-section.mjs';

const lib = new URL('.', import.meta.url).pathname;

const onCpuNs = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);

async function pingpong(lab, address, port, n, warm) {
  const r = await lab.exec(
    'client',
    [process.execPath, join(lib, 'pingpong.mjs'), address, String(port), String(n), String(warm), '1300'],
    { timeoutMs: 30000 + n * 2500 },
  );
  const line = (r.stdout ?? '').trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`pingpong to ${address}:${port}: ${JSON.stringify(r)}`);
  }
}

/** One path (udp or auto) up, a ping-pong through it, its owner's CPU; then the path down. */
function onePath(lab, mode, echoPort, n, warm) {
  return throughPath(lab, mode, echoPort, async (to, err, pid) => {
    const cpu0 = onCpuNs(pid);
    const r = await pingpong(lab, to.address, to.port, n, warm);
    const cpuNs = onCpuNs(pid) - cpu0;
    return {
      ...r,
      cpuUsPerRoundTrip: cpuNs / 1000 / (n + warm),
      mode: to.mode ?? 'udp',
      switched: err().trim(),
    };
  });
}

/** { udp: [...], auto: [...] }: per round {p50, p99, rps, lost, cpuUsPerRoundTrip}. */
export async function measureAutoLatency(lab, { rounds, n, warm, log }) {
  const echoPort = 7072;
  lab.spawn('target', [process.execPath, join(lib, 'udp-echo.mjs'), String(echoPort)]);
  const res = { udp: [], auto: [] };
  for (let i = 0; i < rounds; i++)
    for (const mode of i % 2 ? ['auto', 'udp'] : ['udp', 'auto']) {
      log?.(`auto's cost: latency, ${mode}, round ${i + 1}`);
      res[mode].push(await onePath(lab, mode, echoPort, n, warm));
    }
  return res;
}

/** Time to FIRST-FRAME and to exit of a command in a terminal (script(1)), in ms. */
function timeRun(command, env) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let first;
    let out = '';
    // stdin open and silent: see bench.mjs's timeRun.
    const child = spawn('script', ['-qfec', `stty rows 40 cols 120; ${command}`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LANG: 'C.UTF-8', ...env },
    });
    child.stdout.on('data', (d) => {
      out += d.toString();
      if (first === undefined && out.includes('FIRST-FRAME')) first = process.hrtime.bigint();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const end = process.hrtime.bigint();
      child.stdin.destroy();
      if (code !== 0 || first === undefined)
        reject(new Error(`${command} exited ${code}:\n${out.slice(-500)}`));
      else resolve({ first: Number(first - start) / 1e6, total: Number(end - start) / 1e6 });
    });
  });
}

/** { udp: [...], auto: [...] }: per round {first, total} of `moshctl up target` with each transport. */
export async function measureAutoStart(lab, { rounds, moshctl, state, log }) {
  const ns = lab.hosts.client.ns;
  const base = `ip netns exec ${ns} ${process.execPath} ${moshctl} -f ${lab.configFile} up target`;
  const run = (mode) =>
    timeRun(`${base}${mode === 'auto' ? ' --transport auto' : ''} -- sh -c 'echo FIRST-FRAME'`, {
      XDG_STATE_HOME: state,
    });
  await run('udp'); // warm caches for both
  await run('auto');
  const res = { udp: [], auto: [] };
  for (let i = 0; i < rounds; i++)
    for (const mode of i % 2 ? ['auto', 'udp'] : ['udp', 'auto']) {
      log?.(`auto's cost: first output, ${mode}, round ${i + 1}`);
      res[mode].push(await run(mode));
    }
  return res;
}
