// The schema precompiled by the build must report exactly what the runtime
// compile reports; otherwise users of the built CLI would see other errors
// than the tests check.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import AjvModule from 'ajv';
import { readFileSync } from 'node:fs';
import { addKeywords, ajvOptions, appendErrorsInPlace } from '../../src/config/schema-options.js';

const built = resolve(import.meta.dirname, '../../dist/config/schema-validator.cjs');
const missing = existsSync(built) ? undefined : 'dist/ is not built (npm run build)';
if (missing) console.warn(`skipping the precompiled schema test: ${missing}`);

const samples = [
  'version: 1\nhosts:\n  a: {address: x}\n',
  'version: 2\nhost: {}\n',
  'version: 1\ndefaults: {user: "x;y", port: 0, usr: 1}\nhosts:\n  "e;x": {adress: 1, via: [1], relay: {runtime: ruby}}\n',
  'version: 1\nmosh: {network_timeout: 1.5, signal_timeout: -1, server_ports: [1]}\nhosts: {}\n',
  // Errors of several hosts, each host checked by a function of its own whose errors are added to the list.
  'version: 1\nhosts:\n  a: {}\n  b: {adress: x, mosh: {locale: 1}}\n  c: {address: 1, port: 0, relay: {ports: []}}\n',
];

describe.skipIf(missing)('the precompiled schema', () => {
  it('reports the same errors as compiling the schema at run time', () => {
    const precompiled = createRequire(import.meta.url)(built) as ValidateFunction;
    const ajv = new AjvModule.default(ajvOptions);
    addKeywords(ajv);
    const runtime = ajv.compile(
      JSON.parse(
        readFileSync(resolve(import.meta.dirname, '../../schemas/moshproxy.schema.json'), 'utf8'),
      ) as object,
    );
    const summary = (v: ValidateFunction) =>
      (v.errors ?? []).map((e) => [e.keyword, e.instancePath, e.params, e.parentSchema]);
    for (const text of samples) {
      const data: unknown = parse(text);
      expect(precompiled(data)).toBe(runtime(data));
      expect(summary(precompiled)).toEqual(summary(runtime));
    }
  });

  it("adds each host's errors to the list in place (a new list per host made 20 000 bad hosts take seconds)", () => {
    expect(readFileSync(built, 'utf8')).not.toContain('vErrors.concat(');
    expect(
      appendErrorsInPlace(
        'vErrors = vErrors === null ? validate18.errors : vErrors.concat(validate18.errors);',
      ),
    ).toBe(
      '{if (vErrors === null) vErrors = validate18.errors; else for (const e of validate18.errors) vErrors.push(e);};',
    );
  });
});
