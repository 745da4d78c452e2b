// transport auto's probe of the UDP path while a session goes by tcp: a
// small datagram that the relay before the target answers itself and never
// forwards (runtime/relay.py and relay.pl). Pure: no I/O.
//
//   probe   0xFF "moshctl-probe?" KEY(16) NONCE(8)   39 bytes, moshctl → relays
//   answer  0xFF "moshctl-probe!" NONCE(8)           23 bytes, relay → moshctl
//
// Why these bytes: a mosh datagram starts with its nonce, whose top bit is the
// direction (1 = to the client), so every datagram mosh-client sends starts
// below 0x80 and none can be taken for a probe. An answer is shorter than the
// 24 bytes of the smallest mosh datagram, so it is never taken for one either,
// and shorter than the probe, so a relay cannot be used to amplify.
//
// KEY is the session's probe key, handed to the relay at start over its
// control channel (PROBEKEY, control.ts), never on a command line: a probe
// without it gets no answer, so a stranger learns nothing and cannot make the
// relay send anything anywhere. The key does travel in the clear inside each
// probe (perl-base has no hash to sign with), so someone who can read the
// client's network can make the relay answer a forged source, once per
// probe, with fewer bytes than they sent, at most PROBE_ANSWERS_PER_SECOND:
// no more than they could send that address themselves.
import { randomBytes } from 'node:crypto';

export const PROBE_ASK = Buffer.from('\xffmoshctl-probe?', 'latin1');
export const PROBE_ANSWER = Buffer.from('\xffmoshctl-probe!', 'latin1');
export const PROBE_KEY_BYTES = 16;
export const PROBE_NONCE_BYTES = 8;
export const PROBE_BYTES = PROBE_ASK.length + PROBE_KEY_BYTES + PROBE_NONCE_BYTES;
export const ANSWER_BYTES = PROBE_ANSWER.length + PROBE_NONCE_BYTES;
/** The relays answer at most this many probes a second, whoever asks. */
export const PROBE_ANSWERS_PER_SECOND = 10;

/** A fresh per-session key. */
export function newProbeKey(): Buffer {
  return randomBytes(PROBE_KEY_BYTES);
}

/** A probe carrying `key`, with a fresh nonce the answer must echo. */
export function probeDatagram(key: Buffer, nonce: Buffer = randomBytes(PROBE_NONCE_BYTES)): Buffer {
  if (key.length !== PROBE_KEY_BYTES || nonce.length !== PROBE_NONCE_BYTES)
    throw new Error('bug: a probe key is 16 bytes and its nonce 8');
  return Buffer.concat([PROBE_ASK, key, nonce]);
}

/** The nonce of a probe's answer (as hex, for a Map), or undefined when `d` is no answer. */
export function answerNonce(d: Buffer): string | undefined {
  if (d.length !== ANSWER_BYTES || !d.subarray(0, PROBE_ANSWER.length).equals(PROBE_ANSWER)) return undefined;
  return d.subarray(PROBE_ANSWER.length).toString('hex');
}

/** The nonce of a probe (as hex), for tests and fakes. */
export function probeNonce(d: Buffer): string | undefined {
  if (d.length !== PROBE_BYTES || !d.subarray(0, PROBE_ASK.length).equals(PROBE_ASK)) return undefined;
  return d.subarray(PROBE_ASK.length + PROBE_KEY_BYTES).toString('hex');
}
