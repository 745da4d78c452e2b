#!/usr/bin/env node
// The demo: build a throwaway lab (client, bastion, target in network
// namespaces), run `moshctl up target` as the client in this terminal, and
// remove the lab afterwards whatever happens. Plain JS so it runs from the
// build output without a TypeScript runner.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';

if (process.getuid?.() !== 0) {
  console.error('the demo builds network namespaces and needs root: run it as root (sudo npm run demo)');
  process.exit(1);
}

let labModule;
try {
  labModule = await import('../dist/lab/index.js');
} catch (err) {
  console.error(`cannot load the lab from dist/ (${err.message}): run \`npm run build\` first`);
  process.exit(1);
}
const { Lab } = labModule;

let lab;
let child;
let exiting = false;
let interrupted; // exit code of a signal that came while the lab was being built

async function finish(code) {
  if (exiting) return;
  exiting = true;
  try {
    await lab?.destroy();
  } catch (err) {
    console.error(`demo: removing the lab failed: ${err.message}`);
    code ||= 1;
  }
  process.exit(code);
}

// Ctrl-C reaches moshctl by itself (same terminal process group) and it
// cleans up on its own, so the demo only waits; if moshctl is still there
// 10 s later it is killed. SIGTERM/SIGHUP (the terminal went away) are passed on.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    const code = 128 + constants.signals[sig];
    if (!lab) {
      interrupted ??= code; // create() is running: let it finish, then remove the lab
      return;
    }
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      void finish(code);
      return;
    }
    if (sig !== 'SIGINT') child.kill(sig);
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

try {
  console.log('demo: building the lab (network namespaces, sshd on each host)...');
  lab = await Lab.create({ bastions: 1 });
  if (interrupted !== undefined) await finish(interrupted);
  const h = lab.hosts;
  console.log(`
  hosts (run id ${lab.runId}):
    client   ${h.client.addresses.join(', ')}   (you, in namespace ${h.client.ns})
    bastion  ${h.bastion.addresses.join(', ')}   (jump host)
    target   ${h.target.addresses.join(', ')}   (where your shell will run)
    outsider ${h.outsider.addresses.join(', ')}   (another host on the client's LAN)

  Forwarding is off everywhere: the client can reach the target only through
  the bastion (ssh to set up, a UDP relay on the bastion for mosh).
  config: ${lab.configFile}

  Running: moshctl up target
  Exit the shell to end the session; the lab is removed afterwards.
`);
  const argv = lab.moshctlCommand(['up', 'target']);
  child = spawn(argv[0], argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, LANG: process.env.LANG || 'C.UTF-8' },
  });
  const code = await new Promise((resolve) => {
    child.on('error', (err) => {
      console.error(`demo: cannot start moshctl: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (c, sig) => resolve(c ?? 128 + (constants.signals[sig] ?? 0)));
  });
  console.log(`demo: moshctl exited with ${code}; removing the lab...`);
  await finish(code);
} catch (err) {
  console.error(`demo: ${err.stack ?? err}`);
  await finish(1);
}
