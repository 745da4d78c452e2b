// `moshctl completion`: each script is loaded into a real bash, zsh and fish,
// completion is driven there, and host names come back from a moshctl bundled
// from these sources (dist/ may be stale or in use, so it is not touched).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completionModel } from '../../src/cli/completion/model.js';
import { sshConfigHosts } from '../../src/cli/completion/ssh-hosts.js';
import { commands, globalOptions } from '../../src/cli/spec.js';
import { predictModes } from '../../src/config/mosh-programs.js';
import { moshTransports } from '../../src/config/types.js';
import { findOnPath } from '../../src/which.js';
import { run } from './helpers.js';

const root = resolve(import.meta.dirname, '../..');
const has = (shell: string): boolean => findOnPath(shell, process.env.PATH) !== undefined;
const sorted = (list: readonly string[]): string[] => [...list].sort();

/**
 * The CLI bundled from these sources (scripts/build-cli.mjs, as `npm run
 * build` does, without the precompiled schema) into DIR/dist/bundle, beside
 * copies of bin/ and schemas/. esbuild takes about a second.
 */
function buildMoshctl(dir: string): void {
  // First what the bundle reads beside it: the build checks that it is there.
  for (const folder of ['bin', 'schemas']) cpSync(join(root, folder), join(dir, folder), { recursive: true });
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-cli.mjs'), join(dir, 'dist/bundle')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`scripts/build-cli.mjs failed (exit ${r.status}):\n${r.stderr}`);
}

/** An executable `moshctl` in DIR running SCRIPT: the scripts find it on PATH, as they would an installed one. */
function onPath(dir: string, script: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'moshctl'), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, 'moshctl'), 0o755);
}

let top = '';
let home = '';
let project = '';
let env: Record<string, string> = {};
const scripts: Record<string, string> = {};

const yaml = (hosts: string[]): string =>
  `version: 1\nhosts:\n${hosts.map((h) => `  ${h}: {address: ${h}.example.com}\n`).join('')}`;
const sshConfig = `# a comment naming Host commented-out
Host gitbox *.corp !nope
  HostName git.example.com
Host alpha "beta"  # words after a # are a comment
Host *
  User someone
Match host matched
Include config.d/*
`;
const projectHosts = ['bastion', 'dev-box'];
const sshHosts = ['gitbox', 'alpha', 'beta', 'included-box'];

beforeAll(async () => {
  top = mkdtempSync(join(tmpdir(), 'moshctl-completion-'));
  home = join(top, 'home');
  project = join(top, 'project');
  mkdirSync(join(home, '.ssh/config.d'), { recursive: true });
  mkdirSync(join(project, 'sub'), { recursive: true });
  writeFileSync(join(home, '.ssh/config'), sshConfig);
  writeFileSync(join(home, '.ssh/config.d/work'), 'Host included-box\n');
  writeFileSync(join(project, 'moshproxy.yaml'), yaml(projectHosts));
  writeFileSync(join(home, 'other.yaml'), yaml(['other-box']));
  buildMoshctl(join(top, 'build'));
  onPath(join(top, 'path'), `exec node '${join(top, 'build/bin/moshctl.js')}' "$@"`);
  env = { PATH: `${join(top, 'path')}:${process.env.PATH ?? ''}`, HOME: home, LANG: 'C.UTF-8' };
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await run(['completion', shell], { cwd: project, env });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    scripts[shell] = join(top, `moshctl.${shell}`);
    writeFileSync(scripts[shell], r.stdout);
  }
}, 30_000);

afterAll(() => rmSync(top, { recursive: true, force: true }));

describe('moshctl completion', () => {
  it('names the shells it knows when given another, with exit 2', async () => {
    const r = await run(['completion', 'tcsh'], { cwd: project, env });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/unknown shell "tcsh".*bash, zsh, fish/);
  });

  it('offers host names where spec.ts has NAME: plan, up, down (and doctor when it exists)', () => {
    const hosts = completionModel().commands.filter((c) => c.positional === 'hosts');
    const expected = ['plan', 'up', 'down', 'doctor'].filter((n) => commands.some((c) => c.name === n));
    expect(sorted(hosts.map((c) => c.name))).toEqual(sorted(expected));
  });
});

