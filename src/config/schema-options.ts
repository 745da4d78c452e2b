// One set of ajv options for the runtime compile (tests, a tree without a
// build) and the build-time standalone compile (scripts/build-schema.mjs), so
// both report errors the same way.
import type AjvClass from 'ajv';

export const ajvOptions = { allErrors: true, verbose: true, strict: true, allowUnionTypes: true } as const;

/** `x-hint` carries the how-to-fix text next to each rule in the schema. */
export function addKeywords(ajv: AjvClass.default): void {
  ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });
}
