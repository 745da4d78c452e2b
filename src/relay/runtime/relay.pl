# line 2 "moshctl-relay.pl"
# moshctl UDP relay v2 in perl 5.10+, core modules of Debian's Essential perl-base
# only (Socket, POSIX): the runtime for bastions without python3. Same design and
# line protocol as relay.py beside it; read that file's header for the why. It runs
# from a bootstrap (launch.ts) that reads exactly both programs' bytes from stdin
# (python's first) and evals this one; the rest of stdin is the control channel.
#
# Not used, on purpose: Time::HiRes (not in perl-base: POSIX::times gives a
# monotonic clock in ticks), IO::Socket (plain socket calls are shorter here) and
# IO::Select (4-argument select on bit vectors is all it does).
use strict;
use warnings;
use Socket qw(AF_INET AF_INET6 SOCK_DGRAM IPPROTO_IPV6 IPV6_V6ONLY INADDR_ANY MSG_DONTWAIT
  NI_NUMERICHOST NI_NUMERICSERV getaddrinfo getnameinfo inet_pton pack_sockaddr_in pack_sockaddr_in6);
use POSIX qw(EACCES EADDRINUSE EAGAIN ECONNREFUSED EINTR EWOULDBLOCK);

my $PREFIX        = 'MOSHCTL-RELAY';
my $RUNTIME       = 'perl';
my $ENTRY_TTL_MAX = 180;    # mosh keeps old client sockets 60 s; stay well above that
my $BATCH         = 64;     # datagrams per wakeup and socket, so one busy socket cannot starve others
my $LINE_MAX      = 512;
my $HOST          = qr/\A[A-Za-z0-9_.:%][A-Za-z0-9_.:%-]{0,252}\z/;    # never shell or option syntax
my $TICK          = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
# transport auto's probes (src/relay/probe.ts): a mosh datagram to the server starts below 0x80.
my $PROBE_ASK    = "\xffmoshctl-probe?";
my $PROBE_ANSWER = "\xffmoshctl-probe!";
my $PROBE_LEN    = length($PROBE_ASK) + 16 + 8;    # key, nonce
my $PROBE_RATE   = 10;                              # answers a second at most, whoever asks

# Monotonic seconds (10 ms steps): times(2) counts ticks since boot, unmoved by clock changes.
sub now { return (POSIX::times())[0] / $TICK }

# Lines to the controller, unbuffered; after EPIPE (the reader is gone) stop writing
# and live on. Blocking on purpose: replies are far below pipe and channel buffers.
my $out_open = 1;

sub out {
    my ($text) = @_;
    return unless $out_open;
    my $data = "$text\n";
    while (length $data) {
        my $n = syswrite(STDOUT, $data);
        if (!defined $n) { next if $! == EINTR; $out_open = 0; return }
        substr($data, 0, $n, '');
    }
}

sub fail { my ($code, $why) = @_; out("$PREFIX ERROR $why"); exit $code }

sub seconds {
    my ($opts, $key) = @_;
    my $t = $opts->{$key};
    fail(2, "$key must be 1-604800 seconds") unless $t =~ /\A[0-9]{1,7}(\.[0-9]{1,3})?\z/ && $t >= 1 && $t <= 604800;
    return $t + 0;
}

# (family, sockaddr, ip, port) of the first address a socket can be connected to
# (UDP connect only checks for a route); dies with the reason otherwise.
sub resolve {
    my ($host, $port) = @_;
    die "bad host\n" unless $host =~ $HOST && $host !~ /\A-/;
    die "bad port\n" unless $port =~ /\A[0-9]{1,5}\z/ && $port >= 1 && $port <= 65535;
    my ($err, @res) = getaddrinfo($host, $port, { socktype => SOCK_DGRAM });
    die "cannot resolve $host\n" if $err || !@res;
    for my $r (@res) {
        my $fam = $r->{family};
        next unless $fam == AF_INET || $fam == AF_INET6;
        socket(my $probe, $fam, SOCK_DGRAM, 0) or next;
        my $ok = connect($probe, $r->{addr});
        close $probe;
        next unless $ok;
        my ($e, $ip) = getnameinfo($r->{addr}, NI_NUMERICHOST | NI_NUMERICSERV);
        return [ $fam, $r->{addr}, $e ? '?' : $ip, $port + 0 ];
    }
    die "no route to $host\n";
}

sub show {
    my ($t) = @_;
    return '-' unless $t;
    return $t->[0] == AF_INET6 ? "[$t->[2]]:$t->[3]" : "$t->[2]:$t->[3]";
}

