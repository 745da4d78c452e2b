// Compose-style interpolation of environment variables in string values.
// Done on parsed scalars (never on raw text) so a variable's value cannot
// change the YAML structure, and so every error keeps the scalar's position.

export type Env = Readonly<Record<string, string | undefined>>;

export interface InterpolationResult {
  value: string;
  /** Set when a `${VAR:?message}` was unset, or the syntax is broken. */
  errors: { message: string; hint: string }[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * `${VAR}` (unset → empty), `${VAR:-default}` (unset or empty → default),
 * `${VAR-default}` (unset → default), `${VAR:?message}` / `${VAR?message}`
 * (error), `$VAR`, and `$$` for a literal `$`.
 */
export function interpolate(input: string, env: Env): InterpolationResult {
  const errors: InterpolationResult['errors'] = [];
  let out = '';
  let i = 0;
  while (i < input.length) {
    const dollar = input.indexOf('$', i);
    if (dollar === -1) {
      out += input.slice(i);
      break;
    }
    out += input.slice(i, dollar);
    const next = input[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
      continue;
    }
    if (next === '{') {
      const close = input.indexOf('}', dollar + 2);
      if (close === -1) {
        errors.push({
          message: `unclosed "\${" in "${input}"`,
          hint: 'close it with "}", or write "$$" for a literal "$"',
        });
        out += input.slice(dollar);
        break;
      }
      const expr = input.slice(dollar + 2, close);
      out += expand(expr, env, errors);
      i = close + 1;
      continue;
    }
    const name = NAME.exec(input.slice(dollar + 1))?.[0];
    if (name) {
      out += env[name] ?? '';
      i = dollar + 1 + name.length;
      continue;
    }
    errors.push({
      message: `a lone "$" in "${input}"`,
      hint: 'write "$$" for a literal "$", or "${NAME}" for a variable',
    });
    out += '$';
    i = dollar + 1;
  }
  return { value: out, errors };
}

function expand(expr: string, env: Env, errors: InterpolationResult['errors']): string {
  const name = NAME.exec(expr)?.[0];
  if (!name) {
    errors.push({
      message: `"\${${expr}}" is not a variable reference`,
      hint: 'use ${NAME}, ${NAME:-default} or ${NAME:?message}; names are letters, digits and "_"',
    });
    return '';
  }
  const rest = expr.slice(name.length);
  const value = env[name];
  const unsetOrEmpty = value === undefined || value === '';
  if (rest === '') return value ?? '';
  const op = /^(:-|-|:\?|\?)/.exec(rest)?.[0];
  if (!op) {
    errors.push({
      message: `unsupported modifier "${rest}" in "\${${expr}}"`,
      hint: 'supported: ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}',
    });
    return '';
  }
  const arg = rest.slice(op.length);
  const missing = op.startsWith(':') ? unsetOrEmpty : value === undefined;
  if (op.endsWith('-')) return missing ? arg : (value ?? '');
  if (missing) {
    errors.push({
      message: `required variable ${name} is ${value === undefined ? 'unset' : 'empty'}${arg ? `: ${arg}` : ''}`,
      hint: `set ${name} in the environment (export ${name}=...) and run again`,
    });
    return '';
  }
  return value ?? '';
}
