// The openssh client (src/openssh) against the lab's real sshd servers: one
// ControlMaster per hop, commands through them, and what is left behind when
// the chain closes, drops, is aborted or its owner is SIGKILLed.
//
// The test process lives outside the lab's namespaces, so `ssh` on PATH is a
// two-line script that runs the real one in the client namespace (`ip netns
// exec` execs it in place: its pid is ssh's own). Each test's control
// directories go under its own XDG_RUNTIME_DIR, so the processes of a chain
// are exactly those whose argv names that directory.

import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SshHost } from '../../src/config/types.js';
import { EnvError } from '../../src/errors.js';
import { REPO_ROOT, type Lab } from '../../src/lab/index.js';
import { connectOpenSshChain, type OpenSshChain } from '../../src/openssh/connect.js';
import type { ConnectOptions, Prompter, RemoteChain } from '../../src/transport/types.js';
import { e2eSkipReason, useLab } from './support.js';
import { sshHost } from '../support/ssh-host.js';

const reason = e2eSkipReason();
const SSH = '/usr/bin/ssh';
const OPTS: ConnectOptions = { sshConfigFile: '/dev/null' };

type LabSshHost = 'bastion' | 'bastion2' | 'target';

function labHost(lab: Lab, name: LabSshHost, over: Partial<SshHost> = {}): SshHost {
  const address = lab.host(name).sshAddress;
  return sshHost({
    name,
    ssh_name: address,
    address,
    identity_files: [lab.keyFile],
    known_hosts: [lab.knownHostsFile],
    ssh_client: 'openssh',
    ...over,
  });
}

/** Live processes (zombies aside) whose argv contains `text`. */
function processesNaming(text: string): { pid: number; argv: string }[] {
  const found: { pid: number; argv: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      if (argv.includes(text)) found.push({ pid: Number(entry), argv });
    } catch {
      // Gone while listing.
    }
  }
  return found;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

async function rejection(p: Promise<unknown>): Promise<EnvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnvError);
  return err as EnvError;
}

/** Where a command ran: the namespace `ip netns identify` names. */
async function whereRuns(chain: RemoteChain, host: string): Promise<string> {
  return (await chain.exec(host, 'ip netns identify')).stdout.trim();
}

/**
 * Puts an `ssh` that runs in the client namespace first on PATH and gives each
 * test its own XDG_RUNTIME_DIR; checks after each test that no process names it.
 */
