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
  const errors = new Errors();
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
          message: `unclosed "\${" in ${shown(input)}`,
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
      message: `a lone "$" in ${shown(input)}`,
      hint: 'write "$$" for a literal "$", or "${NAME}" for a variable',
    });
    out += '$';
    i = dollar + 1;
  }
  return { value: out, errors: errors.list };
}

/**
 * One scalar's errors, each said once and only the first few: a value of
 * thousands of lone "$" is one mistake, not thousands of lines.
 */
class Errors {
  readonly list: InterpolationResult['errors'] = [];
  push(e: InterpolationResult['errors'][number]): void {
    if (this.list.length < 5 && !this.list.some((x) => x.message === e.message)) this.list.push(e);
  }
}

/** The value in a message: quoted, and cut short when long. */
function shown(s: string): string {
  return `"${s.length > 60 ? `${s.slice(0, 57)}...` : s}"`;
}

function expand(expr: string, env: Env, errors: Errors): string {
  const name = NAME.exec(expr)?.[0];
  if (!name) {
    errors.push({
      message: `${shown(`\${${expr}}`)} is not a variable reference`,
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
      message: `unsupported modifier ${shown(rest)} in ${shown(`\${${expr}}`)}`,
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