sub parse_args {
    my @argv = @_;
    my %o = ('--max-clients' => '64', '--first-contact' => '120', '--refused-exit' => '60');
    my %known = map { $_ => 1 } qw(--ports --to --idle-timeout --max-clients --first-contact --refused-exit);
    while (@argv) {
        my $arg = shift @argv;
        my ($key, $value) = split /=/, $arg, 2;
        fail(2, sprintf("unknown argument '%s'", substr($arg, 0, 40))) unless $known{$key};
        if (!defined $value) {
            fail(2, "$key needs a value") unless @argv;
            $value = shift @argv;
        }
        $o{$key} = $value;
    }
    exists $o{$_} or fail(2, "missing $_") for qw(--ports --idle-timeout);
    my ($lo, $hi) = $o{'--ports'} =~ /\A([0-9]{1,5})(?:-([0-9]{1,5}))?\z/;
    $hi = $lo if defined $lo && !defined $hi;
    fail(2, '--ports must be FROM-TO within 1-65535') unless defined $lo && 1 <= $lo && $lo <= $hi && $hi <= 65535;
    my $max = $o{'--max-clients'};
    fail(2, '--max-clients must be 1-4096') unless $max =~ /\A[0-9]{1,5}\z/ && $max >= 1 && $max <= 4096;
    my $target;
    if (defined $o{'--to'}) {
        my ($host, $port) = $o{'--to'} =~ /\A\[?(.*?)\]?:([^:]*)\z/ ? ($1, $2) : ('', '');
        $target = eval { resolve($host, $port) };
        if (!$target) { chomp(my $why = $@); fail(2, "--to: $why") }
    }
    return {
        lo      => $lo + 0,
        hi      => $hi + 0,
        idle    => seconds(\%o, '--idle-timeout'),
        first   => seconds(\%o, '--first-contact'),
        refused => seconds(\%o, '--refused-exit'),
        max     => $max + 0,
        target  => $target,
    };
}

# A socket bound to $port, dual-stack when the host has IPv6 (v4 clients arrive as
# ::ffff:a.b.c.d), or undef when the port is taken. No SO_REUSEADDR: a taken port
# must fail to bind, or two relays would share it.
sub bind_one {
    my ($port) = @_;
    if (socket(my $s, AF_INET6, SOCK_DGRAM, 0)) {
        # IPV6_V6ONLY croaks where the vendor did not define it: IPv4 alone then
        if (eval { setsockopt($s, IPPROTO_IPV6, IPV6_V6ONLY, 0) }) {
            return $s if bind($s, pack_sockaddr_in6($port, inet_pton(AF_INET6, '::')));
            return undef if $! == EADDRINUSE || $! == EACCES;
        }
        close $s;
    }
    socket(my $s, AF_INET, SOCK_DGRAM, 0) or return undef;
    return $s if bind($s, pack_sockaddr_in($port, INADDR_ANY));
    close $s;
    return undef;
}

# The relay's state; one hash so the subs below read like relay.py's methods.
my %r = (
    entries => {},    # packed client sockaddr -> entry {addr, sock, fd, last_client, last_reply}
    by_fd   => {},    # upstream fileno -> entry
    rin     => '',    # select() read set
    pending => '', discarding => 0, control => 1,
    in      => 0, out => 0, dropped => 0,
    answered => 0, last_reply => undef, refused_since => undef,
    probe_key => undef, probe_second => 0, probe_answers => 0,
);

sub watch   { vec($r{rin}, $_[0], 1) = 1 }
sub unwatch { vec($r{rin}, $_[0], 1) = 0 }

sub idle_since { my ($e) = @_; my $r = $e->{last_reply} || 0; return $e->{last_client} > $r ? $e->{last_client} : $r }

sub drop {
    my ($e) = @_;
    delete $r{entries}{ $e->{addr} };
    delete $r{by_fd}{ $e->{fd} };
    unwatch($e->{fd});
    close $e->{sock};
}

sub evict {
    # Unproven entries first: a proven (answered) entry goes only when every slot
    # is proven, which spoofed packets alone can never bring about.
    my ($victim) = sort {
        (defined $a->{last_reply} ? 1 : 0) <=> (defined $b->{last_reply} ? 1 : 0) || idle_since($a) <=> idle_since($b)
    } values %{ $r{entries} };
    drop($victim) if $victim;
}

sub expire {
    my ($t) = @_;
    for my $e (values %{ $r{entries} }) { drop($e) if $t - idle_since($e) > $r{ttl} }
}

