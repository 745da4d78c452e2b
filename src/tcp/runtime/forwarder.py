# moshctl tcp forwarder, python3 >= 3.6, standard library only. Same protocol as
# forwarder.pl beside it. The tcp transport carries mosh inside the ssh chain when
# UDP cannot pass: on the target, this program turns the ssh channel's byte stream
# back into datagrams for mosh-server, and mosh-server's datagrams into the stream.
# launch.ts (src/tcp) feeds both runtimes' programs over ssh stdin, so nothing is
# written on the target, and starts this one from a bootstrap that reads exactly
# both programs' bytes and runs this one.
#
#   argv:    --to HOST:PORT (mosh-server's UDP port, [v6]:PORT too)  --idle-timeout S
#   stdout:  MOSHCTL-FWD READY PID <pid> RUNTIME python3   (one line, then only frames)
#            MOSHCTL-FWD ERROR <why>                       (instead; exit 2)
#   stdin:   frames, each sent as one datagram to --to
#   stdout:  frames, one per datagram from --to
#   stderr:  MOSHCTL-FWD EXIT <eof|idle|signal|closed|bad-frame> sent=N received=N dropped=N refused=N
#
# A frame is a 2-byte big-endian length (1-65507) and that many bytes; a length of 0
# or above 65507 means the stream is out of step and ends the forwarder (exit 6).
#
# Lifetime: exit 0 on EOF on stdin (the ssh channel is gone: the next connection
# starts a forwarder of its own), on stdout closing, on SIGTERM or SIGINT, or after
# --idle-timeout seconds without a datagram either way (a channel whose connection
# died without a FIN never brings EOF). SIGHUP is ignored. A datagram mosh-server
# cannot take (ECONNREFUSED while it restarts or after it has gone) is counted and
# dropped, never fatal: mosh retransmits.
import errno
import os
import re
import select
import signal
import socket
import struct
import sys
import time

PREFIX = "MOSHCTL-FWD"
RUNTIME = "python3"
MAX_DATAGRAM = 65507
BATCH = 64  # datagrams read per wakeup, so stdin is never starved by a busy socket
READ_MAX = 262144
SECONDS = re.compile(r"[0-9]{1,7}(\.[0-9]{1,3})?\Z")
WHOLE = re.compile(r"[0-9]{1,5}\Z")
# Literals and names only: no shell or option syntax ever reaches getaddrinfo.
HOST = re.compile(r"[A-Za-z0-9_.:%]([A-Za-z0-9_.:%-]{0,252})\Z")

counts = {"sent": 0, "received": 0, "dropped": 0, "refused": 0}


def write_all(fd, data):
    """Writes all of data, or returns False once the reader is gone. Blocks while the
    channel is full, even on a non-blocking fd: a frame cut short would put every
    later one out of step, and dropping whole ones is mosh's business, not ours."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except (BlockingIOError, InterruptedError):
            select.select([], [fd], [])
        except OSError:
            return False
    return True


def finish(why, code=0):
    line = "%s EXIT %s sent=%d received=%d dropped=%d refused=%d\n" % (
        PREFIX, why, counts["sent"], counts["received"], counts["dropped"], counts["refused"])
    try:
        os.write(2, line.encode("ascii"))
    except OSError:
        pass
    os._exit(code)  # no interpreter teardown: nothing is buffered, and a signal may land mid-write


def fail(why):
    write_all(1, ("%s ERROR %s\n" % (PREFIX, why)).encode("ascii", "replace"))
    sys.exit(2)


def parse_args(argv):
    opts = {}
    i = 0
    while i < len(argv):
        key, eq, value = argv[i].partition("=")
        if key not in ("--to", "--idle-timeout"):
            fail("unknown argument %r" % argv[i][:40])
        if not eq:
            i += 1
            if i >= len(argv):
                fail("%s needs a value" % key)
            value = argv[i]
        opts[key] = value
        i += 1
    for key in ("--to", "--idle-timeout"):
        if key not in opts:
            fail("missing %s" % key)
    idle = opts["--idle-timeout"]
    if not (SECONDS.match(idle) and 1 <= float(idle) <= 604800):
        fail("--idle-timeout must be 1-604800 seconds")
    host, _, port = opts["--to"].rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [v6]:port
    if not HOST.match(host) or host.startswith("-"):
        fail("--to: bad host")
    if not (WHOLE.match(port) and 1 <= int(port) <= 65535):
        fail("--to: bad port")
    return host, int(port), float(idle)


def connect(host, port):
    """A non-blocking UDP socket connect()ed to the first address that takes it: only
    that address's datagrams reach it, and its ICMP errors come back as ECONNREFUSED."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        fail("--to: cannot resolve %s" % host)
    for family, _, _, _, addr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            s = socket.socket(family, socket.SOCK_DGRAM)
        except OSError:
            continue
        try:
            s.connect(addr)
            s.setblocking(False)
            return s
        except OSError:
            s.close()
    fail("--to: no route to %s" % host)


