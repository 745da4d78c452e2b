// Bundles the CLI into dist/bundle/ with esbuild, for bin/moshctl.js. Measured
// (docs/benchmarks.md, section 5): resolving and loading some 150 modules of
// dist/ and node_modules was most of moshctl's own start, and Node's ES module
// loader alone costs --version about 8 % of `node -e 0`. So the bundle is
// CommonJS, in files loaded only by the commands that need them:
//
//   moshctl.cjs          main.ts: command line, help, --version, error reports
//   command-NAME.cjs     one per command main.ts imports on demand (validate,
//                        plan, session for up/down/status, ...); the modules
//                        moshctl.cjs holds are not copied into them but taken
//                        from it (one UserError class, one of every module)
//   vendor-NAME.cjs      listr2, which up loads only once it runs
//                        a program or draws its progress
//   schema-validator.cjs the precompiled schema validator (build-schema.mjs)
//   runtime/             the relay and forwarder programs sent to hosts
//
// ssh2 stays in node_modules: it loads optional native modules by paths of its own.
// The bundle reads files beside it as the tsc output in dist/ does beside its
// modules (./runtime/, ./schema-validator.cjs, ../../package.json and the schema):
// dist/bundle/ is two folders deep like dist/cli/, so the same relative paths
// work from both, and checkPaths fails the build for a path that does not.
//
//   node scripts/build-cli.mjs           dist/bundle/, with dist/config/schema-validator.cjs
//   node scripts/build-cli.mjs OUTDIR    elsewhere (tests), without it: the schema is compiled at run time
import { build } from 'esbuild';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { createRequire, isBuiltin } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const MAIN = 'src/cli/main.ts';
const CORE = 'moshctl.cjs';
const VALIDATOR = 'schema-validator.cjs';
const NOTICES = 'THIRD-PARTY-NOTICES.txt';

/**
 * The programs sent to hosts, src/<folder>/runtime/<file>, read from ./runtime/
 * beside the module that sends them (src/relay/script.ts, src/tcp/script.ts):
 * in the bundle one folder holds them all, so their names must differ.
 */
function runtimeFiles() {
  const files = readdirSync(join(root, 'src'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, 'src', d.name, 'runtime')))
    .flatMap((d) =>
      readdirSync(join(root, 'src', d.name, 'runtime')).map((f) => `src/${d.name}/runtime/${f}`),
    );
  const names = files.map((f) => basename(f));
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) throw new Error(`build-cli: two runtime programs named ${twice.join(', ')}`);
  return files;
}

/**
 * Node's own modules that a fresh process has not loaded yet and that cost
 * to load: node:net alone ~2 ms, node:crypto ~2 ms (measured). Imported
 * statically all over src/, they load with a command file even when that
 * command never calls them; in the bundle each loads on its first use.
 */
const LAZY_BUILTINS = new Set([
  'child_process',
  'crypto',
  'dgram',
  'dns',
  'dns/promises',
  'fs/promises',
  'net',
  'os',
  'readline',
  'stream',
  'stream/promises',
  'timers/promises',
  'tty',
]);

/** Packages loaded with import() where they are needed, each a file of its own. */
const VENDORS = ['listr2'];

const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // import() of a bundled file becomes require(): Node's ES module loader is never started.
  supported: { 'dynamic-import': false },
  external: ['ssh2'],
  // import.meta.url in CommonJS: this file's own URL (the bundle's files all sit in one folder).
  define: { 'import.meta.url': '__moshctlFileUrl' },
  banner: { js: "var __moshctlFileUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [builtinShims()],
  // --debug maps stack traces to src/ (bin/moshctl.js turns source maps on for it).
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
};

/**
 * Builds the bundle into `outdir`. `validator` is the standalone schema
 * validator scripts/build-schema.mjs wrote; without it (a test's quick build)
 * the bundle compiles the schema at run time, as the sources do.
 */