sub add {
    my ($addr) = @_;
    my $t = $r{target} or return undef;
    evict() if keys %{ $r{entries} } >= $r{max};
    socket(my $s, $t->[0], SOCK_DGRAM, 0) or return undef;    # EMFILE lands here, not in a crash
    if (!connect($s, $t->[1])) { close $s; return undef }     # only the target's replies are accepted
    my $e = { addr => $addr, sock => $s, fd => fileno($s), last_client => now(), last_reply => undef };
    $r{entries}{$addr} = $e;
    $r{by_fd}{ $e->{fd} } = $e;
    watch($e->{fd});
    return $e;
}

sub refusal { $r{refused_since} = now() unless defined $r{refused_since} }

# A keyed probe is answered here and never passed on; a stranger's gets nothing.
sub probe {
    my ($data, $addr) = @_;
    return unless length $data == $PROBE_LEN;
    my $key = substr($data, length $PROBE_ASK, 16);
    return if ($key ^ $r{probe_key}) =~ /[^\0]/;    # compares every byte, whichever differs
    my $t = now();
    @r{qw(probe_second probe_answers)} = ($t, 0) if $t - $r{probe_second} >= 1;
    return if $r{probe_answers} >= $PROBE_RATE;
    $r{probe_answers}++;
    $r{alive_since} = $t;    # moshctl still means to use this path
    send($r{listen}, $PROBE_ANSWER . substr($data, -8), MSG_DONTWAIT, $addr);
}

sub from_clients {
    for (1 .. $BATCH) {
        my $addr = recv($r{listen}, my $data, 65535, MSG_DONTWAIT);
        if (!defined $addr) { return if $! == EAGAIN || $! == EWOULDBLOCK; next }    # else e.g. a queued ICMP error
        $r{in}++;
        if (defined $r{probe_key} && substr($data, 0, length $PROBE_ASK) eq $PROBE_ASK) { probe($data, $addr); next }
        my $e = $r{entries}{$addr} || add($addr);
        if (!$e) { $r{dropped}++; next }    # no target yet, or no socket to be had (EMFILE)
        $e->{last_client} = now();
        next if defined send($e->{sock}, $data, MSG_DONTWAIT);
        $r{dropped}++;
        refusal() if $! == ECONNREFUSED;
    }
}

sub from_upstream {
    my ($e) = @_;
    for (1 .. $BATCH) {
        my $data;
        if (!defined recv($e->{sock}, $data, 65535, MSG_DONTWAIT)) {
            return if $! == EAGAIN || $! == EWOULDBLOCK;
            refusal() if $! == ECONNREFUSED;    # ICMP port unreachable from the next hop
            next;
        }
        my $t = now();
        $e->{last_reply} = $r{alive_since} = $r{last_reply} = $t;
        $r{answered} = 1;
        $r{refused_since} = undef;
        if (defined send($r{listen}, $data, MSG_DONTWAIT, $e->{addr})) { $r{out}++ }
        else { $r{dropped}++ }    # the client may be gone (it roamed); mosh retransmits
    }
}

sub status {
    my @e = values %{ $r{entries} };
    my $proven = grep { defined $_->{last_reply} } @e;
    my $ago = defined $r{last_reply} ? int(now() - $r{last_reply}) : -1;
    return sprintf('STATUS clients=%d proven=%d in=%d out=%d dropped=%d last_reply=%d target=%s',
        scalar @e, $proven, $r{in}, $r{out}, $r{dropped}, $ago, show($r{target}));
}

sub set_probe_key {
    my @w = @_;
    return out('ERR PROBEKEY usage: PROBEKEY <32 hex digits>') unless @w == 1 && $w[0] =~ /\A[0-9a-f]{32}\z/;
    $r{probe_key} = pack('H*', $w[0]);
    out('OK PROBEKEY');
}

sub set_target {
    my @w = @_;
    return out('ERR TO usage: TO <host> <port>') unless @w == 2;
    my $t = eval { resolve(@w) };
    if (!$t) { chomp(my $why = $@); return out("ERR TO $why") }
    drop($_) for values %{ $r{entries} };    # their sockets are connected to the old target
    $r{target} = $t;
    # A new next hop gets a fresh first-contact window, and has refused nothing yet.
    @r{qw(alive_since answered refused_since)} = (now(), 0, undef);
    out("OK TO $t->[2] $t->[3]");
}

# One control line; true on QUIT.
sub command {
    my ($line) = @_;
    if (length $line > $LINE_MAX) { out('ERR line too long'); return 0 }
    if    ($line eq 'PING')   { $r{alive_since} = now(); out('PONG') }    # moshctl still runs this session
    elsif ($line eq 'STATUS') { out(status()) }
    elsif ($line eq 'QUIT')   { out('BYE'); return 1 }
    elsif ($line =~ /\ATO( |\z)/) { my (undef, @w) = split / /, $line, -1; set_target(@w) }
    elsif ($line =~ /\APROBEKEY( |\z)/) { my (undef, @w) = split / /, $line, -1; set_probe_key(@w) }
    else                      { out('ERR unknown command') }
    return 0;
}

