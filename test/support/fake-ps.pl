#!/usr/bin/perl
# A stand-in `ps` for the userlands this machine cannot run: BSD's (FreeBSD,
# macOS), for hosts without /proc, and busybox's without /proc under it. It
# reads the real processes from FAKE_PS_PROC (a copy of /proc mounted
# elsewhere, in a mount namespace where /proc itself is hidden) and answers
# as the real one would, refusing what the real one refuses:
#   bsd:     -A -a -x -w -ww -e (environment, not "every process") -o COLS -p PIDS;
#            no -A/-p: only the user's processes on a terminal; lines cut at 79
#            columns without -ww (ps not on a terminal); exit 1 when -p finds none.
#   busybox: only -o COLS (and -A, -e, -T, which it accepts and ignores); -p is
#            an invalid option; every process, always.
# Columns: pid, ppid, stat, comm, args (BSD: also command). `COL=` empties a
# header; with every header empty there is no header line. Perl, not node: it
# starts in milliseconds, and the scripts call ps many times.
use strict;
use warnings;

my $flavor = $ENV{FAKE_PS_FLAVOR} // '';
my $proc   = $ENV{FAKE_PS_PROC}   // '';
if (($flavor ne 'bsd' && $flavor ne 'busybox') || $proc eq '') {
    print STDERR "fake-ps: set FAKE_PS_FLAVOR (bsd|busybox) and FAKE_PS_PROC\n";
    exit 2;
}

sub refuse {
    my ($option) = @_;
    if ($flavor eq 'bsd') {
        print STDERR "ps: illegal option -- $option\nusage: ps [-AaCcdefHhjlmrSTuvwXxZ] [-O fmt | -o fmt] [-p pid[,pid]]\n";
    } else {
        print STDERR "ps: invalid option -- '$option'\nBusyBox v1.35.0 multi-call binary.\n\nUsage: ps [-o COL1,COL2=HEADER] [-T]\n";
    }
    exit 1;
}

# `pid,args`, `pid=`, `pid,stat=HEADER`: the text after `=` is the last column's header.
sub columns_of {
    my ($spec) = @_;
    my ($names, $header) = split /=/, $spec, 2;
    my @names = split /,/, $names, -1;
    my @cols = map { { name => $_ } } @names;
    $cols[-1]{header} = $header if defined $header;
    return @cols;
}

my (@columns, @pids, %ax);
my ($all, $wide) = (0, 0);
my @args = @ARGV;
while (@args) {
    my $a = shift @args;
    refuse($a) if $a !~ /^-./;
    my @chars = split //, substr($a, 1);
    while (@chars) {
        my $c = shift @chars;
        my $value = sub {
            my $rest = join '', @chars;
            @chars = ();
            return $rest if $rest ne '';
            refuse($c) unless @args;
            return shift @args;
        };
        if ($c eq 'o') { push @columns, columns_of($value->()) }
        elsif ($c eq 'p' && $flavor eq 'bsd') { push @pids, grep { $_ ne '' } split /[ ,]/, $value->() }
        elsif ($c eq 'A') { $all = 1 }
        elsif ($c eq 'w' && $flavor eq 'bsd') { $wide++ }
        elsif (($c eq 'a' || $c eq 'x') && $flavor eq 'bsd') { $ax{$c} = 1 }
        elsif ($c eq 'e' && $flavor eq 'bsd') { }    # the environment too: selects nothing
        elsif (($c eq 'e' || $c eq 'T') && $flavor eq 'busybox') { }
        else { refuse($c) }
    }
}

my %known = map { $_ => 1 } qw(pid ppid stat comm args), ($flavor eq 'bsd' ? ('command') : ());
for my $c (@columns) { refuse('o') unless $known{ $c->{name} } }
@columns = ({ name => 'pid' }, { name => 'args' }) unless @columns;

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return undef;
    local $/;
    my $text = <$fh>;
    return $text;
}

sub process_of {
    my ($pid) = @_;
    my $stat   = slurp("$proc/$pid/stat")   // return undef;
    my $status = slurp("$proc/$pid/status") // return undef;
    my $comm   = slurp("$proc/$pid/comm")   // return undef;
    my $cmd    = slurp("$proc/$pid/cmdline") // '';
    chomp $comm;
    $cmd =~ s/\0/ /g;
    $cmd =~ s/ +$//;
    my @after = split / /, substr($stat, rindex($stat, ')') + 2);
    my ($uid) = $status =~ /^Uid:\s+(\d+)/m;
    return {
        pid  => $pid,
        ppid => $after[1],
        stat => $after[0],
        tty  => $after[4],
        uid  => $uid,
        comm => $comm,
        args => $cmd ne '' ? $cmd : "[$comm]",
    };
}

opendir(my $dh, $proc) or die "fake-ps: $proc: $!\n";
my @every = sort { $a <=> $b } grep { /^\d+$/ } readdir $dh;
my @chosen;
if ($flavor eq 'busybox') { @chosen = @every }
elsif (@pids) { @chosen = @pids }
elsif ($all || keys %ax == 2) { @chosen = @every }
else {
    @chosen = grep { my $p = process_of($_); $p && $p->{uid} == $< && $p->{tty} != 0 } @every;
}
my @rows = grep { defined } map { process_of($_) } @chosen;

my $limit = $flavor eq 'busybox' ? 2048 : $wide >= 2 ? 1 << 30 : $wide == 1 ? 131 : 79;
my @lines;
if (grep { !defined $_->{header} || $_->{header} ne '' } @columns) {
    push @lines, join ' ', map { $_->{header} // uc $_->{name} } @columns;
}
for my $r (@rows) {
    my $line = join ' ', map {
        my $n = $_->{name} eq 'command' ? 'args' : $_->{name};
        $n eq 'pid' || $n eq 'ppid' ? sprintf('%5s', $r->{$n}) : $r->{$n};
    } @columns;
    push @lines, substr($line, 0, $limit);
}
print map { "$_\n" } @lines;
exit($flavor eq 'bsd' && @pids && !@rows ? 1 : 0);
