// The npm package as a user gets it: `npm pack` of this folder, installed from
// the tarball into an empty project with no registry, must run, must carry
// the schema editors check moshproxy.yaml with and every file the CLI reads
// at run time, and must not carry the lab, the benchmarks or the tests. The
// CLI it ships is the bundle in dist/bundle/ (scripts/build-cli.mjs); the
// rest of dist/ (tsc's output, for the lab and the benchmarks) stays home.
//
// It packs the dist/ that `npm run build` made (scripts/setup.sh builds before
// `npm run check`) and skips, saying so, when there is none: building here
// would rewrite dist/ under whatever else is running it (e2e tests, a
// benchmark), and a build takes longer than the rest of the unit tests.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const BUNDLE = 'dist/bundle';
const notBuilt = existsSync(join(root, BUNDLE, 'moshctl.cjs'))
  ? undefined
  : 'dist/ is not built (run npm run build, or scripts/setup.sh)';
if (notBuilt) console.warn(`skipping the npm package test: ${notBuilt}`);

const TIMEOUT = 180_000;

interface PackageJson {
  name: string;
  version: string;
  bin: Record<string, string>;
  exports?: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = npmEnv()): Promise<Result> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      { cwd, env, timeout: TIMEOUT - 30_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        // A timeout or a signal has no exit code: keep why in what a failure shows.
        done({ code, stdout, stderr: code === -1 && err ? `${stderr}\n${err.message}` : stderr });
      },
    );
  });
}

/** npm as a user runs it, minus the noise; the cache is the one `npm ci` filled. */
function npmEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

/** Every file under `dir`, relative to `base`, with `/` separators. */
function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? filesUnder(path, base) : [relative(base, path)];
  });
}

/** The programs the CLI sends to hosts (relay, forwarder): src/<folder>/runtime/<file>. */
function runtimePrograms(): string[] {
  return filesUnder(join(root, 'src'))
    .filter((p) => /^[^/]+\/runtime\/[^/]+$/.test(p))
    .sort();
}

/**
 * Files the bundle's code names relative to itself, as the build's own check
 * (scripts/build-cli.mjs) reads them: new URL('./…', import.meta.url) and
 * require('./…'). Each as a path relative to the folder of `dir`'s package.
 */
function namedBeside(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cjs'))
    .flatMap((f) => {
      const text = readFileSync(join(dir, f), 'utf8');
      return [
        ...text.matchAll(/new URL\(\s*["'](\.{1,2}\/[^"']+)["'],\s*__moshctlFileUrl\s*\)/g),
        ...text.matchAll(
          /(?:\brequire\d*(?:\.resolve)?|createRequire\)?\(__moshctlFileUrl\))\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
        ),
      ].map((m) => join(dir, m[1] ?? ''));
    });
}

const PROJECT = 'moshctl-install-test';

/** package-lock.json for an empty project: the packages of this repository's lockfile that are not for development. */
function productionLock(): string {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    lockfileVersion: number;
    packages: Record<string, { dev?: boolean; link?: boolean }>;
  };
  const packages = Object.fromEntries(
    Object.entries(lock.packages).filter(
      ([path, p]) => path.startsWith('node_modules/') && !p.dev && !p.link,
    ),
  );
  return `${JSON.stringify(
    {
      name: PROJECT,
      lockfileVersion: lock.lockfileVersion,
      requires: true,
      packages: { '': { name: PROJECT }, ...packages },
    },
    null,
    2,
  )}\n`;
}