export async function buildCli({
  outdir = join(root, 'dist/bundle'),
  validator = join(root, 'dist/config/schema-validator.cjs'),
} = {}) {
  rmSync(outdir, { recursive: true, force: true });
  const commands = commandModules();
  const core = await coreModules();
  const inputs = [];
  const built = async (options) => {
    const { metafile } = await build({ ...options, metafile: true });
    inputs.push(...Object.keys(metafile.inputs));
  };
  await built({
    ...common,
    stdin: { contents: coreEntry(core), resolveDir: root, sourcefile: 'moshctl-core.js', loader: 'js' },
    outfile: join(outdir, CORE),
    plugins: [builtinShims(), commandsApart(commands)],
  });
  await built({
    ...common,
    entryPoints: Object.fromEntries(commands.map((c) => [`command-${c.name}`, c.path])),
    outdir,
    outExtension: { '.js': '.cjs' },
    plugins: [builtinShims(), fromCore(core), vendorsApart()],
  });
  await built({
    ...common,
    entryPoints: Object.fromEntries(VENDORS.map((v) => [`vendor-${v}`, v])),
    outdir,
    outExtension: { '.js': '.cjs' },
  });
  mkdirSync(join(outdir, 'runtime'), { recursive: true });
  for (const file of runtimeFiles()) copyFileSync(join(root, file), join(outdir, 'runtime', basename(file)));
  const precompiled = Boolean(validator && existsSync(validator));
  if (precompiled) await built({ ...common, entryPoints: [validator], outfile: join(outdir, VALIDATOR) });
  writeNotices(join(outdir, NOTICES), inputs);
  // Without it src/config/schema.ts compiles the schema: slower, not wrong.
  checkPaths(outdir, precompiled ? [] : [`./${VALIDATOR}`]);
}

/**
 * The packages the bundle holds copies of, each with its license: their
 * licenses (MIT, ISC and the like) ask that copies carry the notice.
 */
function writeNotices(file, inputs) {
  const dirs = new Set(
    inputs.flatMap((p) => {
      const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(p);
      return m ? [m[1]] : [];
    }),
  );
  const parts = [...dirs].sort().map((dir) => {
    const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
    const license = readdirSync(join(root, dir)).find((f) => /^licen[cs]e/i.test(f));
    const text = license ? readFileSync(join(root, dir, license), 'utf8').trim() : `License: ${pkg.license}`;
    return `${pkg.name} ${pkg.version} (${pkg.license})\n\n${text}\n`;
  });
  if (parts.length === 0) throw new Error('build-cli: no package in the bundle (has the metafile changed?)');
  writeFileSync(
    file,
    `moshctl's bundle (dist/bundle/) holds code of these packages, under their licenses:\n\n${parts.join(`\n${'-'.repeat(72)}\n\n`)}`,
  );
}

/** The commands main.ts imports on demand: `import('./commands/NAME.js')`. */
function commandModules() {
  const text = readFileSync(join(root, MAIN), 'utf8');
  const names = [...new Set([...text.matchAll(/import\('\.\/commands\/([\w-]+)\.js'\)/g)].map((m) => m[1]))];
  if (names.length === 0)
    throw new Error(`build-cli: ${MAIN} imports no command with import('./commands/NAME.js')`);
  return names.map((name) => ({ name, path: `src/cli/commands/${name}.ts` }));
}

/** Every module of src/ that main.ts loads before any command: the ones moshctl.cjs holds. */
async function coreModules() {
  const { metafile } = await build({
    ...common,
    entryPoints: [MAIN],
    write: false,
    outdir: 'unused',
    metafile: true,
    plugins: [builtinShims(), commandsApart(commandModules())],
  });
  const modules = Object.keys(metafile.inputs).filter((p) => p.startsWith('src/'));
  const outside = Object.keys(metafile.inputs).filter(
    (p) => !p.startsWith('src/') && !p.startsWith('builtin-shim:'),
  );
  if (outside.length > 0)
    throw new Error(`build-cli: ${MAIN} loads packages at start: ${outside.join(', ')}`);
  return modules;
}

/** moshctl.cjs: main.ts's exports, and each of its modules by path for the command files. */
function coreEntry(modules) {
  return [
    `export * from './${MAIN}';`,
    ...modules.map((m, i) => `import * as m${i} from './${m}';`),
    `export const __modules = { ${modules.map((m, i) => `${JSON.stringify(m)}: m${i}`).join(', ')} };`,
  ].join('\n');
}

/**
 * `import { isIP } from 'node:net'` (or require('net')) of a module in
 * LAZY_BUILTINS gets an object whose properties load the module when first
 * read: the same functions, classes and values, later. Its names are the ones
 * the building Node has, which the runtime's (engines: >= 20.11) also has.
 *
 * node:module the same way, but for one function: createRequire(import.meta.url)
 * is the require() this file was given. For `./NAME.cjs` beside it, that is
 * bin/code-cache.js's, which takes the file from the code cache (the schema
 * validator, 78 kB: ~2 ms at every start otherwise); else it is Node's, as
 * createRequire would have made it.
 */
