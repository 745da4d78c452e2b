// How a hop logs in under ssh2, in OpenSSH's order: the agent's keys, then
// each identity file, then keyboard-interactive (OTP, Duo) and password when
// there is a terminal to ask on. Key files are read before any connection
// opens, so a missing key fails in milliseconds; a passphrase is asked for
// only when that key's turn comes, as ssh does.

import { readFile, stat } from 'node:fs/promises';
import type {
  AnyAuthMethod,
  AuthenticationType,
  AuthHandlerMiddleware,
  KeyboardInteractiveAuthMethod,
  ParsedKey,
} from 'ssh2';
import type { SshHost } from '../config/types.js';
import { EnvError, Interrupted } from '../errors.js';
import type { Prompter } from '../transport/types.js';
import { isSecurityKey, privateKeyType, securityKeyRefusal } from './limits.js';
import type { Ssh2Module } from './ssh2-module.js';

interface KeyFile {
  path: string;
  data: Buffer;
  encrypted: boolean;
}

export interface HopAuth {
  agent: string | undefined;
  keys: KeyFile[];
  /** For messages: what will be offered, e.g. `ssh-agent keys and key ~/.ssh/id_ed25519`. */
  tried: string;
  /** Set when neither a key file nor an agent can serve (only prompts are left): why, for the message. */
  noKey?: string | undefined;
}

/** Brackets a prompt so the connect timeout does not run while a person types. */
export interface PromptClock {
  pause: () => void;
  resume: () => void;
  /** Ends the connect with this error: Ctrl-C at a prompt is not a refused login. */
  interrupt: (err: Interrupted) => void;
  /** Aborts once the connect failed (its connection dropped): an open prompt then closes. */
  signal?: AbortSignal;
}

/**
 * Keys unlocked during this run, by file, so a passphrase is asked once per
 * key file rather than once per hop. Only in memory, and only for the process
 * (one `moshctl up`); the file's bytes are kept to notice it changed.
 */
const unlocked = new Map<string, { data: Buffer; key: ParsedKey }>();

/** Forgets every unlocked key (tests). */
export function forgetUnlockedKeys(): void {
  unlocked.clear();
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

export async function prepareAuth(
  ssh2: Ssh2Module,
  host: SshHost,
  defaultAgent: string | undefined,
  prompter: Prompter | undefined,
): Promise<HopAuth> {
  const wanted = host.identity_agent === 'none' ? undefined : (host.identity_agent ?? defaultAgent);
  const agent = wanted && (await isSocket(wanted)) ? wanted : undefined;
  const where = { host: host.name, step: 'connect', fault: 'auth' as const };
  const interactive = prompter?.interactive === true;
  const keys: KeyFile[] = [];
  for (const path of host.identity_files) {
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      throw new EnvError(
        `cannot read identity file ${path} for ${host.name}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'read failed')}`,
        code === 'ENOENT'
          ? `fix identity_file of ${host.name}, or create a key: ssh-keygen -t ed25519 -f ${path}`
          : `make ${path} readable by this user`,
        where,
        { cause },
      );
    }
    if (isSecurityKey(privateKeyType(data))) throw securityKeyRefusal(host, path);
    const parsed = ssh2.utils.parseKey(data);
    if (!(parsed instanceof Error)) {
      keys.push({ path, data, encrypted: false });
      continue;
    }
    if (!/encrypted|passphrase/i.test(parsed.message)) {
      throw new EnvError(
        `identity file ${path} for ${host.name} is not a usable private key: ${parsed.message}`,
        'use an ed25519, ecdsa or rsa key in OpenSSH or PEM format, or ssh_client: openssh for other kinds',
        where,
      );
    }
    // An encrypted key is asked for at its turn; without a terminal only the agent's copy can serve.
    if (interactive) keys.push({ path, data, encrypted: true });
    else if (!agent) {
      throw new EnvError(
        `identity file ${path} for ${host.name} is encrypted, and there is neither a terminal to ask for its passphrase nor an ssh-agent`,
        `load it into ssh-agent (eval "$(ssh-agent)" && ssh-add ${path}), or run moshctl in a terminal`,
        where,
      );
    }
  }
  const tried = [
    ...(agent ? [`ssh-agent keys (${agent})`] : []),
    ...keys.map((k) => `key ${k.path}`),
    ...(interactive ? ['keyboard-interactive and password prompts'] : []),
  ];
  const why =
    host.identity_agent === 'none'
      ? 'IdentityAgent none'
      : wanted
        ? `no socket at ${wanted}`
        : 'SSH_AUTH_SOCK is not set';
  const noKey =
    !agent && keys.length === 0
      ? `no identity file (none named, and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa), no ssh-agent (${why})`
      : undefined;
  if (tried.length === 0) {
    throw new EnvError(
      `no key to log in to ${host.name} with: ${noKey ?? ''}, and no terminal to ask for a password`,
      noKeyHint(host),
      where,
    );
  }
  return { agent, keys, tried: tried.join(', '), noKey };
}