const temps: string[] = [];
function temp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(notBuilt)('the npm package', () => {
  let tarball = '';
  let packed: string[] = [];

  beforeAll(async () => {
    const out = temp('moshctl-pack-');
    // --ignore-scripts: a prepack script (none today) must not rebuild dist/ under other tests.
    const r = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], root);
    if (r.code !== 0) throw new Error(`npm pack failed (exit ${r.code}):\n${r.stderr}`);
    const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
    if (!info) throw new Error(`npm pack printed no package:\n${r.stdout}`);
    tarball = join(out, info.filename);
    packed = info.files.map((f) => f.path);
  }, TIMEOUT);

  it('holds the CLI, the files it reads at run time, and the schema', () => {
    const required = [
      'package.json',
      'README.md',
      ...Object.values(pkg.bin).map((p) => p.replace(/^\.\//, '')),
      ...Object.values(pkg.exports ?? {}).map((p) => p.replace(/^\.\//, '')),
      'schemas/moshproxy.schema.json',
      // The README links into docs/: on the registry's page and in node_modules those links must work.
      ...readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
      'bin/package.json', // says bin/moshctl.js is CommonJS
      `${BUNDLE}/moshctl.cjs`,
      // scripts/build-schema.mjs: without it every command compiles the schema at start.
      `${BUNDLE}/schema-validator.cjs`,
      ...runtimePrograms().map((p) => `${BUNDLE}/runtime/${p.split('/').pop()}`),
    ];
    expect(runtimePrograms(), 'no src/*/runtime/ program found (have they moved?)').toHaveLength(4);
    expect(
      required.filter((p) => !packed.includes(p)),
      'files the CLI needs that `npm pack` leaves out (package.json "files")',
    ).toEqual([]);
  });

  it('holds every file of the bundle, and nothing else of dist/', () => {
    const bundle = filesUnder(join(root, BUNDLE)).map((p) => `${BUNDLE}/${p}`);
    expect(bundle.filter((p) => p.startsWith(`${BUNDLE}/command-`)).length).toBeGreaterThan(3);
    expect(
      bundle.filter((p) => !packed.includes(p)),
      'files of dist/bundle missing from the package: does package.json "files" leave them out?',
    ).toEqual([]);
    expect(
      packed.filter((p) => p.startsWith('dist/') && !p.startsWith(`${BUNDLE}/`)),
      "tsc's output is for the lab and the benchmarks; the package runs the bundle",
    ).toEqual([]);
  });

  it('leaves out the lab, the benchmarks and the tests', () => {
    const unwanted: [RegExp, string][] = [
      [/^dist\/lab\//, 'the test lab (dist/lab)'],
      [/^src\/lab\//, 'the test lab (src/lab)'],
      [/^scripts\/bench/, 'the benchmarks (scripts/bench*, scripts/bench-lib)'],
      [/^test\//, 'the tests (test/)'],
      [/\.test\.[cm]?[jt]s$/, 'a test file'],
    ];
    const found = packed.flatMap((p) =>
      unwanted.filter(([re]) => re.test(p)).map(([, what]) => `${p}: ${what}`),
    );
    expect(found, 'files the package must not ship').toEqual([]);
  });

  describe('installed from the tarball into an empty project, without a registry', () => {
    let project = '';
    let moshctl = '';
    // Nothing of the user's: no ssh_config (ssh -G reads /dev/null), no state, no config from the environment.
    const cliEnv = (): NodeJS.ProcessEnv => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        MOSHCTL_SSH_CONFIG: '/dev/null',
        XDG_STATE_HOME: join(project, 'state'),
        // bin/code-cache.js keeps V8's code cache there.
        XDG_CACHE_HOME: join(project, 'cache'),
      };
      delete env.MOSHCTL_FILE;
      delete env.MOSHCTL_DEBUG;
      return env;
    };

    beforeAll(async () => {
      project = temp('moshctl-install-');
      // A package.json of its own keeps npm from installing into a parent folder that has one.
      writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: PROJECT, private: true })}\n`);
      // `npm ci` cached the tarballs of package-lock.json, but not the registry's metadata that
      // `npm install` needs to resolve a version range: a lockfile with this repository's
      // production packages lets it take them from the cache, at the versions tested here.
      writeFileSync(join(project, 'package-lock.json'), productionLock());
      const install = ['install', '--no-audit', '--no-fund', tarball];
      let r = await run('npm', [...install, '--offline'], project);
      if (r.code !== 0 && /ENOTCACHED/.test(r.stderr)) {
        // A dependency package-lock.json does not hold (changed without `npm install`): let npm fetch only that.
        console.warn(
          `npm install --offline: not everything was cached; trying --prefer-offline:\n${r.stderr}`,
        );
        r = await run('npm', [...install, '--prefer-offline'], project);
      }
      if (r.code !== 0) throw new Error(`npm install of ${tarball} failed (exit ${r.code}):\n${r.stderr}`);
      moshctl = join(project, 'node_modules/.bin/moshctl');
      writeFileSync(
        join(project, 'moshproxy.yaml'),
        [
          '# yaml-language-server: $schema=./node_modules/moshctl/schemas/moshproxy.schema.json',
          'version: 1',
          'hosts:',
          '  bastion:',
          '    address: bastion.example.com',
          '    user: alice',
          '  dev-box:',
          '    address: 10.0.3.12',
          '    user: alice',
          '    via: [bastion]',
          '',
        ].join('\n'),
      );
      writeFileSync(join(project, 'broken.yaml'), 'version: 2\nhosts:\n  dev-box: {adress: 10.0.3.12}\n');
    }, TIMEOUT);

    it('moshctl --version prints the version of package.json, the first time and from its code cache', async () => {
      for (let i = 0; i < 2; i++) {
        expect(await run(moshctl, ['--version'], project, cliEnv())).toEqual({
          code: 0,
          stdout: `moshctl ${pkg.version}\n`,
          stderr: '',
        });
      }
      expect(readdirSync(join(project, 'cache/moshctl/code-cache'))).toHaveLength(1);
    });

    it('moshctl validate -f accepts a good file and refuses a bad one with exit 2', async () => {
      expect(await run(moshctl, ['validate', '-f', 'moshproxy.yaml'], project, cliEnv())).toEqual({
        code: 0,
        stdout: 'ok\n',
        stderr: '',
      });
      const bad = await run(moshctl, ['validate', '-f', 'broken.yaml'], project, cliEnv());
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toContain('broken.yaml:1:');
      expect(bad.stderr).toContain('address');
    });

    it('moshctl plan NAME -f prints the plan', async () => {
      const r = await run(moshctl, ['plan', 'dev-box', '-f', 'moshproxy.yaml'], project, cliEnv());
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toContain('moshctl up dev-box: local → bastion → dev-box');
      expect(r.stdout).toMatch(/^ +\d+\. connect +bastion +ssh alice@bastion\.example\.com:22, direct$/m);
      expect(r.stdout).toMatch(/^ +\d+\. server +dev-box +mosh-server new /m);
      expect(r.stdout).toMatch(/^ +\d+\. relay +bastion /m);
      expect(r.stdout).toMatch(/^ +\d+\. client +local +mosh-client /m);
      expect(r.stdout).toMatch(/^teardown/m);
    });

    it('has every file the installed bundle reads beside it, the programs as in src/', () => {
      const installed = join(project, 'node_modules', pkg.name);
      const named = [...new Set(namedBeside(join(installed, BUNDLE)))].map((p) => relative(installed, p));
      expect(named).toEqual(
        expect.arrayContaining([
          'package.json',
          'schemas/moshproxy.schema.json',
          `${BUNDLE}/schema-validator.cjs`,
          `${BUNDLE}/command-plan.cjs`,
          ...runtimePrograms().map((p) => `${BUNDLE}/runtime/${p.split('/').pop()}`),
        ]),
      );
      expect(named.filter((p) => !existsSync(join(installed, p)))).toEqual([]);
      for (const p of runtimePrograms()) {
        expect(readFileSync(join(installed, BUNDLE, 'runtime', p.split('/').pop() ?? ''), 'utf8'), p).toBe(
          readFileSync(join(root, 'src', p), 'utf8'),
        );
      }
    });

    it('lets editors and tools resolve the schema: moshctl/schema', async () => {
      const r = await run(
        process.execPath,
        ['-e', 'console.log(require.resolve("moshctl/schema"))'],
        project,
      );
      expect(r.stderr).toBe('');
      const path = r.stdout.trim();
      expect(path).toBe(join(project, 'node_modules/moshctl/schemas/moshproxy.schema.json'));
      expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(
        JSON.parse(readFileSync(join(root, 'schemas/moshproxy.schema.json'), 'utf8')),
      );
    });

    it('has no lab, benchmarks or tests on disk', () => {
      const installed = filesUnder(join(project, 'node_modules', pkg.name));
      expect(installed.filter((p) => /^(dist\/lab|src\/lab|scripts\/bench|test)\//.test(p))).toEqual([]);
    });
  });
});