def from_server(sock):
    """Frames for the datagrams waiting on the socket (at most BATCH), as one write."""
    out = []
    for _ in range(BATCH):
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as e:
            # An ICMP error queued by an earlier send (ECONNREFUSED: nobody on the port,
            # or EHOSTUNREACH); the socket itself is fine and the error is now cleared.
            if e.errno == errno.ECONNREFUSED:
                counts["refused"] += 1
            continue
        if not data or len(data) > MAX_DATAGRAM:
            counts["dropped"] += 1  # cannot be framed (an IPv6 jumbo of over 65507 bytes)
            continue
        counts["received"] += 1
        out.append(struct.pack(">H", len(data)))
        out.append(data)
    return b"".join(out)


def to_server(sock, pending):
    """Sends every whole frame in pending (a bytearray) and removes it; False on a bad length."""
    at, end = 0, len(pending)
    while end - at >= 2:
        size = (pending[at] << 8) | pending[at + 1]
        if size < 1 or size > MAX_DATAGRAM:
            return False
        if end - at - 2 < size:
            break
        try:
            sock.send(pending[at + 2 : at + 2 + size])
            counts["sent"] += 1
        except OSError as e:
            counts["dropped"] += 1  # a full buffer, or nobody there: mosh retransmits
            if e.errno == errno.ECONNREFUSED:
                counts["refused"] += 1
        at += 2 + size
    del pending[:at]
    return True


def run(sock, idle):
    """Returns why it stopped."""
    pending = bytearray()
    last = time.monotonic()
    while True:
        left = idle - (time.monotonic() - last)
        if left <= 0:
            return "idle", 0
        readable, _, _ = select.select([0, sock], [], [], left)
        if sock in readable:
            frames = from_server(sock)
            if frames:
                last = time.monotonic()
                if not write_all(1, frames):
                    return "closed", 0
        if 0 in readable:
            try:
                chunk = os.read(0, READ_MAX)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                return "eof", 0
            pending += chunk
            before = counts["sent"] + counts["dropped"]
            if not to_server(sock, pending):
                return "bad-frame", 6
            if counts["sent"] + counts["dropped"] != before:
                last = time.monotonic()


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # EPIPE instead: the reader is gone, exit 0
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the ssh session ending is not our end: EOF is
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: finish("signal"))
    host, port, idle = parse_args(sys.argv[1:])
    try:
        os.setsid()  # own process group: `kill -TERM -PID` stops it; no fork, we hold the channel
    except OSError:
        pass  # already a group leader
    sock = connect(host, port)
    if not write_all(1, ("%s READY PID %d RUNTIME %s\n" % (PREFIX, os.getpid(), RUNTIME)).encode("ascii")):
        finish("closed")
    finish(*run(sock, idle))


if __name__ == "__main__":
    main()
