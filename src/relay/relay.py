# moshctl UDP relay: runs on a bastion as `python3 - ARGS`, with this script on
# stdin, so nothing is written on the bastion. Standard library only, python3 >= 3.6.
#
# Every client source address (ip, port) gets its own upstream socket, connect()ed
# to the next hop. mosh-server answers only the socket whose packets decrypted, so
# roaming is authenticated by the server and the relay never needs the session key.
#
# Idle: the relay exits after --idle-timeout seconds without any upstream reply.
# Only replies count: spoofed client packets cannot keep it alive.
# Eviction: entries that never got an upstream reply ("unproven") are evicted
# first, idle longest first. Spoofed packets never get replies, so a flood of
# spoofed source ports only evicts other unproven entries, never a client the
# server has answered while there is an unproven entry to take instead.
import os
import selectors
import signal
import socket
import sys
import time

PREFIX = "MOSHCTL-RELAY"
ENTRY_TTL_MAX = 180.0  # mosh keeps old client sockets 60 s; stay well above that
# mosh-server exits when no client reaches it within 60 s of starting. A relay the
# server never answered in twice that is one nobody recorded (moshctl lost it
# between start and its ready line): it must not live on for the whole idle timeout.
FIRST_CONTACT = 120.0  # --first-contact overrides it, for tests
BATCH = 64  # datagrams read per wakeup and socket, so one busy socket cannot starve others


def fail(code, why):
    sys.stdout.write("%s ERROR %s\n" % (PREFIX, why))
    sys.stdout.flush()
    sys.exit(code)


def check(ok, why):
    if not ok:
        fail(2, why)


def number(text, kind):
    try:
        return kind(text)
    except ValueError:
        return None


def parse_args(argv):
    opts = {"--max-clients": "64", "--first-contact": str(FIRST_CONTACT)}
    i = 0
    while i < len(argv):
        key, eq, value = argv[i].partition("=")
        if key not in ("--ports", "--to", "--idle-timeout", "--max-clients", "--first-contact"):
            fail(2, "unknown argument %r" % argv[i][:40])
        if not eq:
            i += 1
            if i >= len(argv):
                fail(2, "%s needs a value" % key)
            value = argv[i]
        opts[key] = value
        i += 1
    for key in ("--ports", "--to", "--idle-timeout"):
        if key not in opts:
            fail(2, "missing %s" % key)
    lo, _, hi = opts["--ports"].partition("-")
    lo, hi = number(lo, int), number(hi or lo, int)
    check(lo is not None and hi is not None and 1 <= lo <= hi <= 65535, "--ports must be FROM-TO within 1-65535")
    host, _, port = opts["--to"].rpartition(":")
    port = number(port, int)
    check(host and port is not None and 1 <= port <= 65535, "--to must be HOST:PORT")
    idle = number(opts["--idle-timeout"], float)
    check(idle is not None and 1 <= idle <= 604800, "--idle-timeout must be 1-604800 seconds")
    first = number(opts["--first-contact"], float)
    check(first is not None and 1 <= first <= 604800, "--first-contact must be 1-604800 seconds")
    max_clients = number(opts["--max-clients"], int)
    check(max_clients is not None and 1 <= max_clients <= 4096, "--max-clients must be 1-4096")
    try:  # resolved once: a relay should not start following DNS changes mid-session
        target = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    except (socket.gaierror, IndexError):
        fail(2, "cannot resolve %s to an IPv4 address" % host[:80])
    return lo, hi, target, idle, max_clients, first


def bind_first_free(lo, hi):
    for port in range(lo, hi + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("0.0.0.0", port))  # no SO_REUSEADDR: a taken port must fail to bind
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        return s, port
    fail(3, "no free UDP port in %d-%d" % (lo, hi))


def daemonize():
    """Double fork + setsid. Returns in the daemon; the launcher prints the ready
    line only once the daemon has reported its pid through a pipe, then exits."""
    r, w = os.pipe()
    if os.fork() > 0:  # launcher
        os.close(w)
        data = b""
        while True:  # read to EOF: the daemon closes its end after writing its pid
            chunk = os.read(r, 64)
            if not chunk:
                break
            data += chunk
        return data.decode("ascii", "replace").strip()
    os.close(r)
    os.setsid()  # leave the ssh session's process group and terminal
    if os.fork() > 0:
        os._exit(0)  # the session leader goes; the daemon can never regain a terminal
    os.setpgid(0, 0)  # own process group, so `kill -- -PID` stops it like the other runtimes
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # lets the ssh channel that started us close
    os.close(null)
    os.write(w, ("%d\n" % os.getpid()).encode())
    os.close(w)
    return None


class Entry(object):
    __slots__ = ("addr", "sock", "last_client", "last_reply")

    def __init__(self, addr, sock, now):
        self.addr, self.sock, self.last_client, self.last_reply = addr, sock, now, None

    def idle_since(self):
        return max(self.last_client, self.last_reply or 0.0)


class Relay(object):
    def __init__(self, listen, target, idle, max_clients, first_contact):
        self.listen, self.target, self.idle, self.max = listen, target, idle, max_clients
        self.first_contact = first_contact
        self.ttl = min(idle, ENTRY_TTL_MAX)
        self.entries = {}  # client (ip, port) -> Entry
        self.sel = selectors.DefaultSelector()
        self.sel.register(listen, selectors.EVENT_READ, None)
        self.last_reply = time.monotonic()  # start counts as alive: mosh-server waits 60 s for a client
        self.answered = False

    def run(self):
        while True:
            now = time.monotonic()
            limit = self.idle if self.answered else min(self.idle, self.first_contact)
            if now - self.last_reply >= limit:
                return
            self.expire(now)
            wait = min(1.0, limit - (now - self.last_reply))
            for key, _ in self.sel.select(max(wait, 0.01)):
                if key.data is None:
                    self.from_clients()
                else:
                    self.from_upstream(key.data)

    def from_clients(self):
        for _ in range(BATCH):
            try:
                data, addr = self.listen.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. a queued ICMP error; the socket itself is fine
            entry = self.entries.get(addr) or self.add(addr)
            if entry is None:
                continue
            entry.last_client = time.monotonic()
            try:
                entry.sock.send(data)
            except OSError:
                pass  # ECONNREFUSED after an ICMP unreachable: the server may just be restarting

    def from_upstream(self, entry):
        for _ in range(BATCH):
            try:
                data = entry.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            entry.last_reply = self.last_reply = time.monotonic()
            self.answered = True
            try:
                self.listen.sendto(data, entry.addr)
            except OSError:
                pass  # the client may be gone (it roamed); mosh retransmits

    def add(self, addr):
        if len(self.entries) >= self.max:
            self.evict()
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # EMFILE lands below, not in a crash
        except OSError:
            return None
        try:
            s.setblocking(False)
            s.connect(self.target)  # only the target's replies are accepted on this socket
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


def on_term(_sig, _frame):
    raise SystemExit(0)  # unwinds the select loop; sockets close with the process


def main():
    lo, hi, target, idle, max_clients, first_contact = parse_args(sys.argv[1:])
    listen, port = bind_first_free(lo, hi)
    sys.stdout.flush()  # nothing buffered may be duplicated by fork
    pid = daemonize()
    if pid is not None:
        if not pid.isdigit():
            fail(1, "relay daemon did not start")
        sys.stdout.write("%s LISTEN %d PID %s\n" % (PREFIX, port, pid))
        sys.stdout.flush()
        return
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, on_term)
    try:
        Relay(listen, target, idle, max_clients, first_contact).run()
    except SystemExit:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