function useClientSsh(labRef: { readonly lab: Lab }): {
  readonly runtimeDir: string;
  readonly binDir: string;
} {
  const saved = { PATH: process.env.PATH, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
  let binDir = '';
  let runtimeDir = '';
  beforeAll(() => {
    binDir = mkdtempSync(join(tmpdir(), 'oc-bin-'));
    const script = join(binDir, 'ssh');
    writeFileSync(script, `#!/bin/sh\nexec ip netns exec ${labRef.lab.host('client').ns} ${SSH} "$@"\n`);
    chmodSync(script, 0o755);
    process.env.PATH = `${binDir}:${saved.PATH ?? ''}`;
  });
  afterAll(() => {
    process.env.PATH = saved.PATH;
    if (saved.XDG_RUNTIME_DIR === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved.XDG_RUNTIME_DIR;
    rmSync(binDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    runtimeDir = mkdtempSync(join(tmpdir(), 'oc-run-'));
    chmodSync(runtimeDir, 0o700);
    process.env.XDG_RUNTIME_DIR = runtimeDir;
  });
  afterEach(async () => {
    // Whatever a test did, nothing of its chains may be left running.
    const dir = runtimeDir;
    try {
      await until('no process of the test is left', () => processesNaming(dir).length === 0);
    } finally {
      for (const p of processesNaming(dir)) process.kill(p.pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return {
    get runtimeDir() {
      return runtimeDir;
    },
    get binDir() {
      return binDir;
    },
  };
}

/** Control directories under the test's XDG_RUNTIME_DIR that still exist. */
function controlDirs(runtimeDir: string): string[] {
  return readdirSync(runtimeDir).filter((f) => f.startsWith('moshctl-'));
}

describe.skipIf(reason !== undefined)('openssh chain through one bastion', () => {
  const ref = useLab({ bastions: 1 });
  const env = useClientSsh(ref);
  const hop = (name: LabSshHost, over: Partial<SshHost> = {}): SshHost => labHost(ref.lab, name, over);

  it('connects bastion → target, runs commands where they belong, and reaches the bastion’s address', async () => {
    const { lab } = ref;
    let started = performance.now();
    const one = await connectOpenSshChain([hop('bastion')], OPTS);
    const oneMs = performance.now() - started;
    await one.close();

    const hops: string[] = [];
    started = performance.now();
    const chain = await connectOpenSshChain([hop('bastion'), hop('target')], {
      ...OPTS,
      onHop: (h) => hops.push(h),
    });
    const twoMs = performance.now() - started;
    try {
      expect(hops).toEqual(['bastion', 'target']);
      expect(chain.hostNames).toEqual(['bastion', 'target']);
      expect(chain.reachedAddress).toBe(lab.hosts.bastion.sshAddress);
      expect(await whereRuns(chain, 'target')).toBe(lab.hosts.target.ns);
      expect(await whereRuns(chain, 'bastion')).toBe(lab.hosts.bastion.ns);
      const execMs: number[] = [];
      for (let i = 0; i < 5; i++) {
        started = performance.now();
        await chain.exec('target', 'true');
        execMs.push(performance.now() - started);
      }
      const median = [...execMs].sort((a, b) => a - b)[2] ?? 0;
      console.log(
        `openssh: connect 1 hop ${Math.round(oneMs)} ms, 2 hops ${Math.round(twoMs)} ms; \`true\` on the target ${Math.round(median)} ms (median of 5)`,
      );
      // The login shell may say something first (this machine's root runs `pyenv init`, whose
      // rehash complains when another test's shell holds its lock): the command's own words end it.
      const r = await chain.exec('target', 'cat; echo oops >&2; exit 3', { stdin: 'via stdin\n' });
      expect({ ...r, stderr: r.stderr.split('\n').slice(-2).join('\n') }).toEqual({
        stdout: 'via stdin\n',
        stderr: 'oops\n',
        code: 3,
      });
      await expect(chain.exec('nowhere', 'true')).rejects.toThrow(/not part of this SSH chain/);
    } finally {
      await chain.close();
    }
  });

  it('execUntil resolves on a marker while the command still runs, and times out naming the command', async () => {
    const chain = await connectOpenSshChain([hop('bastion'), hop('target')], OPTS);
    try {
      const started = Date.now();
      const r = await chain.execUntil('target', 'echo READY; sleep 5; echo LATE', {
        until: (out) => out.includes('READY\n'),
        timeoutMs: 10_000,
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(r).toEqual({ stdout: 'READY\n', stderr: '', code: null });

      const ended = await chain.execUntil('target', 'echo nothing', {
        until: () => false,
        timeoutMs: 10_000,
      });
      expect(ended).toEqual({ stdout: 'nothing\n', stderr: '', code: 0 });

      const late = await rejection(
        chain.exec('target', 'sleep 5', { timeoutMs: 300, stdin: 'not in messages' }),
      );
      expect(late.message).toBe('`sleep 5` on target did not finish within 300 ms');
      expect(late.where).toEqual({ host: 'target', step: 'exec' });
    } finally {
      await chain.close();
    }
  });

  it('close() stops every ssh of the chain, removes its directory, and is safe to call twice', async () => {
    const chain = (await connectOpenSshChain([hop('bastion'), hop('target')], OPTS)) as OpenSshChain;
    const pids = chain.processes.flatMap((p) => [p.sshPid, p.wrapperPid]);
    expect(pids.every((p) => typeof p === 'number')).toBe(true);
    // The masters, their wrappers and the target's stdio forward through the bastion.
    expect(processesNaming(env.runtimeDir).length).toBeGreaterThanOrEqual(5);
    expect(controlDirs(env.runtimeDir)).toHaveLength(1);
    const first = chain.close();
    expect(chain.close()).toBe(first);
    await first;
    await chain.close();
    expect(processesNaming(env.runtimeDir)).toEqual([]);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(controlDirs(env.runtimeDir)).toEqual([]);
    await expect(chain.exec('target', 'true')).rejects.toThrow(/connection is closed/);
  });

  it('keeps its masters through Ctrl-C and hangup signals', async () => {
    const chain = (await connectOpenSshChain([hop('bastion'), hop('target')], OPTS)) as OpenSshChain;
    try {
      for (const p of chain.processes) {
        for (const pid of [p.sshPid, p.wrapperPid]) {
          process.kill(pid as number, 'SIGINT');
          process.kill(pid as number, 'SIGHUP');
        }
      }
      await sleep(300);
      expect((await chain.exec('target', 'echo still')).stdout).toBe('still\n');
    } finally {
      await chain.close();
    }
  });

  it('reports the bastion and the target when the bastion’s master is killed', async () => {
    const chain = (await connectOpenSshChain([hop('bastion'), hop('target')], OPTS)) as OpenSshChain;
    const dropped: [string, string | undefined][] = [];
    chain.onClose((h, e) => dropped.push([h, e?.message]));
    try {
      process.kill(chain.processes[0]?.sshPid as number, 'SIGKILL');
      await until('both hops are reported', () => dropped.length === 2);
      expect(dropped.map(([h]) => h)).toEqual(['bastion', 'target']);
      expect(dropped[0]?.[1]).toContain('the connection to bastion (root@');
      const err = await rejection(chain.exec('target', 'true'));
      expect(err.message).toMatch(/connection is closed|closed while/);
    } finally {
      await chain.close();
    }
    expect(controlDirs(env.runtimeDir)).toEqual([]);
  });

  it('refuses an unknown target key under strict checking, naming the hop, and leaves nothing', async () => {
    const empty = join(env.runtimeDir, 'known_hosts.empty');
    writeFileSync(empty, '');
    const err = await rejection(
      connectOpenSshChain([hop('bastion'), hop('target', { known_hosts: [empty] })], OPTS),
    );
    expect(err.message).toBe(
      `host key of target (root@${ref.lab.hosts.target.sshAddress}:22) is not in ${empty}`,
    );
    expect(err.hint).toContain(`ssh-keyscan -p 22 ${ref.lab.hosts.target.sshAddress}\` run on bastion`);
    expect(err.where).toEqual({ host: 'target', step: 'connect', fault: 'host-key' });
    expect(processesNaming(env.runtimeDir)).toEqual([]);
    expect(controlDirs(env.runtimeDir)).toEqual([]);
  });

  it('accept-new records a new key in the first known_hosts file, and still refuses a changed one', async () => {
    const { lab } = ref;
    const address = lab.hosts.target.sshAddress;
    const fresh = join(env.runtimeDir, 'known_hosts.new');
    writeFileSync(fresh, '');
    const policy = { host_key_policy: 'accept-new' as const };
    const chain = await connectOpenSshChain(
      [hop('bastion'), hop('target', { ...policy, known_hosts: [fresh, lab.knownHostsFile + '.absent'] })],
      OPTS,
    );
    await chain.close();
    const recorded = readFileSync(fresh, 'utf8');
    expect(recorded).toMatch(new RegExp(`^${address.replaceAll('.', '\\.')} ssh-ed25519 AAAA\\S+\\n$`));

    // The bastion's key written under the target's address: a changed key, refused even under accept-new.
    const bastionKey = readFileSync(lab.knownHostsFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${lab.hosts.bastion.sshAddress} `))
      ?.split(' ')
      .slice(1)
      .join(' ');
    expect(bastionKey).toMatch(/^ssh-ed25519 /);
    const changed = join(env.runtimeDir, 'known_hosts.changed');
    writeFileSync(changed, `# moved\n${address} ${bastionKey}\n`);
    const err = await rejection(
      connectOpenSshChain([hop('bastion'), hop('target', { ...policy, known_hosts: [changed] })], OPTS),
    );
    expect(err.message).toContain(`host key of target (root@${address}:22) does not match ${changed} line 2`);
    expect(err.message).toContain('man-in-the-middle');
    expect(err.hint).toContain(`ssh-keygen -R '${address}' -f ${changed}`);
  });

  it('names the user and key a hop refused', async () => {
    const stranger = join(env.runtimeDir, 'id_stranger');
    const keygen = spawn('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger], {
      stdio: 'ignore',
    });
    await new Promise((r) => keygen.on('exit', r));
    const err = await rejection(
      connectOpenSshChain([hop('bastion'), hop('target', { identity_files: [stranger] })], OPTS),
    );
    expect(err.message).toContain(
      `target (root@${ref.lab.hosts.target.sshAddress}:22) refused to log in user root`,
    );
    expect(err.message).toContain(stranger);
    expect(err.hint).toContain(`${stranger}.pub`);
  });

  it('explains a hop the bastion cannot reach, from what the bastion logged', async () => {
    const address = ref.lab.hosts.target.sshAddress;
    const err = await rejection(connectOpenSshChain([hop('bastion'), hop('target', { port: 2 })], OPTS));
    expect(err.message).toBe(`cannot reach target (root@${address}:2) through bastion: connection refused`);
    expect(err.hint).toContain(`on bastion: nc -vz ${address} 2`);
  });

  it.each(['bastion', 'target'])(
    'stops at once on abort while %s connects, with the signal’s reason, and leaves nothing',
    async (during) => {
      const ac = new AbortController();
      const p = connectOpenSshChain([hop('bastion'), hop('target')], {
        ...OPTS,
        signal: ac.signal,
        // Just after that hop's master started (for the target, the bastion's is up).
        onHop: (h) => {
          if (h === during) setTimeout(() => ac.abort(new Error('user pressed ^C')), 5);
        },
      });
      const started = Date.now();
      await expect(p).rejects.toThrow('user pressed ^C');
      expect(Date.now() - started).toBeLessThan(3000);
      expect(processesNaming(env.runtimeDir)).toEqual([]);
      expect(controlDirs(env.runtimeDir)).toEqual([]);
    },
  );

  describe('owned by another process', () => {
    let code = '';
    let script = '';
    beforeAll(() => {
      code = mkdtempSync(join(tmpdir(), 'oc-code-'));
      const entry = transpileTree(
        join(REPO_ROOT, 'src', 'openssh', 'connect.ts'),
        join(REPO_ROOT, 'src'),
        code,
      );
      script = join(code, 'owner.mjs');
      writeFileSync(
        script,
        [
          `import { connectOpenSshChain } from './${relative(code, entry)}';`,
          'const chain = await connectOpenSshChain(JSON.parse(process.argv[2]), { sshConfigFile: "/dev/null" });',
          'process.stdout.write(JSON.stringify(chain.processes) + "\\n");',
          // "exit": end without closing the chain, as a crashing moshctl would.
          'if (process.argv[3] === "exit") process.exit(3);',
          'setInterval(() => undefined, 1 << 30);',
        ].join('\n'),
      );
    });
    afterAll(() => rmSync(code, { recursive: true, force: true }));

    /** Starts a node process that connects bastion → target; resolves with its masters once connected. */
    async function startOwner(
      mode: 'wait' | 'exit',
    ): Promise<{ owner: ChildProcess; procs: { sshPid: number; wrapperPid: number }[] }> {
      const hops = [labHost(ref.lab, 'bastion'), labHost(ref.lab, 'target')];
      const owner = spawn(process.execPath, [script, JSON.stringify(hops), mode], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: process.env,
      });
      let out = '';
      owner.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
      await until('the owner has connected', () => out.includes('\n') || owner.exitCode !== null, 20_000);
      const procs = JSON.parse(out) as { sshPid: number; wrapperPid: number }[];
      expect(procs).toHaveLength(2);
      return { owner, procs };
    }

    it('leaves no master running when that process is SIGKILLed; its directory is swept later', async () => {
      const { owner, procs } = await startOwner('wait');
      expect(processesNaming(env.runtimeDir).length).toBeGreaterThanOrEqual(5);
      owner.kill('SIGKILL');
      await until('every master is gone', () => processesNaming(env.runtimeDir).length === 0, 5000);
      for (const p of procs) expect(existsSync(`/proc/${p.sshPid}`)).toBe(false);
      // Nothing could remove its directory; the next chain made here does.
      expect(controlDirs(env.runtimeDir)).toHaveLength(1);
      const chain = await connectOpenSshChain([hop('bastion')], OPTS);
      expect(controlDirs(env.runtimeDir)).toHaveLength(1);
      await chain.close();
      expect(controlDirs(env.runtimeDir)).toEqual([]);
    });

    it('leaves nothing when that process exits without closing the chain', async () => {
      const { owner } = await startOwner('exit');
      await until('the owner has exited', () => owner.exitCode !== null);
      await until('every master is gone', () => processesNaming(env.runtimeDir).length === 0, 5000);
      expect(controlDirs(env.runtimeDir)).toEqual([]);
    });
  });

  it("runs the first hop's own ProxyCommand, shows what it prints while connecting, and reports no reached address", async () => {
    const { lab } = ref;
    const said: string[] = [];
    const prompter: Prompter = {
      interactive: true,
      ask: () => Promise.reject(new Error('no questions expected')),
      say: (text) => said.push(text),
    };
    // Runs in the client namespace, as the master does.
    const proxy = `sh -c 'echo "visit https://login.example/abc to log in" >&2; exec nc %h %p'`;
    const chain = await connectOpenSshChain([hop('bastion', { proxy_command: proxy }), hop('target')], {
      ...OPTS,
      prompter,
    });
    try {
      expect(said).toContain('visit https://login.example/abc to log in');
      expect(chain.reachedAddress).toBeUndefined();
      expect(await whereRuns(chain, 'target')).toBe(lab.hosts.target.ns);
    } finally {
      await chain.close();
    }
  });

  it('trusts hosts through a host CA (@cert-authority known_hosts)', async () => {
    const { lab } = ref;
    const ca = { known_hosts: [lab.caKnownHostsFile] };
    const chain = await connectOpenSshChain([hop('bastion', ca), hop('target', ca)], OPTS);
    try {
      expect(await whereRuns(chain, 'target')).toBe(lab.hosts.target.ns);
    } finally {
      await chain.close();
    }
  });

  it('logs in with a user certificate for a key that is in no authorized_keys', async () => {
    const { lab } = ref;
    const cert = {
      identity_files: [lab.certOnlyKeyFile],
      certificate_files: [`${lab.certOnlyKeyFile}-cert.pub`],
    };
    const chain = await connectOpenSshChain([hop('bastion', cert), hop('target', cert)], OPTS);
    try {
      expect(await whereRuns(chain, 'target')).toBe(lab.hosts.target.ns);
    } finally {
      await chain.close();
    }
  });

  it('says what to install when there is no ssh on PATH', async () => {
    const saved = process.env.PATH;
    const empty = mkdtempSync(join(tmpdir(), 'oc-empty-'));
    process.env.PATH = empty;
    try {
      const err = await rejection(connectOpenSshChain([hop('bastion')], OPTS));
      expect(err.message).toBe('ssh_client: openssh needs the OpenSSH client (ssh), which is not installed');
      expect(err.hint).toContain('ssh_client: ssh2');
    } finally {
      process.env.PATH = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe.skipIf(reason !== undefined)('openssh chain through two bastions', () => {
  const ref = useLab({ bastions: 2 });
  useClientSsh(ref);

  it('connects bastion → bastion2 → target, each command where it belongs', async () => {
    const { lab } = ref;
    const started = performance.now();
    const chain = await connectOpenSshChain(
      (['bastion', 'bastion2', 'target'] as const).map((h) => labHost(lab, h)),
      OPTS,
    );
    console.log(`openssh: connect 3 hops ${Math.round(performance.now() - started)} ms`);
    try {
      expect(chain.reachedAddress).toBe(lab.hosts.bastion.sshAddress);
      for (const h of ['bastion', 'bastion2', 'target'] as const) {
        expect(await whereRuns(chain, h)).toBe(lab.host(h).ns);
      }
    } finally {
      await chain.close();
    }
  });
});

/**
 * Transpiles `entry` and the modules it imports (relative imports, followed)
 * into `outDir`, keeping their layout under `root`: the SIGKILL test runs the
 * chain in a plain node process, which cannot load TypeScript itself.
 */
function transpileTree(entry: string, root: string, outDir: string): string {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    }).outputText;
    const dest = join(outDir, relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
    for (const m of js.matchAll(/(?:from|import)\s+'(\.\.?\/[^']+)\.js'/g)) {
      visit(resolve(dirname(file), `${m[1] ?? ''}.ts`));
    }
  };
  visit(entry);
  return join(outDir, relative(root, entry)).replace(/\.ts$/, '.js');
}
