// The relay v2 control channel: lines moshctl writes to a relay's stdin and the
// lines it answers on stdout. Pure: no I/O. Both runtimes (runtime/relay.py and
// runtime/relay.pl) speak exactly this; every reply is one line.
//
//   (at start)      MOSHCTL-RELAY LISTEN <port> PID <pid> RUNTIME <python3|perl> [STARTED <field 22 of /proc/PID/stat>]
//                   MOSHCTL-RELAY ERROR <why>           then exit 2, 3 or 5
//   TO <host> <port>  -> OK TO <ip> <port>  |  ERR TO <why>
//   PROBEKEY <32 hex> -> OK PROBEKEY  |  ERR PROBEKEY <why>   (transport auto: answer probes, probe.ts)
//   PING              -> PONG   (and counts as use: see below)
//   STATUS            -> STATUS clients=N proven=N in=N out=N dropped=N last_reply=S target=IP:PORT
//   QUIT              -> BYE, then exit 0
//   anything else     -> ERR <why>
//   (unasked, last)   MOSHCTL-RELAY EXIT idle | refused   then exit 0 or 4
//
// STATUS counts datagrams: in = from clients, out = to clients, dropped = not passed
// on (no target yet, no socket to be had, a send failed). last_reply is whole seconds
// since the last upstream reply, -1 before any; target is `-` until set, and an IPv6
// target is bracketed ([::1]:60001).
//
// What keeps a relay alive (its idle and first-contact timeouts count from the
// latest): a reply from its next hop, a PING from moshctl, a probe carrying its
// key. A session on tcp sends no datagrams through its relays, but still means
// to come back to them; once moshctl is gone, only replies count, as before.

import { checkRelayHost, checkRelayPort, type RelayRuntime } from './launch.js';
import { PROBE_KEY_BYTES } from './probe.js';

export const PING = 'PING\n';
export const STATUS = 'STATUS\n';
export const QUIT = 'QUIT\n';

/** Set or replace the next hop; host is validated as on the launch command line. */
export function toLine(host: string, port: number): string {
  return `TO ${checkRelayHost(host)} ${checkRelayPort(port)}\n`;
}

/** transport auto: the relay before the target answers probes carrying `key` (probe.ts) from now on. */
export function probeKeyLine(key: Buffer): string {
  if (key.length !== PROBE_KEY_BYTES) throw new Error('bug: a probe key is 16 bytes');
  return `PROBEKEY ${key.toString('hex')}\n`;
}

const PORT = String.raw`(\d{1,5})`;
const IP = String.raw`([0-9A-Fa-f.:]{2,45})`;
const EOL = String.raw`\r?\n?$`;

function port(text: string | undefined): number | undefined {
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

export type ListenLine =
  { port: number; pid: number; runtime: RelayRuntime; started?: string } | { error: string };

/** The relay's first line: where it listens and which process it is, or why it did not start. */
export function parseListen(line: string): ListenLine | undefined {
  const ok = new RegExp(
    `^MOSHCTL-RELAY LISTEN ${PORT} PID (\\d{1,10}) RUNTIME (python3|perl)(?: STARTED (\\d{1,20}))?${EOL}`,
  ).exec(line);
  if (ok) {
    const p = port(ok[1]);
    const pid = Number(ok[2]);
    if (p === undefined || pid < 2 || pid > 4194304)
      return { error: `relay printed an impossible port or pid: ${line.trim()}` };
    return { port: p, pid, runtime: ok[3] as RelayRuntime, ...(ok[4] ? { started: ok[4] } : {}) };
  }
  const err = new RegExp(`^MOSHCTL-RELAY ERROR ([ -~]+?)${EOL}`).exec(line);
  return err ? { error: err[1] ?? '' } : undefined;
}

export type ToReply = { ip: string; port: number } | { error: string };

/** The answer to a TO line: the address the relay resolved and now forwards to, or why not. */
export function parseOk(line: string): ToReply | undefined {
  const ok = new RegExp(`^OK TO ${IP} ${PORT}${EOL}`).exec(line);
  const p = port(ok?.[2]);
  if (ok?.[1] && p !== undefined) return { ip: ok[1], port: p };
  const err = new RegExp(`^ERR TO ([ -~]+?)${EOL}`).exec(line);
  return err ? { error: err[1] ?? '' } : undefined;
}

export interface RelayStatus {
  clients: number;
  proven: number;
  in: number;
  out: number;
  dropped: number;
  /** Whole seconds since the last upstream reply; undefined before the first. */
  lastReply: number | undefined;
  target: { ip: string; port: number } | undefined;
}

export function parseStatus(line: string): RelayStatus | undefined {
  const n = String.raw`(\d{1,20})`;
  const m = new RegExp(
    `^STATUS clients=${n} proven=${n} in=${n} out=${n} dropped=${n} last_reply=(-1|\\d{1,20}) ` +
      `target=(-|${IP}:${PORT}|\\[${IP}\\]:${PORT})${EOL}`,
  ).exec(line);
  if (!m) return undefined;
  const ip = m[8] ?? m[10];
  const p = port(m[9] ?? m[11]);
  if (m[7] !== '-' && (ip === undefined || p === undefined)) return undefined;
  return {
    clients: Number(m[1]),
    proven: Number(m[2]),
    in: Number(m[3]),
    out: Number(m[4]),
    dropped: Number(m[5]),
    lastReply: m[6] === '-1' ? undefined : Number(m[6]),
    target: ip !== undefined && p !== undefined ? { ip, port: p } : undefined,
  };
}

/**
 * The answer to a PROBEKEY line: true, or why not. A bare ERR counts too (a
 * relay that does not know the command): it is answered before the TO sent
 * after it, so reading on would swallow that TO's answer.
 */
export function parseProbeKeyOk(line: string): true | { error: string } | undefined {
  if (new RegExp(`^OK PROBEKEY${EOL}`).test(line)) return true;
  const err = new RegExp(`^ERR (?:PROBEKEY )?([ -~]+?)${EOL}`).exec(line);
  return err ? { error: err[1] ?? '' } : undefined;
}

/** PONG, BYE, a bare ERR, or anything else (undefined). */
export function parseSimple(line: string): 'PONG' | 'BYE' | { error: string } | undefined {
  const m = new RegExp(`^(PONG|BYE|ERR ([ -~]+?))${EOL}`).exec(line);
  if (!m) return undefined;
  if (m[2] !== undefined) return { error: m[2] };
  return m[1] === 'PONG' ? 'PONG' : 'BYE';
}

/** The line a relay prints just before it exits on its own: why it ended. */
export function parseExit(line: string): 'idle' | 'refused' | undefined {
  const m = new RegExp(`^MOSHCTL-RELAY EXIT (idle|refused)${EOL}`).exec(line);
  return m ? (m[1] as 'idle' | 'refused') : undefined;
}
