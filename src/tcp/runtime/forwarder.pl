# line 2 "moshctl-fwd.pl"
# moshctl tcp forwarder in perl 5.14+, core modules of Debian's Essential perl-base
# only (Socket, POSIX): the runtime for targets without python3. Same protocol as
# forwarder.py beside it; read that file's header for the protocol and the why. It
# runs from a bootstrap (src/tcp/launch.ts) that reads exactly both programs' bytes
# from stdin (python's first) and evals this one; the rest of stdin is frames.
#
# Not used, on purpose (as in relay.pl): Time::HiRes (not in perl-base: POSIX::times
# gives a monotonic clock in ticks), IO::Socket and IO::Select (plain socket calls and
# 4-argument select on bit vectors are all it takes).
use strict;
use warnings;
use Socket qw(AF_INET AF_INET6 SOCK_DGRAM MSG_DONTWAIT getaddrinfo);
use POSIX qw(EAGAIN ECONNREFUSED EINTR EWOULDBLOCK);

my $PREFIX       = 'MOSHCTL-FWD';
my $RUNTIME      = 'perl';
my $MAX_DATAGRAM = 65507;
my $BATCH        = 64;        # datagrams read per wakeup, so stdin is never starved by a busy socket
my $READ_MAX     = 262144;
my $HOST         = qr/\A[A-Za-z0-9_.:%][A-Za-z0-9_.:%-]{0,252}\z/;    # never shell or option syntax
my $TICK         = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

# Monotonic seconds (10 ms steps): times(2) counts ticks since boot, unmoved by clock changes.
sub now { return (POSIX::times())[0] / $TICK }

my %count = (sent => 0, received => 0, dropped => 0, refused => 0);

# Writes all of $data to STDOUT, or returns 0 once the reader is gone. Blocks while the
# channel is full, even on a non-blocking fd: a frame cut short would put every later
# one out of step, and dropping whole ones is mosh's business, not ours.
sub write_all {
    my ($data) = @_;
    my $at = 0;
    while ($at < length $data) {
        my $n = syswrite(STDOUT, $data, length($data) - $at, $at);
        if (defined $n) { $at += $n; next }
        if ($! == EAGAIN || $! == EWOULDBLOCK) { my $w = ''; vec($w, 1, 1) = 1; select(undef, $w, undef, undef); next }
        next if $! == EINTR;
        return 0;
    }
    return 1;
}

sub finish {
    my ($why, $code) = @_;
    my $line = sprintf("%s EXIT %s sent=%d received=%d dropped=%d refused=%d\n",
        $PREFIX, $why, @count{qw(sent received dropped refused)});
    syswrite(STDERR, $line);
    POSIX::_exit($code || 0);    # nothing is buffered, and a signal may land mid-write
}

sub fail { my ($why) = @_; write_all("$PREFIX ERROR $why\n"); exit 2 }

sub parse_args {
    my @argv = @_;
    my %o;
    while (@argv) {
        my $arg = shift @argv;
        my ($key, $value) = split /=/, $arg, 2;
        fail(sprintf("unknown argument '%s'", substr($arg, 0, 40))) unless $key eq '--to' || $key eq '--idle-timeout';
        if (!defined $value) {
            fail("$key needs a value") unless @argv;
            $value = shift @argv;
        }
        $o{$key} = $value;
    }
    exists $o{$_} or fail("missing $_") for qw(--to --idle-timeout);
    my $idle = $o{'--idle-timeout'};
    fail('--idle-timeout must be 1-604800 seconds')
      unless $idle =~ /\A[0-9]{1,7}(\.[0-9]{1,3})?\z/ && $idle >= 1 && $idle <= 604800;
    my ($host, $port) = $o{'--to'} =~ /\A\[?(.*?)\]?:([^:]*)\z/ ? ($1, $2) : ('', '');
    fail('--to: bad host') unless $host =~ $HOST && $host !~ /\A-/;
    fail('--to: bad port') unless $port =~ /\A[0-9]{1,5}\z/ && $port >= 1 && $port <= 65535;
    return ($host, $port + 0, $idle + 0);
}

