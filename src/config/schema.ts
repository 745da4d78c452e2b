// The JSON Schema in schemas/ is the single description of the file format:
// editors use it, and this module turns ajv's errors into positioned problems.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type AjvClass from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Problem } from '../errors.js';
import type { Origins, Position } from './source.js';
import { pointer } from './source.js';
import { suggest } from './suggest.js';
import { addKeywords, ajvOptions } from './schema-options.js';

const require = createRequire(import.meta.url);
export const schemaPath: string = require.resolve('../../schemas/moshproxy.schema.json');

let compiled: ValidateFunction | undefined;

/**
 * The build precompiles the schema (ajv standalone) beside this file: loading
 * it takes ~2 ms where compiling takes ~45 ms, on every command's start.
 */
function validator(): ValidateFunction {
  if (compiled) return compiled;
  try {
    compiled = require('./schema-validator.cjs') as ValidateFunction;
    return compiled;
  } catch {
    // Not built (tests run the sources): compile now.
  }
  // ajv is CommonJS; its default export does not survive NodeNext's ESM interop typing.
  const Ajv = (require('ajv') as { default: typeof AjvClass.default }).default;
  const ajv = new Ajv(ajvOptions);
  addKeywords(ajv);
  compiled = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')) as object);
  return compiled;
}

export function checkSchema(data: unknown, origins: Origins, fallback: Position): Problem[] {
  const validate = validator();
  if (validate(data)) return [];
  const problems: Problem[] = [];
  const errors = validate.errors ?? [];
  // "A path or a list of paths" fails both branches; say it once, with the branch
  // that says most (a bad character in the path), not "must be a list".
  const anyOfAt = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const specific = new Set(
    anyOfAt.size === 0
      ? []
      : errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'type').map((e) => e.instancePath),
  );
  // Problems said once: a set, not a scan of the list per error (thousands of errors would take seconds).
  const said = new Set<string>();
  for (const e of errors) {
    if (anyOfAt.has(e.instancePath) && e.keyword === 'type') continue;
    if (e.keyword === 'anyOf' && specific.has(e.instancePath)) continue;
    const p = toProblem(e, origins, fallback);
    const key = p && `${p.line ?? ''}\n${p.message}`;
    if (p && key && !said.has(key)) {
      said.add(key);
      problems.push(p);
    }
  }
  return problems;
}

/** `/hosts/dev-box/via/0` → `hosts.dev-box.via[0]`, the way a user reads the file. */
export function describePath(ptr: string): string {
  const parts = ptr
    .split('/')
    .slice(1)
    .map((s) => (s.includes('~') ? s.replace(/~1/g, '/').replace(/~0/g, '~') : s));
  return (
    parts.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '') || 'the file'
  );
}

function toProblem(e: ErrorObject, origins: Origins, fallback: Position): Problem | undefined {
  const parent = e.parentSchema as { properties?: Record<string, unknown>; 'x-hint'?: string } | undefined;
  const hint = parent?.['x-hint'];
  const where = (ptr: string, key = false): Position => {
    const o = origins.get(ptr);
    return (key ? o?.key : undefined) ?? o?.value ?? fallback;
  };
  const field = describePath(e.instancePath);
  // Only some messages show the value; the value may be the whole file.
  const shown = (): string => JSON.stringify(e.data);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent?.properties ?? {});
      const guess = suggest(key, known);
      return {
        ...where(pointer(e.instancePath, key), true),
        message: `unknown key "${key}" in ${field}`,
        hint: guess ? `did you mean "${guess}"?` : `known keys here: ${known.join(', ')}`,
      };
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return { ...where(e.instancePath, true), message: `${field} needs "${missing}"`, ...withHint(hint) };
    }
    case 'propertyNames':
      return undefined; // reported by the inner error, which names the key
    case 'pattern': {
      const name = (e as ErrorObject & { propertyName?: string }).propertyName;
      if (name !== undefined) {
        return {
          ...where(pointer(e.instancePath, name), true),
          message: `"${name}" is not a valid name in ${field}`,
          ...withHint(hint),
        };
      }
      return { ...where(e.instancePath), message: `${field}: ${shown()} is not allowed`, ...withHint(hint) };
    }
    case 'type':
      return {
        ...where(e.instancePath),
        message: `${field} must be ${article(String((e.params as { type: string | string[] }).type))}, not ${kind(e.data)}`,
        ...withHint(hint),
      };
    case 'anyOf':
    case 'const':
    case 'enum':
      return {
        ...where(e.instancePath),
        message: `${field}: ${shown()} is not supported`,
        ...withHint(hint),
      };
    default:
      return {
        ...where(e.instancePath),
        message: `${field} ${e.message ?? 'is invalid'}`,
        ...withHint(hint),
      };
  }
}

function withHint(hint: string | undefined): { hint?: string } {
  return hint ? { hint } : {};
}

function kind(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'number') return Number.isInteger(v) ? `the number ${v}` : `the fraction ${v}`;
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function article(type: string): string {
  const words: Record<string, string> = {
    integer: 'a whole number',
    string: 'a string',
    object: 'a map (key: value lines)',
    array: 'a list',
    'string,integer': 'a string or a whole number',
  };
  return words[type] ?? type;
}
