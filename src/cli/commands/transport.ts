// `--transport udp|tcp|auto`, checked here so a typo names the option and the choices.
import { moshTransports, type MoshTransport } from '../../config/types.js';
import { UserError } from '../../errors.js';

export function transportOption(value: unknown): MoshTransport | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (moshTransports as readonly string[]).includes(value))
    return value as MoshTransport;
  throw UserError.one(
    `--transport ${JSON.stringify(value)}: not a transport`,
    `use one of: ${moshTransports.join(', ')}`,
  );
}