function builtinShims() {
  const nodeRequire = createRequire(import.meta.url);
  return {
    name: 'builtin-shims',
    setup(b) {
      b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
        const name = args.path.replace(/^node:/, '');
        if (!(LAZY_BUILTINS.has(name) || name === 'module') || !isBuiltin(args.path)) return undefined;
        // The shim's own require() is of Node's module.
        if (args.namespace === 'builtin-shim') return { path: args.path, external: true };
        return { path: name, namespace: 'builtin-shim' };
      });
      b.onLoad({ filter: /.*/, namespace: 'builtin-shim' }, (args) => {
        const names = Object.keys(nodeRequire(`node:${args.path}`)).filter(
          (n) => !(args.path === 'module' && n === 'createRequire'),
        );
        const own =
          args.path === 'module'
            ? [
                '  createRequire: {',
                '    enumerable: true,',
                '    value: (from) => (from === __moshctlFileUrl ? ownRequire : load().createRequire(from)),',
                '  },',
              ]
            : [];
        return {
          contents: [
            'let loaded;',
            `const load = () => (loaded ??= require(${JSON.stringify(`node:${args.path}`)}));`,
            ...(args.path === 'module' ? ['const ownRequire = require;'] : []),
            // The names on a prototype: esbuild's __toESM copies an import's own properties, at every import.
            `module.exports = Object.create(Object.defineProperties({}, {`,
            ...names.map(
              (n) => `  ${JSON.stringify(n)}: { enumerable: true, get: () => load()[${JSON.stringify(n)}] },`,
            ),
            ...own,
            '}));',
          ].join('\n'),
          loader: 'js',
        };
      });
    },
  };
}

/** main.ts's import('./commands/NAME.js') loads command-NAME.cjs. */
function commandsApart(commands) {
  const names = new Set(commands.map((c) => c.name));
  return {
    name: 'commands-apart',
    setup(b) {
      b.onResolve({ filter: /^\.\/commands\/[\w-]+\.js$/ }, (args) => {
        const name = args.path.slice('./commands/'.length, -'.js'.length);
        if (relative(root, args.importer) !== MAIN || !names.has(name)) return undefined;
        return { path: `./command-${name}.cjs`, external: true };
      });
    },
  };
}

/** In a command file, a module moshctl.cjs holds is taken from it, not copied. */
function fromCore(core) {
  const held = new Set(core);
  return {
    name: 'from-core',
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, async (args) => {
        if (args.pluginData === 'from-core') return undefined;
        const r = await b.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: 'from-core',
        });
        if (r.errors.length > 0 || r.external) return r;
        const key = relative(root, r.path);
        return held.has(key) ? { path: key, namespace: 'moshctl-core' } : r;
      });
      b.onResolve({ filter: new RegExp(`^\\./${CORE.replace('.', '\\.')}$`) }, (args) => ({
        path: args.path,
        external: true,
      }));
      b.onLoad({ filter: /.*/, namespace: 'moshctl-core' }, (args) => ({
        // Its names reached through the prototype: nothing for esbuild's __toESM to copy at each import.
        contents: `module.exports = Object.create(require('./${CORE}').__modules[${JSON.stringify(args.path)}]);`,
        loader: 'js',
        resolveDir: root,
      }));
    },
  };
}

/** import('listr2') loads vendor-listr2.cjs. */
function vendorsApart() {
  return {
    name: 'vendors-apart',
    setup(b) {
      b.onResolve({ filter: new RegExp(`^(${VENDORS.join('|')})$`) }, (args) => ({
        path: `./vendor-${args.path}.cjs`,
        external: true,
      }));
    },
  };
}

/**
 * Every file the bundle names relative to itself (new URL('./…', import.meta.url),
 * require('./…'), require.resolve('../…')) must exist beside it; a missing one
 * would fail only when that code path runs on a user's machine.
 */
function checkPaths(outdir, optional) {
  const missing = [];
  for (const file of readdirSync(outdir).filter((f) => f.endsWith('.cjs'))) {
    const text = readFileSync(join(outdir, file), 'utf8');
    const named = [
      ...text.matchAll(/new URL\(\s*["'](\.{1,2}\/[^"']+)["'],\s*__moshctlFileUrl\s*\)/g),
      // esbuild renames a module's own `require` (require2, ...) beside the one CommonJS gives.
      ...text.matchAll(
        /(?:\brequire\d*(?:\.resolve)?|createRequire\)?\(__moshctlFileUrl\))\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
      ),
    ].map((m) => m[1]);
    for (const path of named)
      if (!optional.includes(path) && !existsSync(resolve(outdir, path))) missing.push(`${file}: ${path}`);
  }
  if (missing.length > 0)
    throw new Error(`build-cli: the bundle reads files that are not beside it:\n  ${missing.join('\n  ')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildCli(process.argv[2] ? { outdir: resolve(process.argv[2]), validator: null } : {});
}
