// The UDP echo doctor starts on the target in place of mosh-server, in python3
// and in perl (the same pair the relays and the forwarder use). It binds the
// first free port of mosh.server_ports, as mosh-server would, on every address
// (dual-stack when the host has IPv6), prints its port, sends every datagram
// back to its sender, and exits after LIFE seconds or as soon as stdin ends
// (the ssh channel closed). It writes nothing on the host.
//
// argv: FROM TO LIFE. First line: `MOSHCTL-ECHO PORT <port> RUNTIME <python3|perl>`
// or `MOSHCTL-ECHO ERROR <why>` (then exit 3).
//
// Both travel on stdin (see relay/two-runtimes.ts), never on a command line,
// so they may hold quotes and backslashes.

export const ECHO_PY = `import os, select, socket, sys, time

lo, hi, life = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])


def bind(port):
    for fam, addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            s = socket.socket(fam, socket.SOCK_DGRAM)
        except OSError:
            continue
        try:
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind((addr, port))
            return s
        except OSError:
            s.close()
    return None


sock, port = None, lo
for port in range(lo, hi + 1):
    sock = bind(port)
    if sock is not None:
        break
if sock is None:
    sys.stdout.write("MOSHCTL-ECHO ERROR no free UDP port in %d-%d\\n" % (lo, hi))
    sys.stdout.flush()
    sys.exit(3)
sys.stdout.write("MOSHCTL-ECHO PORT %d RUNTIME python3\\n" % port)
sys.stdout.flush()
end = time.time() + life
while True:
    left = end - time.time()
    if left <= 0:
        break
    try:
        ready = select.select([sock, 0], [], [], left)[0]
    except InterruptedError:
        continue
    if 0 in ready and not os.read(0, 4096):
        break
    if sock in ready:
        try:
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)
        except OSError:
            pass
`;

export const ECHO_PL = `use strict;
use warnings;
use Socket qw(AF_INET AF_INET6 SOCK_DGRAM INADDR_ANY pack_sockaddr_in pack_sockaddr_in6);

my ($lo, $hi, $life) = @ARGV;
$| = 1;

sub try_bind {
    my ($port) = @_;
    my $s;
    if (socket($s, AF_INET6, SOCK_DGRAM, 0)) {
        eval { setsockopt($s, Socket::IPPROTO_IPV6(), Socket::IPV6_V6ONLY(), 0) };
        return $s if bind($s, pack_sockaddr_in6($port, pack("x16")));
        close($s);
    }
    if (socket($s, AF_INET, SOCK_DGRAM, 0)) {
        return $s if bind($s, pack_sockaddr_in($port, INADDR_ANY));
        close($s);
    }
    return undef;
}

my ($sock, $port);
for my $p ($lo .. $hi) {
    $sock = try_bind($p);
    if ($sock) { $port = $p; last }
}
unless ($sock) {
    print "MOSHCTL-ECHO ERROR no free UDP port in $lo-$hi\\n";
    exit 3;
}
print "MOSHCTL-ECHO PORT $port RUNTIME perl\\n";
my $end = time + $life;
my $rin = '';
vec($rin, 0, 1) = 1;
vec($rin, fileno($sock), 1) = 1;
while (1) {
    my $left = $end - time;
    last if $left <= 0;
    my $n = select(my $rout = $rin, undef, undef, $left);
    next if $n <= 0;
    if (vec($rout, 0, 1)) {
        my $buf;
        last unless sysread(STDIN, $buf, 4096);
    }
    if (vec($rout, fileno($sock), 1)) {
        my $data;
        my $peer = recv($sock, $data, 65535, 0);
        send($sock, $data, 0, $peer) if defined $peer;
    }
}
`;
