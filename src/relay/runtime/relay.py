# moshctl UDP relay v2, python3 >= 3.6, standard library only. Same design and
# line protocol as relay.pl beside it; launch.ts feeds both over ssh stdin, so
# nothing is written on the bastion, and starts this one with a bootstrap that
# reads exactly both programs' bytes from stdin and runs this one. The rest of
# stdin is the control channel (TO, PING, STATUS, QUIT), one reply line per
# command on stdout; src/relay/control.ts has the whole protocol.
#
# Every client source address (ip, port) gets its own upstream socket, connect()ed
# to the next hop. mosh-server answers only the socket whose packets decrypted, so
# roaming is authenticated by the server and the relay never needs the session key.
#
# transport auto: told a key (PROBEKEY), it answers probes that carry the key itself
# and never forwards them (src/relay/probe.ts has the bytes and the why); without a
# key it forwards them like any datagram, so the relay before it can pass them on.
#
# Lifetime: it exits after --idle-timeout seconds without any upstream reply, PING or
# keyed probe (spoofed client packets cannot keep it alive), after --refused-exit
# seconds of ICMP port unreachable with no reply (the server is gone: exit 4), on
# QUIT, SIGTERM or SIGINT. EOF on stdin only ends the control channel: a dropped ssh
# connection must not take a live session down with it. A relay not yet told where
# to forward (no --to, no TO) exits on EOF: its setup failed and nobody can use it.
import binascii
import errno
import hmac
import os
import re
import selectors
import signal
import socket
import sys
import time

PREFIX = "MOSHCTL-RELAY"
RUNTIME = "python3"
ENTRY_TTL_MAX = 180.0  # mosh keeps old client sockets 60 s; stay well above that
# mosh-server exits when no client reaches it within 60 s of starting. A relay the
# server never answered in twice that is one nobody uses: it must not live on for
# the whole idle timeout.
FIRST_CONTACT = "120"
REFUSED_EXIT = "60"
BATCH = 64  # datagrams read per wakeup and socket, so one busy socket cannot starve others
LINE_MAX = 512
SECONDS = re.compile(r"[0-9]{1,7}(\.[0-9]{1,3})?\Z")
WHOLE = re.compile(r"[0-9]{1,5}\Z")
# Literals and names only: no shell or option syntax ever reaches getaddrinfo.
HOST = re.compile(r"[A-Za-z0-9_.:%]([A-Za-z0-9_.:%-]{0,252})\Z")
# A mosh datagram to the server starts below 0x80 (its direction bit): never a probe.
PROBE_ASK, PROBE_ANSWER = b"\xffmoshctl-probe?", b"\xffmoshctl-probe!"
PROBE_LEN = len(PROBE_ASK) + 16 + 8  # key, nonce
PROBE_RATE = 10  # answers a second at most, whoever asks


class Out(object):
    """Lines to the controller. Writes go straight to fd 1 (no buffer to lose or
    duplicate); once the reader is gone (EPIPE) the relay stops writing and lives on."""

    open = True

    @classmethod
    def line(cls, text):
        if not cls.open:
            return
        data = (text + "\n").encode("ascii", "replace")
        try:
            # Blocking on purpose: replies are a few bytes per command, far below the pipe
            # and ssh channel buffers, and a dropped line would desynchronise the controller.
            while data:
                data = data[os.write(1, data):]
        except OSError:
            cls.open = False


def fail(code, why):
    Out.line("%s ERROR %s" % (PREFIX, why))
    sys.exit(code)


def seconds(opts, key):
    text = opts[key]
    ok = SECONDS.match(text) and 1 <= float(text) <= 604800
    if not ok:
        fail(2, "%s must be 1-604800 seconds" % key)
    return float(text)