# A UDP socket connect()ed to the first address that takes it: only that address's
# datagrams reach it, and its ICMP errors come back as ECONNREFUSED.
sub connect_to {
    my ($host, $port) = @_;
    my ($err, @res) = getaddrinfo($host, $port, { socktype => SOCK_DGRAM });
    fail("--to: cannot resolve $host") if $err || !@res;
    for my $r (@res) {
        next unless $r->{family} == AF_INET || $r->{family} == AF_INET6;
        socket(my $s, $r->{family}, SOCK_DGRAM, 0) or next;
        return $s if connect($s, $r->{addr});
        close $s;
    }
    fail("--to: no route to $host");
}

# Frames for the datagrams waiting on the socket (at most $BATCH), as one string.
sub from_server {
    my ($sock) = @_;
    my $out = '';
    for (1 .. $BATCH) {
        my $data;
        if (!defined recv($sock, $data, 65536, MSG_DONTWAIT)) {
            last if $! == EAGAIN || $! == EWOULDBLOCK;
            # An ICMP error queued by an earlier send (ECONNREFUSED: nobody on the port,
            # or EHOSTUNREACH); the socket itself is fine and the error is now cleared.
            $count{refused}++ if $! == ECONNREFUSED;
            next;
        }
        if (length $data < 1 || length $data > $MAX_DATAGRAM) { $count{dropped}++; next }    # cannot be framed
        $count{received}++;
        $out .= pack('n', length $data) . $data;
    }
    return $out;
}

# Sends every whole frame at the start of $$pending and removes it; 0 on a bad length.
sub to_server {
    my ($sock, $pending) = @_;
    my ($at, $end) = (0, length $$pending);
    while ($end - $at >= 2) {
        my $size = unpack('n', substr($$pending, $at, 2));
        return 0 if $size < 1 || $size > $MAX_DATAGRAM;
        last if $end - $at - 2 < $size;
        if (defined send($sock, substr($$pending, $at + 2, $size), MSG_DONTWAIT)) { $count{sent}++ }
        else {
            $count{dropped}++;    # a full buffer, or nobody there: mosh retransmits
            $count{refused}++ if $! == ECONNREFUSED;
        }
        $at += 2 + $size;
    }
    substr($$pending, 0, $at, '');
    return 1;
}

# Returns why it stopped and the exit code.
sub run {
    my ($sock, $idle) = @_;
    my $fd      = fileno $sock;
    my $pending = '';
    my $last    = now();
    while (1) {
        my $left = $idle - (now() - $last);
        return ('idle', 0) if $left <= 0;
        my $rin = '';
        vec($rin, 0,   1) = 1;
        vec($rin, $fd, 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, $left);
        next if $n == 0 || ($n < 0 && $! == EINTR);
        return ('eof', 0) if $n < 0;    # EBADF can only be a closed stdin
        if (vec($rout, $fd, 1)) {
            my $frames = from_server($sock);
            if (length $frames) {
                $last = now();
                return ('closed', 0) unless write_all($frames);
            }
        }
        if (vec($rout, 0, 1)) {
            my $got = sysread(STDIN, $pending, $READ_MAX, length $pending);
            next if !defined $got && ($! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK);
            return ('eof', 0) unless $got;
            my $before = $count{sent} + $count{dropped};
            return ('bad-frame', 6) unless to_server($sock, \$pending);
            $last = now() if $count{sent} + $count{dropped} != $before;
        }
    }
}

sub main {
    binmode STDIN;
    binmode STDOUT;           # bytes, whatever PERL_UNICODE says
    $SIG{PIPE} = 'IGNORE';    # EPIPE instead: the reader is gone, exit 0
    $SIG{HUP}  = 'IGNORE';    # the ssh session ending is not our end: EOF is
    $SIG{TERM} = $SIG{INT} = sub { finish('signal') };
    my ($host, $port, $idle) = parse_args(@ARGV);
    POSIX::setsid();          # own process group: `kill -TERM -PID` stops it; no fork, we hold the channel
    my $sock = connect_to($host, $port);
    finish('closed') unless write_all("$PREFIX READY PID $$ RUNTIME $RUNTIME\n");
    finish(run($sock, $idle));
}

main();