# Reads what stdin has; true on QUIT.
sub from_control {
    my $n = sysread(STDIN, my $chunk, 4096);    # fd 0 was readable: one read cannot block
    return 0 if !defined $n && ($! == EINTR || $! == EAGAIN);
    if (!$n) {    # EOF: the ssh channel is gone; relay on until idle
        return 1 unless $r{target};    # never told where to forward: setup failed, nobody can use it
        unwatch(0); $r{control} = 0; return 0;
    }
    $r{pending} .= $chunk;
    while (1) {
        my $end = index($r{pending}, "\n");
        if ($end < 0) {
            if (length $r{pending} > $LINE_MAX) {    # answer an overlong line once, skip its rest
                out('ERR line too long') unless $r{discarding};
                @r{qw(pending discarding)} = ('', 1);
            }
            return 0;
        }
        my $line = substr($r{pending}, 0, $end + 1, '');
        chomp $line;
        $line =~ s/\r\z//;
        if ($r{discarding}) { $r{discarding} = 0; next }
        return 1 if command($line);
    }
}

# Returns the exit code.
sub run {
    my $next_expire = 0;
    while (1) {
        my $t = now();
        my $limit = $r{answered} ? $r{idle} : ($r{idle} < $r{first} ? $r{idle} : $r{first});
        if ($t - $r{alive_since} >= $limit) { out("$PREFIX EXIT idle"); return 0 }
        if (defined $r{refused_since} && $t - $r{refused_since} >= $r{refused_exit}) {
            out("$PREFIX EXIT refused");
            return 4;
        }
        if ($t >= $next_expire) { expire($t); $next_expire = $t + 1 }
        my $wait = $limit - ($t - $r{alive_since});
        $wait = 1 if $wait > 1;
        if (defined $r{refused_since}) {
            my $left = $r{refused_exit} - ($t - $r{refused_since});
            $wait = $left if $left < $wait;
        }
        $wait = 0.01 if $wait < 0.01;
        my $n = select(my $rout = $r{rin}, undef, undef, $wait);
        if ($n < 0 && $! != EINTR) { unwatch(0); $r{control} = 0 }    # EBADF can only be a closed stdin
        next if $n <= 0;
        from_clients() if vec($rout, $r{listen_fd}, 1);
        return 0 if $r{control} && vec($rout, 0, 1) && from_control();
        for my $fd (keys %{ $r{by_fd} }) {
            my $e = $r{by_fd}{$fd};
            from_upstream($e) if $e && vec($rout, $fd, 1);    # an earlier drop may have taken it
        }
    }
}

# Field 22 of /proc/self/stat (clock ticks after boot), or '': with the pid it names
# this process and no later one, so a stop by pid never hits a reused pid.
sub started {
    open(my $fh, '<', "/proc/$$/stat") or return '';
    my $stat = do { local $/; <$fh> // '' };
    close $fh;
    $stat =~ s/\A.*\) //s or return '';
    my @f = split ' ', $stat;
    return defined $f[19] && $f[19] =~ /\A\d+\z/ ? $f[19] : '';
}

sub main {
    $SIG{PIPE} = 'IGNORE';    # EPIPE instead: see out()
    $SIG{HUP}  = 'IGNORE';    # the ssh session ending is not our end
    $SIG{TERM} = $SIG{INT} = 'DEFAULT';
    my $o = parse_args(@ARGV);
    POSIX::setsid();          # own process group: `kill -TERM -PID` stops it; no fork, we hold the channel
    my ($listen, $port);
    for my $p ($o->{lo} .. $o->{hi}) { $listen = bind_one($p) and do { $port = $p; last } }
    fail(3, "no free UDP port in $o->{lo}-$o->{hi}") unless $listen;
    my $since = started();
    out("$PREFIX LISTEN $port PID $$ RUNTIME $RUNTIME" . ($since ? " STARTED $since" : ''));
    $r{$_} = $o->{$_} for qw(idle first max target);
    $r{refused_exit} = $o->{refused};
    $r{ttl}          = $r{idle} < $ENTRY_TTL_MAX ? $r{idle} : $ENTRY_TTL_MAX;
    $r{listen}       = $listen;
    $r{listen_fd}    = fileno($listen);
    $r{alive_since}  = now();    # start counts as alive: mosh-server waits 60 s for a client
    watch($r{listen_fd});
    watch(0);
    exit run();
}

main();