def parse_args(argv):
    opts = {"--max-clients": "64", "--first-contact": FIRST_CONTACT, "--refused-exit": REFUSED_EXIT}
    known = ("--ports", "--to", "--idle-timeout", "--max-clients", "--first-contact", "--refused-exit")
    i = 0
    while i < len(argv):
        key, eq, value = argv[i].partition("=")
        if key not in known:
            fail(2, "unknown argument %r" % argv[i][:40])
        if not eq:
            i += 1
            if i >= len(argv):
                fail(2, "%s needs a value" % key)
            value = argv[i]
        opts[key] = value
        i += 1
    for key in ("--ports", "--idle-timeout"):
        if key not in opts:
            fail(2, "missing %s" % key)
    lo, _, hi = opts["--ports"].partition("-")
    hi = hi or lo
    ok = WHOLE.match(lo) and WHOLE.match(hi) and 1 <= int(lo) <= int(hi) <= 65535
    if not ok:
        fail(2, "--ports must be FROM-TO within 1-65535")
    max_clients = opts["--max-clients"]
    if not (WHOLE.match(max_clients) and 1 <= int(max_clients) <= 4096):
        fail(2, "--max-clients must be 1-4096")
    target = None
    if "--to" in opts:
        host, _, port = opts["--to"].rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # [v6]:port
        try:
            target = resolve(host, port)
        except ValueError as e:
            fail(2, "--to: %s" % e)
    return {
        "ports": (int(lo), int(hi)),
        "idle": seconds(opts, "--idle-timeout"),
        "first": seconds(opts, "--first-contact"),
        "refused": seconds(opts, "--refused-exit"),
        "max": int(max_clients),
        "target": target,
    }