describe('moshctl completion __hosts', () => {
  const hostsRun = (argv: string[], extra: Record<string, string> = {}, cwd = project) =>
    run([...argv, 'completion', '__hosts'], { cwd, env: { ...env, ...extra } });

  it("prints moshproxy.yaml's hosts, then ssh_config's single-host names, one per line", async () => {
    expect(await hostsRun([], {}, join(project, 'sub'))).toEqual({
      code: 0,
      stdout: [...projectHosts, ...sshHosts].map((h) => `${h}\n`).join(''),
      stderr: '',
    });
  });

  it('reads the files -f names, else MOSHCTL_FILE, and ssh_config from MOSHCTL_SSH_CONFIG', async () => {
    writeFileSync(join(top, 'ssh_config'), 'Host solo\n');
    const ssh = { MOSHCTL_SSH_CONFIG: join(top, 'ssh_config') };
    expect((await hostsRun(['-f', join(home, 'other.yaml')], ssh, top)).stdout).toBe('other-box\nsolo\n');
    const viaEnv = await hostsRun([], { ...ssh, MOSHCTL_FILE: join(home, 'other.yaml') }, top);
    expect(viaEnv.stdout).toBe('other-box\nsolo\n');
  });

  it.each([
    ['a file that is not YAML', { 'moshproxy.yaml': 'hosts: [unclosed\n' }],
    ['no config at all', {}],
  ])('with %s, still prints the ssh_config hosts, exits 0 and says nothing', async (_, files) => {
    const dir = mkdtempSync(join(top, 'broken-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    expect(await hostsRun([], {}, dir)).toEqual({
      code: 0,
      stdout: sshHosts.map((h) => `${h}\n`).join(''),
      stderr: '',
    });
    expect(await hostsRun(['-f', join(dir, 'missing.yaml')], {}, dir)).toMatchObject({ code: 0, stderr: '' });
  });

  it('reads Host lines without patterns or negations, following Include, from ~/.ssh', () => {
    const config = join(home, '.ssh/config');
    expect(sshConfigHosts(config, home)).toEqual(sshHosts);
  });

  it('leaves out names a shell would read as code', async () => {
    writeFileSync(join(top, 'hostile_config'), 'Host $(touch${IFS}pwned) `id` ok-box a;b\n');
    const r = await hostsRun([], { MOSHCTL_SSH_CONFIG: join(top, 'hostile_config') }, top);
    expect(r).toEqual({ code: 0, stdout: 'ok-box\n', stderr: '' });
  });
});

