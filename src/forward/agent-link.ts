// The target's side of agent forwarding (the AgentLink in
// src/execute/forward/agent.ts runs it): POSIX sh, the one path it may be
// given, and the lines it answers with. Pure and free of imports but the
// errors, since the plan and teardown use it too. The scripts are constant
// texts: the path reaches them on stdin or as a quoted positional argument,
// never spliced in. Run by the tests under dash, bash and busybox ash with
// its own applets; no bashisms, no `readlink -f`, no `stat` (its options differ).
import { UserError } from '../errors.js';

/** `~/x` → `$HOME/x`; anything else is refused (the caller validated it already). */
const EXPAND_SH = `say() { echo "MOSHCTL-AGENT $*"; }
case $HOME in /*) ;; *) say ERROR "HOME is not an absolute path on this host"; exit 2 ;; esac
case $p in
'~/'*) p=$HOME/\${p#??} ;;
*) say ERROR "the agent socket path must start with ~/"; exit 2 ;;
esac
d=\${p%/*}`;

/**
 * The agent channel: reads the stable path (`~/…`) from its first line of
 * stdin, points it at $SSH_AUTH_SOCK (sshd's socket for this channel), says
 * `MOSHCTL-AGENT LINKED`, then holds the channel until stdin ends, and then
 * removes the link only if it still points at its own socket (a newer chain
 * may have re-pointed it). Refusals: `NOT-FORWARDED why` (no agent came) and
 * `ERROR why` (the directory is unsafe or cannot be made).
 */
export const AGENT_LINK_SH = `IFS= read -r p || { echo "MOSHCTL-AGENT ERROR no socket path on stdin"; exit 2; }
${EXPAND_SH}
if [ -z "\${SSH_AUTH_SOCK:-}" ]; then
  say NOT-FORWARDED "no agent was forwarded (SSH_AUTH_SOCK is not set): the target's sshd may have AllowAgentForwarding no, or no ssh-agent runs on the client"
  exit 3
fi
[ -S "$SSH_AUTH_SOCK" ] || { say NOT-FORWARDED "SSH_AUTH_SOCK ($SSH_AUTH_SOCK) is not a socket"; exit 3; }
umask 077
mkdir -p "$d" || { say ERROR "cannot create $d"; exit 4; }
uid=$(id -u)
set -f
# Every directory from the link's up to HOME must be the user's and writable by nobody else:
# whoever can write one can re-point the link at a socket of theirs and see the agent's requests.
x=$d
while [ -n "$x" ] && [ "$x" != "$HOME" ] && [ "$x" != "\${HOME%/}" ]; do
  l=$(ls -ldnL "$x" 2>/dev/null) || { say ERROR "cannot read $x"; exit 4; }
  set -- $l
  [ -d "$x" ] || { say ERROR "$x is not a directory"; exit 4; }
  [ "$3" = "$uid" ] || { say ERROR "$x is owned by uid $3, not by you (uid $uid): remove it or fix its owner"; exit 4; }
  case $1 in ?????w*|????????w*) say ERROR "$x is writable by others ($1): chmod go-w it"; exit 4 ;; esac
  x=\${x%/*}
done
chmod 700 "$d" || { say ERROR "cannot chmod 700 $d"; exit 4; }
[ -d "$p" ] && { say ERROR "$p is a directory"; exit 4; }
# A new link beside the old one, then renamed over it: the path always points somewhere.
t=$d/.link.$$
rm -f "$t"
if ! { ln -s "$SSH_AUTH_SOCK" "$t" && mv -f "$t" "$p"; }; then rm -f "$t"; say ERROR "cannot point $p at the agent"; exit 4; fi
unlinked=
unlink_own() {
  [ -n "$unlinked" ] && return; unlinked=1
  if [ "$(readlink "$p" 2>/dev/null)" = "$SSH_AUTH_SOCK" ]; then rm -f "$p"; say UNLINKED; else say LEFT; fi
}
trap 'unlink_own; exit 0' HUP TERM INT
say LINKED
# Held until stdin ends: the channel is what keeps sshd's agent socket there.
cat >/dev/null
unlink_own`;

/**
 * Teardown, over a fresh exec (the channel is gone): removes the link at $1
 * and its directory when empty. `UNLINKED`, `ABSENT`, or `NOT-OURS` when
 * something other than a link is there (left alone).
 */
export const AGENT_UNLINK_SH = `p=$1
${EXPAND_SH}
if [ -L "$p" ]; then
  rm -f "$p" || { say ERROR "cannot remove $p"; exit 4; }
  say UNLINKED
elif [ -e "$p" ]; then
  say NOT-OURS "$p is not a link"
else
  say ABSENT
fi
rmdir "$d" 2>/dev/null
exit 0`;

/** `~/.moshctl/agent/NAME.sock`, NAME letters, digits, `.`, `_`, `-`: the only paths the scripts are given. */
export function checkAgentSocket(socket: string): string {
  if (!/^~\/\.moshctl\/agent\/[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\.sock$/.test(socket)) {
    throw UserError.one(
      `agent: invalid socket path ${JSON.stringify(socket)}`,
      'use ~/.moshctl/agent/NAME.sock, NAME made of letters, digits, dots, dashes and underscores',
    );
  }
  return socket;
}

/** A line of the link script: linked, or why not (`forwarded: false` when no agent reached the target). */
export function parseAgentLine(
  line: string,
): { linked: true } | { linked: false; why: string; forwarded: boolean } | undefined {
  const m = /^MOSHCTL-AGENT (LINKED|NOT-FORWARDED|ERROR)(?: (.*?))?\s*$/.exec(line);
  if (!m) return undefined;
  if (m[1] === 'LINKED') return { linked: true };
  return { linked: false, why: m[2] ?? 'no reason given', forwarded: m[1] !== 'NOT-FORWARDED' };
}

/** What unlinkAgentCommand printed: `other` when something not a link is at the path (left alone). */
export function parseAgentUnlink(
  text: string,
): 'unlinked' | 'absent' | 'other' | { error: string } | undefined {
  const m = /^MOSHCTL-AGENT (UNLINKED|ABSENT|NOT-OURS|ERROR)(?: (.*?))?\s*$/m.exec(text);
  if (!m) return undefined;
  if (m[1] === 'ERROR') return { error: m[2] ?? 'no reason given' };
  return m[1] === 'UNLINKED' ? 'unlinked' : m[1] === 'ABSENT' ? 'absent' : 'other';
}