def resolve(host, port):
    """(family, sockaddr, ip, port) of the first address a socket can be connected
    to (UDP connect only checks for a route), or ValueError saying why not."""
    if not HOST.match(host) or host.startswith("-"):
        raise ValueError("bad host")
    if not (WHOLE.match(port) and 1 <= int(port) <= 65535):
        raise ValueError("bad port")
    try:
        infos = socket.getaddrinfo(host, int(port), 0, socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        raise ValueError("cannot resolve %s" % host)
    for family, _, _, _, addr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            probe = socket.socket(family, socket.SOCK_DGRAM)
        except OSError:
            continue
        try:
            probe.connect(addr)
            return family, addr, addr[0], addr[1]
        except OSError:
            pass
        finally:
            probe.close()
    raise ValueError("no route to %s" % host)


def show(target):
    if target is None:
        return "-"
    family, _, ip, port = target
    return ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (ip, port)


def bind_one(port):
    """A socket bound to port, dual-stack when the host has IPv6 (v4 clients then
    arrive as ::ffff:a.b.c.d), or None when the port is taken. No SO_REUSEADDR: a
    taken port must fail to bind, or two relays would share it."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError:
        s = None  # no IPv6 in this kernel
    if s is not None:
        try:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", port))
            return s
        except OSError as e:
            s.close()
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return None
            # IPv6 disabled or dual-stack refused: IPv4 alone still serves the clients
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("0.0.0.0", port))
        return s
    except OSError:
        s.close()
        return None


def bind_first_free(lo, hi):
    for port in range(lo, hi + 1):
        s = bind_one(port)
        if s is not None:
            s.setblocking(False)
            return s, port
    fail(3, "no free UDP port in %d-%d" % (lo, hi))


class Entry(object):
    __slots__ = ("addr", "sock", "last_client", "last_reply")

    def __init__(self, addr, sock, now):
        self.addr, self.sock, self.last_client, self.last_reply = addr, sock, now, None

    def idle_since(self):
        return max(self.last_client, self.last_reply or 0.0)


CLIENTS, CONTROL = "clients", "control"  # selector tags; an Entry tags its upstream socket


class Relay(object):
    def __init__(self, listen, opts):
        self.listen, self.target = listen, opts["target"]
        self.idle, self.first, self.refused_exit = opts["idle"], opts["first"], opts["refused"]
        self.max = opts["max"]
        self.ttl = min(self.idle, ENTRY_TTL_MAX)
        self.entries = {}  # client address -> Entry
        self.sel = selectors.DefaultSelector()
        self.sel.register(listen, selectors.EVENT_READ, CLIENTS)
        try:
            self.sel.register(0, selectors.EVENT_READ, CONTROL)
        except (OSError, ValueError):
            pass  # stdin is a file or /dev/null (not from launch.ts): no control channel
        self.pending, self.discarding = b"", False
        self.n_in = self.n_out = self.dropped = 0
        self.alive_since = time.monotonic()  # start counts as alive: mosh-server waits 60 s
        self.answered = False
        self.last_reply = None
        self.refused_since = None
        self.next_expire = 0.0
        self.probe_key = None
        self.probe_second, self.probe_answers = 0.0, 0

    def run(self):
        """Returns the exit code."""
        while True:
            now = time.monotonic()
            limit = self.idle if self.answered else min(self.idle, self.first)
            if now - self.alive_since >= limit:
                Out.line("%s EXIT idle" % PREFIX)
                return 0
            if self.refused_since is not None and now - self.refused_since >= self.refused_exit:
                Out.line("%s EXIT refused" % PREFIX)
                return 4
            if now >= self.next_expire:
                self.expire(now)
                self.next_expire = now + 1.0
            wait = min(1.0, limit - (now - self.alive_since))
            if self.refused_since is not None:
                wait = min(wait, self.refused_exit - (now - self.refused_since))
            for key, _ in self.sel.select(max(wait, 0.01)):
                if key.data is CLIENTS:
                    self.from_clients()
                elif key.data is CONTROL:
                    if self.from_control():
                        return 0
                elif self.entries.get(key.data.addr) is key.data:  # not dropped earlier in this batch
                    self.from_upstream(key.data)

    def from_clients(self):
        for _ in range(BATCH):
            try:
                data, addr = self.listen.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. a queued ICMP error; the socket itself is fine
            self.n_in += 1
            if self.probe_key is not None and data[: len(PROBE_ASK)] == PROBE_ASK:
                self.probe(data, addr)  # answered or not, never passed on
                continue
            entry = self.entries.get(addr) or self.add(addr)
            if entry is None:
                self.dropped += 1  # no target yet, or no socket to be had (EMFILE)
                continue
            entry.last_client = time.monotonic()
            try:
                entry.sock.send(data)
            except OSError as e:
                self.dropped += 1
                if e.errno == errno.ECONNREFUSED:
                    self.refusal()

    def from_upstream(self, entry):
        for _ in range(BATCH):
            try:
                data = entry.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno == errno.ECONNREFUSED:
                    self.refusal()  # ICMP port unreachable from the next hop
                continue
            now = time.monotonic()
            entry.last_reply = self.alive_since = self.last_reply = now
            self.answered, self.refused_since = True, None
            try:
                self.listen.sendto(data, entry.addr)
                self.n_out += 1
            except OSError:
                self.dropped += 1  # the client may be gone (it roamed); mosh retransmits

    def probe(self, data, addr):
        if len(data) != PROBE_LEN or not hmac.compare_digest(data[len(PROBE_ASK) : -8], self.probe_key):
            return  # a stranger's: no answer, and no sign of life
        now = time.monotonic()
        if now - self.probe_second >= 1.0:
            self.probe_second, self.probe_answers = now, 0
        if self.probe_answers >= PROBE_RATE:
            return
        self.probe_answers += 1
        self.alive_since = now  # moshctl still means to use this path
        try:
            self.listen.sendto(PROBE_ANSWER + data[-8:], addr)
        except OSError:
            pass

    def refusal(self):
        if self.refused_since is None:
            self.refused_since = time.monotonic()

    def add(self, addr):
        if self.target is None:
            return None
        if len(self.entries) >= self.max:
            self.evict()
        try:
            s = socket.socket(self.target[0], socket.SOCK_DGRAM)  # EMFILE lands here, not in a crash
        except OSError:
            return None
        try:
            s.setblocking(False)
            s.connect(self.target[1])  # only the target's replies are accepted on this socket
        except OSError:
            s.close()
            return None
        entry = Entry(addr, s, time.monotonic())
        self.entries[addr] = entry
        self.sel.register(s, selectors.EVENT_READ, entry)
        return entry

    def evict(self):
        # Unproven entries first: a proven (answered) entry goes only when every
        # slot is proven, which spoofed packets alone can never bring about.
        victim = min(self.entries.values(), key=lambda e: (e.last_reply is not None, e.idle_since()))
        self.drop(victim)

    def expire(self, now):
        for entry in [e for e in self.entries.values() if now - e.idle_since() > self.ttl]:
            self.drop(entry)

    def drop(self, entry):
        del self.entries[entry.addr]
        self.sel.unregister(entry.sock)
        entry.sock.close()

    def from_control(self):
        """Reads what stdin has; True on QUIT."""
        try:
            chunk = os.read(0, 4096)  # fd 0 was readable: one read cannot block
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            chunk = b""
        if not chunk:  # EOF: the ssh channel is gone; relay on until idle
            if self.target is None:  # never told where to forward: nobody can use it
                return True
            self.sel.unregister(0)
            return False
        self.pending += chunk
        while True:
            end = self.pending.find(b"\n")
            if end < 0:
                if len(self.pending) > LINE_MAX:  # answer an overlong line once, skip its rest
                    if not self.discarding:
                        Out.line("ERR line too long")
                    self.pending, self.discarding = b"", True
                return False
            line, self.pending = self.pending[:end], self.pending[end + 1 :]
            if self.discarding:
                self.discarding = False
                continue
            if self.command(line.rstrip(b"\r")):
                return True

    def command(self, line):
        if len(line) > LINE_MAX:
            Out.line("ERR line too long")
            return False
        words = line.split(b" ")
        if line == b"PING":
            self.alive_since = time.monotonic()  # moshctl still runs this session
            Out.line("PONG")
        elif line == b"STATUS":
            Out.line(self.status())
        elif line == b"QUIT":
            Out.line("BYE")
            return True
        elif words[0] == b"TO":
            self.set_target(words[1:])
        elif words[0] == b"PROBEKEY":
            self.set_probe_key(words[1:])
        else:
            Out.line("ERR unknown command")
        return False

    def set_target(self, words):
        if len(words) != 2:
            Out.line("ERR TO usage: TO <host> <port>")
            return
        try:  # junk bytes become U+FFFD, which the host and port checks refuse
            target = resolve(words[0].decode("ascii", "replace"), words[1].decode("ascii", "replace"))
        except ValueError as e:
            Out.line("ERR TO %s" % e)
            return
        for entry in list(self.entries.values()):
            self.drop(entry)  # their sockets are connected to the old target
        self.target = target
        # A new next hop gets a fresh first-contact window, and has refused nothing yet.
        self.alive_since, self.answered, self.refused_since = time.monotonic(), False, None
        Out.line("OK TO %s %d" % (target[2], target[3]))

    def set_probe_key(self, words):
        if len(words) != 1 or not re.match(rb"[0-9a-f]{32}\Z", words[0]):
            Out.line("ERR PROBEKEY usage: PROBEKEY <32 hex digits>")
            return
        self.probe_key = binascii.unhexlify(words[0])
        Out.line("OK PROBEKEY")

    def status(self):
        proven = sum(1 for e in self.entries.values() if e.last_reply is not None)
        ago = -1 if self.last_reply is None else int(time.monotonic() - self.last_reply)
        return "STATUS clients=%d proven=%d in=%d out=%d dropped=%d last_reply=%d target=%s" % (
            len(self.entries), proven, self.n_in, self.n_out, self.dropped, ago, show(self.target))


def started():
    """Field 22 of /proc/self/stat (clock ticks after boot), or None: with the pid it names
    this process and no later one, so a stop by pid never hits a reused pid."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b") ", 1)[1].split()
        return fields[19].decode("ascii") if fields[19].isdigit() else None
    except (OSError, IndexError):
        return None


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # EPIPE instead: see Out
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the ssh session ending is not our end
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # not KeyboardInterrupt: exit at once
    opts = parse_args(sys.argv[1:])
    try:
        os.setsid()  # own process group: `kill -TERM -PID` stops it; no fork, we hold the channel
    except OSError:
        pass  # already a group leader
    listen, port = bind_first_free(*opts["ports"])
    since = started()
    Out.line(
        "%s LISTEN %d PID %d RUNTIME %s%s"
        % (PREFIX, port, os.getpid(), RUNTIME, " STARTED " + since if since else "")
    )
    sys.exit(Relay(listen, opts).run())


if __name__ == "__main__":
    main()
