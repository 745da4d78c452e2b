// POSIX sh run on a hop for the socat and nc fallbacks and for stop/alive checks.
// Constant texts: every value reaches them as a quoted positional argument, never
// spliced in. Tested with dash, busybox ash and bash; no bashisms, no `\\` (fish reads that inside quotes).
import { PROC_SH } from '../remote/processes.js';

/** What a relay's command line contains (python3/perl: moshctl-relay, socat: UDP4-LISTEN, nc: --idle-timeout's wrapper). */
const RELAY_MARKERS = 'moshctl-relay --idle-timeout UDP4-LISTEN';

/**
 * socat and nc relays. Invoked as `/bin/sh -c 'eval "$MOSHCTL_RELAY"' moshctl-relay MODE ...`
 * with this text in MOSHCTL_RELAY, so it can start itself again in another mode.
 *  start RUNTIME FROM TO HOST PORT IDLE MAX: pick a port, detach `serve-*`, print the ready line.
 *  serve-socat PORT HOST TPORT IDLE MAX: socat in fork mode (one child per client address).
 *  watch SOCATPID IDLE: stop socat after IDLE s without children (its -T covers children only).
 *  serve-nc PORT HOST TPORT: the article's nc+fifo pipe in a private temporary directory.
 */
export const FALLBACK_RELAY_SH = `${PROC_SH}
portfree() {
  ! cat /proc/net/udp /proc/net/udp6 2>/dev/null |
    awk -v h="$(printf ':%04X' "$1")" '$2 ~ h"$" { f = 1 } END { exit !f }'
}
case $1 in
start)
  rt=$2 lo=$3 hi=$4 p=$3
  ss=; command -v setsid >/dev/null 2>&1 && ss=setsid
  while [ "$p" -le "$hi" ]; do
    # socat and nc bind with SO_REUSEADDR and would share a taken port: look first
    if portfree "$p"; then
      $ss /bin/sh -c 'eval "$MOSHCTL_RELAY"' moshctl-relay "serve-$rt" "$p" "$5" "$6" "$7" "$8" \\
        </dev/null >/dev/null 2>&1 &
      pid=$!
      sleep 0.3
      # status 2, this host cannot tell: taken as running (the port was free)
      alive "$pid"; if [ $? -ne 1 ]; then echo "MOSHCTL-RELAY LISTEN $p PID $pid"; exit 0; fi
    fi
    p=$((p + 1))
  done
  echo "MOSHCTL-RELAY ERROR no free UDP port in $lo-$hi"; exit 3 ;;
serve-socat)
  # a plain background command, so the watcher is a direct child of (soon) socat
  /bin/sh -c 'eval "$MOSHCTL_RELAY"' moshctl-relay watch "$$" "$5" &
  t=$5; [ "$t" -lt 10 ] && t=10
  exec socat -T"$t" "UDP4-LISTEN:$2,fork,max-children=$6" "UDP4:$3:$4" ;;
watch)
  s=$2 q=0
  command -v pgrep >/dev/null 2>&1 || [ -r "/proc/$s/task/$s/children" ] || exit 0
  while sleep 2; do
    alive "$s" || exit 0
    # children of socat other than this watcher are live client connections
    if { pgrep -P "$s" || cat "/proc/$s/task/$s/children"; } 2>/dev/null |
      tr ' ' '\\n' | grep -v -x -e "$$" -e '' | grep -q .; then q=0; else q=$((q + 2)); fi
    [ "$q" -ge "$3" ] && { kill -TERM "$s"; exit 0; }
  done ;;
serve-nc)
  d=$(mktemp -d) || exit 1
  trap 'rm -rf "$d"' EXIT
  trap 'exit 0' TERM
  mkfifo -m 600 "$d/fifo" || exit 1
  nc -u -l -p "$2" <"$d/fifo" | nc -q 0 -u "$3" "$4" >"$d/fifo" ;;
*) echo "MOSHCTL-RELAY ERROR unknown mode"; exit 2 ;;
esac`;

/**
 * Stop a relay by pid: TERM its process group, wait up to 2 s, then KILL. Safe to run twice.
 * Prints STOPPED, NOT-OURS, or UNKNOWN when this host cannot tell (nothing signalled).
 */
export const STOP_RELAY_SH = `${PROC_SH}
p=$1
alive "$p"; r=$?
[ "$r" -eq 2 ] && { echo "MOSHCTL-RELAY UNKNOWN $p"; exit 0; }
if [ "$r" -eq 0 ]; then
  ours "$p" "$2" ${RELAY_MARKERS}
  case $? in
  1) echo "MOSHCTL-RELAY NOT-OURS $p"; exit 0 ;;
  2) echo "MOSHCTL-RELAY UNKNOWN $p"; exit 0 ;;
  esac
  kill -TERM -"$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
  i=0
  while alive "$p" && [ "$i" -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
fi
# With no process p left, a group p can only be the relay's own (a pid is not reused
# while its group lives on), so stragglers such as socat children go too.
kill -KILL -"$p" 2>/dev/null
alive "$p" && kill -KILL "$p" 2>/dev/null
echo "MOSHCTL-RELAY STOPPED $p"`;

export const RELAY_ALIVE_SH = `${PROC_SH}
alive "$1"; r=$?
if [ "$r" -eq 0 ]; then ours "$1" "$2" ${RELAY_MARKERS}; r=$?; fi
case $r in
0) echo "MOSHCTL-RELAY ALIVE $1" ;;
1) echo "MOSHCTL-RELAY GONE $1" ;;
*) echo "MOSHCTL-RELAY UNKNOWN $1" ;;
esac`;

export const PROBE_SH = `if command -v python3 >/dev/null 2>&1; then
  v=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
  if python3 -c 'import sys; sys.exit(sys.version_info < (3, 6))' 2>/dev/null
  then echo "MOSHCTL-PROBE python3 ok $v"; else echo "MOSHCTL-PROBE python3 old $v"; fi
else echo "MOSHCTL-PROBE python3 missing"; fi
for c in socat nc; do
  if command -v "$c" >/dev/null 2>&1; then echo "MOSHCTL-PROBE $c ok"; else echo "MOSHCTL-PROBE $c missing"; fi
done`;
