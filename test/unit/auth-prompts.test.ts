// Login prompts under ssh2: Ctrl-C at one ends the connect as an interruption,
// a key's passphrase is asked once per run, the connect timer stays stopped
// once the hop is done, and a login with no key says so.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnyAuthMethod } from 'ssh2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Interrupted } from '../../src/errors.js';
import { authHandler, forgetUnlockedKeys, prepareAuth } from '../../src/ssh/auth.js';
import { promptAwareTimer } from '../../src/ssh/connect.js';
import { connectError } from '../../src/ssh/hop-errors.js';
import { loadSsh2, type Ssh2Module } from '../../src/ssh/ssh2-module.js';
import type { Prompter } from '../../src/transport/types.js';
import { sshHost } from '../support/ssh-host.js';

const passphrase = 'correct horse 7';
let dir = '';
let keyFile = '';
let ssh2: Ssh2Module;

beforeAll(async () => {
  ssh2 = await loadSsh2();
  dir = mkdtempSync(join(tmpdir(), 'moshctl-auth-'));
  keyFile = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-f', keyFile, '-N', passphrase]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => forgetUnlockedKeys());

function prompter(answer: () => Promise<string>): Prompter & { asked: string[] } {
  const asked: string[] = [];
  return {
    interactive: true,
    asked,
    ask: (prompt) => {
      asked.push(prompt);
      return answer();
    },
    say: () => undefined,
  };
}

/** Runs one round of the authHandler: the method it hands ssh2, or what it interrupted with. */
async function firstMethod(
  p: Prompter,
): Promise<{ method?: AnyAuthMethod | false; interrupted?: Interrupted }> {
  const host = sshHost({ identity_files: [keyFile], identity_agent: 'none' });
  const auth = await prepareAuth(ssh2, host, undefined, p);
  return new Promise((resolve) => {
    const handler = authHandler(host, auth, ssh2, p, {
      pause: () => undefined,
      resume: () => undefined,
      interrupt: (interrupted) => resolve({ interrupted }),
    });
    handler(['publickey'], false, (method) => resolve({ method: method as AnyAuthMethod | false }));
  });
}

describe('ssh2 login prompts', () => {
  it('Ctrl-C at the passphrase prompt interrupts the connect instead of going on as a refused key', async () => {
    const got = await firstMethod(prompter(() => Promise.reject(new Interrupted('SIGINT'))));
    expect(got.method).toBeUndefined();
    expect(got.interrupted?.message).toBe('interrupted by SIGINT');
  });

  it('asks for a key file passphrase once per run, not once per hop', async () => {
    const p = prompter(() => Promise.resolve(passphrase));
    const hops = [await firstMethod(p), await firstMethod(p), await firstMethod(p)];
    expect(p.asked).toEqual([`Enter passphrase for key '${keyFile}': `]);
    for (const hop of hops) expect(hop.method).toMatchObject({ type: 'publickey' });
    // The unlocked key is handed over as a parsed key: the passphrase itself is not kept.
    expect(JSON.stringify(hops.map((h) => h.method))).not.toContain(passphrase);
  });

  it('a prompt answered after the hop failed does not start the connect timer again', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    let fired = 0;
    const timer = promptAwareTimer(60_000, () => fired++);
    timer.pause(); // a prompt opens
    timer.stop(); // the hop fails meanwhile
    timer.resume(); // the prompt is answered
    await sleep(50);
    process.off('warning', onWarning);
    expect(fired).toBe(0);
    expect(warnings).not.toContain('TimeoutOverflowWarning');
  });

  it('a login refused when only prompts were left says there is no key, not to authorize one', async () => {
    const host = sshHost({ identity_files: [], identity_agent: undefined });
    const auth = await prepareAuth(
      ssh2,
      host,
      undefined,
      prompter(() => Promise.resolve('')),
    );
    const refused = Object.assign(new Error('All configured authentication methods failed'), {
      level: 'client-authentication',
    });
    const e = connectError(refused, host, undefined, { ...auth, readyTimeoutMs: 3000, hostKey: undefined });
    expect(e.message).toBe(
      `no key to log in to ${host.name} with: no identity file (none named, and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa), no ssh-agent (SSH_AUTH_SOCK is not set), and ${host.name} (${host.user}@${host.address}:${host.port}) did not let user ${host.user} in with a password or keyboard-interactive prompt`,
    );
    expect(e.hint).toContain('create a key (ssh-keygen -t ed25519)');
    expect(e.hint).not.toContain('authorize');
  });
});