/** How to get a key, for "no key to log in with". */
export function noKeyHint(host: SshHost): string {
  return `set identity_file for ${host.name}, create a key (ssh-keygen -t ed25519), or start ssh-agent and ssh-add your key`;
}

type Method = AnyAuthMethod;

/**
 * ssh2's authHandler: each call hands over the next method the server still
 * accepts. A partial success (AuthenticationMethods publickey,keyboard-interactive)
 * goes on down the same list.
 */
export function authHandler(
  host: SshHost,
  auth: HopAuth,
  ssh2: Ssh2Module,
  prompter: Prompter | undefined,
  clock: PromptClock,
): AuthHandlerMiddleware {
  const username = host.user;
  const ask = async (prompt: string, echo: boolean): Promise<string> => {
    if (!prompter) throw new Error('no terminal');
    clock.pause();
    try {
      return await prompter.ask(prompt, echo, clock.signal);
    } finally {
      clock.resume();
    }
  };
  // Each entry names the server-side method it needs, so nothing prompts for a method the server would refuse.
  const queue: { kind: AuthenticationType; make: () => Promise<Method | undefined> }[] = [];
  const agent = auth.agent;
  if (agent)
    queue.push({ kind: 'publickey', make: () => Promise.resolve({ type: 'agent', username, agent }) });
  for (const k of auth.keys) {
    queue.push({
      kind: 'publickey',
      make: async () => {
        if (!k.encrypted) return { type: 'publickey', username, key: k.data };
        const known = unlocked.get(k.path);
        if (known?.data.equals(k.data)) return { type: 'publickey', username, key: known.key };
        // A wrong passphrase gets three tries, as ssh gives.
        for (let i = 0; i < 3; i++) {
          const passphrase = await ask(`Enter passphrase for key '${k.path}': `, false);
          const key = ssh2.utils.parseKey(k.data, passphrase);
          if (!(key instanceof Error)) {
            unlocked.set(k.path, { data: k.data, key });
            return { type: 'publickey', username, key };
          }
          prompter?.say('Bad passphrase, try again.');
        }
        return undefined;
      },
    });
  }
  if (prompter?.interactive) {
    const kbd: KeyboardInteractiveAuthMethod['prompt'] = (name, instructions, _lang, prompts, finish) => {
      void (async () => {
        if (name) prompter.say(`${host.name}: ${name}`);
        if (instructions) prompter.say(instructions);
        const answers: string[] = [];
        for (const p of prompts) answers.push(await ask(`(${host.name}) ${p.prompt}`, p.echo === true));
        finish(answers);
      })().catch((err: unknown) => {
        if (err instanceof Interrupted) clock.interrupt(err);
        else finish([]);
      });
    };
    queue.push({
      kind: 'keyboard-interactive',
      make: () => Promise.resolve({ type: 'keyboard-interactive', username, prompt: kbd }),
    });
    queue.push({
      kind: 'password',
      make: async () => ({
        type: 'password',
        username,
        password: await ask(`${username}@${host.address}'s password: `, false),
      }),
    });
  }
  return (methodsLeft, _partial, next) => {
    void (async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        if (methodsLeft && !methodsLeft.includes(item.kind)) continue;
        const m = await item.make();
        if (m) return m;
      }
      return false as const;
    })().then(
      // ssh2 takes false for "no more methods"; its typings leave that out.
      (m) => next(m as Method),
      (err: unknown) => {
        // Interrupted: the connect ends here (the socket is dropped), so ssh2 is not told to go on.
        if (err instanceof Interrupted) clock.interrupt(err);
        else next(false as unknown as Method);
      },
    );
  };
}
