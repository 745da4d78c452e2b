// One set of ajv options for the runtime compile (tests, a tree without a
// build) and the build-time standalone compile (scripts/build-schema.mjs), so
// both report errors the same way.
import type AjvClass from 'ajv';

export const ajvOptions = {
  allErrors: true,
  verbose: true,
  strict: true,
  allowUnionTypes: true,
  code: { process: appendErrorsInPlace },
} as const;

/** `x-hint` carries the how-to-fix text next to each rule in the schema. */
export function addKeywords(ajv: AjvClass.default): void {
  ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });
}

/**
 * ajv adds a sub-schema's errors with `vErrors.concat(...)`, a new list per
 * call: with a call per host, 20 000 hosts with a mistake each took seconds
 * (quadratic). Adding them in place gives the same list. The build applies
 * this to the precompiled code too (ajv's standalone code is taken before it).
 */
export function appendErrorsInPlace(code: string): string {
  return code.replace(
    /vErrors = vErrors === null \? (\w+)\.errors : vErrors\.concat\(\1\.errors\)/g,
    '{if (vErrors === null) vErrors = $1.errors; else for (const e of $1.errors) vErrors.push(e);}',
  );
}
