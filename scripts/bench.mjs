#!/usr/bin/env node
// `npm run bench`: moshctl up through one bastion against `ssh -J bastion
// target`, alternately in one run on a fresh lab, so both see the same machine.
// Each side runs `sh -c 'echo FIRST-FRAME; sleep 0.3'` on the target in a
// terminal (script(1)); we time the first output (for moshctl: mosh-client's
// first frame with it) and the whole command (for moshctl: with teardown).
// Prints medians and ratios; not a test. Needs root (network namespaces).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.getuid?.() !== 0) {
  console.error('bench: builds network namespaces and needs root');
  process.exit(1);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const { Lab } = await import('../dist/lab/index.js');
const rounds = Number(process.env.ROUNDS ?? 9);
const remote = "sh -c 'echo FIRST-FRAME; sleep 0.3'";

function timeRun(command, env) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let first;
    let out = '';
    const child = spawn('script', ['-qfec', `stty rows 40 cols 120; ${command}`, '/dev/null'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, LANG: 'C.UTF-8', ...env },
    });
    child.stdout.on('data', (d) => {
      out += d.toString();
      if (first === undefined && out.includes('FIRST-FRAME')) first = process.hrtime.bigint();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const end = process.hrtime.bigint();
      if (code !== 0 || first === undefined)
        reject(new Error(`${command} exited ${code}:\n${out.slice(-500)}`));
      else resolve({ first: Number(first - start) / 1e6, total: Number(end - start) / 1e6 });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let lab;
const state = mkdtempSync(join(tmpdir(), 'moshctl-bench-'));
try {
  lab = await Lab.create({ bastions: 1 });
  const ns = lab.hosts.client.ns;
  const ssh = `ip netns exec ${ns} ssh -F ${lab.sshConfigFile} -J root@192.0.2.1 root@203.0.113.10 "${remote}"`;
  const up = `ip netns exec ${ns} ${process.execPath} ${join(root, 'bin/moshctl.js')} -f ${lab.configFile} up target -- ${remote}`;
  const results = { ssh: [], up: [] };
  await timeRun(ssh); // warm caches (binaries, keys) for both sides before measuring
  await timeRun(up, { XDG_STATE_HOME: state });
  for (let i = 0; i < rounds; i++) {
    results.ssh.push(await timeRun(ssh));
    results.up.push(await timeRun(up, { XDG_STATE_HOME: state }));
  }
  const row = (name, key) => {
    const s = median(results.ssh.map((r) => r[key]));
    const u = median(results.up.map((r) => r[key]));
    console.log(
      `${name.padEnd(28)} ssh -J ${s.toFixed(0).padStart(5)} ms   moshctl up ${u.toFixed(0).padStart(5)} ms   ratio ${(u / s).toFixed(2)}x`,
    );
  };
  console.log(`one bastion, ${rounds} alternating rounds, medians:`);
  row('first output (first frame)', 'first');
  row('end to end (with teardown)', 'total');
} finally {
  await lab?.destroy();
  rmSync(state, { recursive: true, force: true });
}