/** Runs the bash script's completion function as bash would for WORDS (the last is the one at the cursor). */
function bash(words: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string[] {
  const driver = `source "$1" || exit 9
shift
spec=$(complete -p moshctl) || exit 8
fn=\${spec#*-F }
fn=\${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=\${#COMP_LINE}
"$fn" moshctl "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', driver, 'bash', scripts.bash ?? '', ...words], {
    cwd: opts.cwd ?? project,
    env: opts.env ?? { ...env, MOSHCTL_FILE: join(project, 'moshproxy.yaml') },
    encoding: 'utf8',
    timeout: 10_000,
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

const longOptions = (name: string): string[] =>
  [...Object.keys(globalOptions), ...Object.keys(commands.find((c) => c.name === name)?.options ?? {})].map(
    (o) => `--${o}`,
  );

describe('bash', () => {
  it('completes the command names of spec.ts, by prefix', () => {
    expect(bash(['moshctl', ''])).toEqual(commands.map((c) => c.name));
    expect(bash(['moshctl', 'co'])).toEqual(['config', 'completion']);
    expect(bash(['moshctl', '-f', 'x.yaml', 'st'])).toEqual(['status']);
  });

  it("completes a command's options and the global ones", () => {
    expect(sorted(bash(['moshctl', 'up', '--']))).toEqual(sorted(longOptions('up')));
    expect(bash(['moshctl', 'up', '--']).filter((o) => !longOptions('up').includes(o))).toEqual([]);
    expect(bash(['moshctl', 'up', '--tr'])).toEqual(['--transport']);
    expect(bash(['moshctl', 'validate', '-'])).toContain('-f');
  });

  it('completes the values of --transport, also after --transport=', () => {
    expect(bash(['moshctl', 'up', '--transport', ''])).toEqual([...moshTransports]);
    expect(bash(['moshctl', 'plan', 'box', '--transport', 't'])).toEqual(['tcp']);
    // bash splits `--transport=t` at the `=`: the word to complete is only `t`.
    expect(bash(['moshctl', 'up', '--transport', '=', 't'])).toEqual(['tcp']);
    expect(bash(['moshctl', 'up', '--transport', '='])).toEqual([...moshTransports]);
  });

  it('offers ssh and any for --bind-server (an address is typed)', () => {
    expect(bash(['moshctl', 'up', 'box', '--bind-server', ''])).toEqual(['ssh', 'any']);
    expect(bash(['moshctl', 'plan', 'box', '--bind-server', 'a'])).toEqual(['any']);
  });

  it("completes --predict's modes, as mosh's --predict", () => {
    expect(bash(['moshctl', 'up', 'box', '--predict', ''])).toEqual([...predictModes]);
    expect(bash(['moshctl', 'up', 'box', '--predict', 'e'])).toEqual(['experimental']);
  });

  it.each(['up', 'plan', 'down'])('completes host names after %s, asking moshctl', (name) => {
    expect(bash(['moshctl', name, ''])).toEqual([...projectHosts, ...sshHosts]);
    expect(bash(['moshctl', name, 'd'])).toEqual(['dev-box']);
  });

  it('passes -f FILE typed on the line to moshctl, in each spelling', () => {
    const other = ['other-box', ...sshHosts];
    expect(bash(['moshctl', '-f', join(home, 'other.yaml'), 'up', ''])).toEqual(other);
    expect(bash(['moshctl', 'up', '--file', '=', join(home, 'other.yaml'), ''])).toEqual(other);
    expect(bash(['moshctl', 'down', '-f', '~/other.yaml', ''])).toEqual(other);
    expect(bash(['moshctl', 'down', '-f', `'${join(home, 'other.yaml')}'`, ''])).toEqual(other);
  });

  it('finds moshproxy.yaml upwards from the working folder, as the commands do', () => {
    const noFile = { ...env };
    expect(bash(['moshctl', 'up', 'b'], { cwd: join(project, 'sub'), env: noFile })).toEqual([
      'bastion',
      'beta',
    ]);
  });

  it('offers no host where none goes: a second argument, validate, after --', () => {
    for (const words of [
      ['moshctl', 'up', 'box', ''],
      ['moshctl', 'validate', ''],
      ['moshctl', 'up', 'box', '--', ''],
    ]) {
      expect(bash(words)).not.toContain('bastion');
    }
    expect(bash(['moshctl', 'up', 'box', ''])).toContain('--transport');
  });

  it('completes the shells after completion, and file names after -f', () => {
    expect(bash(['moshctl', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
    expect(bash(['moshctl', '-f', 'mosh'])).toEqual(['moshproxy.yaml']);
  });

  it("takes moshctl's answer as plain words, never as code or patterns", () => {
    const fake = join(top, 'fake-path');
    onPath(fake, `printf '%s\\n' '$(touch pwned)' '*' 'ok-box'`);
    const words = bash(['moshctl', 'up', ''], { env: { ...env, PATH: `${fake}:${env.PATH ?? ''}` } });
    expect(words).toEqual(['$(touch pwned)', '*', 'ok-box']);
    expect(existsSync(join(project, 'pwned'))).toBe(false);
  });
});

/**
 * Completes LINE in an interactive zsh on a pseudo-terminal (zsh/zpty), as if
 * TAB were pressed at its end. A compadd wrapper writes each match the
 * completion functions add to a file; comppostfuncs says when completion ended.
 */
function zsh(line: string): string[] {
  const dir = mkdtempSync(join(top, 'zsh-'));
  const [setup, matches, done] = ['setup.zsh', 'matches', 'done'].map((f) => join(dir, f)) as [
    string,
    string,
    string,
  ];
  writeFileSync(
    setup,
    `PROMPT= RPROMPT=
autoload -U compinit && compinit -u -D
zstyle ':completion:*' insert-tab false
source ${scripts.zsh ?? ''}
compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return; fi
  local -a hits
  builtin compadd -A hits "$@"
  (( $#hits )) && print -rl -- "\${hits[@]}" >> ${matches}
  builtin compadd "$@"
}
_test_done() { : > ${done} }
comppostfuncs=(_test_done)
`,
  );
  const driver = `zmodload zsh/zpty || exit 9
zpty z zsh -f -i
zpty -w z "source $1"
zpty -n -w z "$2"$'\\t'
local out
for i in {1..250}; do
  while zpty -rt z out; do :; done
  [[ -e $3 ]] && break
  sleep 0.02
done
zpty -d z
[[ -e $3 ]] || { print -u2 'completion did not finish'; exit 3 }`;
  const r = spawnSync('zsh', ['-f', '-c', driver, 'zsh', setup, line, done], {
    cwd: project,
    env: { ...env, MOSHCTL_FILE: join(project, 'moshproxy.yaml') },
    encoding: 'utf8',
    timeout: 10_000,
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return existsSync(matches) ? readFileSync(matches, 'utf8').split('\n').filter(Boolean) : [];
}

describe.skipIf(!has('zsh'))('zsh (skipped when zsh is not installed; scripts/setup.sh installs it)', () => {
  it('parses (zsh -n)', () => {
    const r = spawnSync('zsh', ['-n', scripts.zsh ?? ''], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('completes commands, options and --transport values', () => {
    expect(sorted(zsh('moshctl '))).toEqual(sorted(commands.map((c) => c.name)));
    expect(sorted(zsh('moshctl up --'))).toEqual(sorted(longOptions('up')));
    expect(zsh('moshctl up --transport ')).toEqual([...moshTransports]);
    expect(zsh('moshctl completion ')).toEqual(['bash', 'zsh', 'fish']);
  });

  it('completes host names, with the -f FILE typed after the command', () => {
    expect(zsh('moshctl up --debug ')).toEqual([...projectHosts, ...sshHosts]);
    expect(zsh(`moshctl down -f ${join(home, 'other.yaml')} `)).toEqual(['other-box', ...sshHosts]);
  });
});

/** Completes LINE in fish (`complete -C`), with the script sourced. */
function fish(line: string): string[] {
  const r = spawnSync(
    'fish',
    ['--no-config', '-c', 'source $argv[1]; and complete -C $argv[2]', scripts.fish ?? '', line],
    {
      cwd: project,
      env: { ...env, MOSHCTL_FILE: join(project, 'moshproxy.yaml') },
      encoding: 'utf8',
      timeout: 10_000,
    },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t')[0] ?? '');
}

describe.skipIf(!has('fish'))(
  'fish (skipped when fish is not installed; scripts/setup.sh installs it)',
  () => {
    it('parses (fish --no-execute)', () => {
      const r = spawnSync('fish', ['--no-config', '--no-execute', scripts.fish ?? ''], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    });

    it('completes commands, options and --transport values', () => {
      expect(fish('moshctl ')).toEqual(sorted(commands.map((c) => c.name)));
      expect(fish('moshctl up --')).toEqual(sorted(longOptions('up')));
      expect(fish('moshctl plan --transport ')).toEqual(sorted(moshTransports));
      expect(fish('moshctl completion ')).toEqual(sorted(['bash', 'zsh', 'fish']));
    });

    it('completes host names, with the -f FILE typed before the command', () => {
      expect(fish('moshctl up ')).toEqual(sorted([...projectHosts, ...sshHosts]));
      expect(fish(`moshctl -f ${join(home, 'other.yaml')} plan `)).toEqual(
        sorted(['other-box', ...sshHosts]),
      );
    });
  },
);
