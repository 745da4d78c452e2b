// Checks for every value that reaches a relay's command line: the socat/nc
// commands (commands.ts) and the python3/perl launch (launch.ts) share them.
import { UserError } from '../errors.js';

export function invalid(what: string, value: unknown, hint: string): never {
  throw UserError.one(`relay: invalid ${what}: ${JSON.stringify(value)}`, hint);
}

export function checkInt(what: string, n: number, min: number, max: number): number {
  if (!Number.isInteger(n) || n < min || n > max)
    invalid(what, n, `use a whole number from ${min} to ${max}`);
  return n;
}
