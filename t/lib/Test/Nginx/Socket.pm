package Test::Nginx::Socket;

=head1 NAME

Test::Nginx::Socket - fe-php's own, small runner for test files written in
the upstream Test::Nginx::Socket block format

=head1 SYNOPSIS

    use Test::Nginx::Socket;

    repeat_each(1);
    plan tests => repeat_each() * (blocks() * 2);   # enforced, as upstream
    no_long_string();
    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
    location = /t { return 200 "ok\n"; }
    --- request
    GET /t
    --- response_body
    ok

Run with C<prove -r t/> from the repository root (C<.proverc> adds
C<-It/lib>).

=head1 DESCRIPTION

This is B<not> the CPAN Test::Nginx.  It is an independent, much smaller
implementation written for fe-php, because upstream Test::Nginx is neither
packaged in Debian nor downloadable in our build environment.  It reads test
files in the upstream C<__DATA__> block format (parsed by L<Test::Base>, so
section filters such as C<eval>, C<chomp>, C<chop>, inline C<--- name: value>
and the C<ONLY>/C<SKIP>/C<LAST> markers behave exactly as upstream) and gives
the same verdicts, and the same number of assertions, as upstream for the
subset documented in F<t/README.md>.

For every block it writes a fresh C<nginx.conf> into the server root, starts
nginx in the foreground (C<daemon off>) as a child process, waits (at most
10 s) until the listening port accepts connections, sends the request(s)
over a raw socket, checks each response and, after each one, the error log
lines written since the previous check (as upstream does), and stops nginx
gracefully (QUIT, then TERM, then KILL, each bounded).  Every block therefore
sees a fresh nginx and an empty error.log.  With C<repeat_each(N)> the
block's request is sent N times to the same nginx instance.  Blocks run in
a random order unless C<no_shuffle()> (as upstream).

=head2 The test plan

C<plan tests =E<gt> N> is passed to Test::More and so enforced: for the
supported sections the runner emits exactly the assertions upstream emits
(see F<t/README.md> for the counting rules), so a file's plan is right here
exactly when it is right under upstream.  Without a plan the run ends with
C<done_testing>.

=head2 Supported sections

main_config, http_config, config, user_files, request (incl. C<eval>,
array of requests), raw_request, pipelined_requests, more_headers,
error_code, response_body, response_body_like, response_body_unlike,
response_headers, response_headers_like, raw_response_headers_like, error_log,
no_error_log, timeout,
abort, wait, must_die, log_level, ignore_response.  No-op sections: no_check_leak,
no_shuffle.  Any other section makes the block fail ("unsupported section"),
so an assertion we do not implement can never pass silently.

=head2 Exported functions

run_tests, repeat_each, no_long_string, no_shuffle, log_level, workers,
worker_connections, master_on, master_off, master_process_enabled,
env_to_nginx, add_block_preprocessor, no_root_location, server_port,
server_root, html_dir, bail_out, plan; plus everything L<Test::Base> exports
(blocks, is, like, unlike, ok, is_deeply, diag, ...).

=head2 Environment

=over

=item TEST_NGINX_BINARY

nginx executable (default: C<nginx> from PATH).

=item TEST_NGINX_SERVER_PORT / TEST_NGINX_PORT

port to listen on (127.0.0.1).  Default: a free port chosen at random in
20000-32000, once per test file.

=item TEST_NGINX_SERVROOT

server root.  Default: C<t/servroot/E<lt>test file nameE<gt>> so that
C<prove -j> can run files in parallel.

=item TEST_NGINX_LOAD_MODULES

space-separated list of dynamic module C<.so> paths; each becomes a
C<load_module> line at the top of nginx.conf.

=item TEST_NGINX_NO_CLEAN

keep the server root after a fully passing test file (it is always kept when
something failed).

=item TEST_NGINX_TIMEOUT

default client timeout in seconds (3).

=back

The runner itself sets only what upstream sets: C<TEST_NGINX_SERVER_PORT>
and C<TEST_NGINX_SERVER_ROOT>.  Any C<$TEST_NGINX_FOO> in the config
sections, user_files contents, request and more_headers is replaced by the
environment variable's value (an unset variable is an error).

=cut

use strict;
use warnings;

use base 'Test::Base';

use Cwd ();
use Errno ();
use File::Basename ();
use File::Path ();
use File::Spec ();
use IO::Select;
use IO::Socket::INET;
use List::Util ();
use POSIX ();
use Time::HiRes ();

our @EXPORT = qw(
    run_tests run_test repeat_each no_long_string no_shuffle log_level
    workers worker_connections master_on master_off master_process_enabled
    env_to_nginx add_block_preprocessor no_root_location server_port
    server_root html_dir bail_out plan
);

our $DeclaredTests;
our $RepeatEach = 1;
our $NoLongString = 0;
our $NoShuffle = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $LogLevel = 'debug';
our $Workers = 1;
our $WorkerConnections = 1024;
our $MasterProcessEnabled = 0;
our $NoRootLocation = 0;
our @EnvToNginx;
our @BlockPreprocessors;
our $StartupTimeout = 10;
our $StopTimeout = 10;
our $Timeout = $ENV{TEST_NGINX_TIMEOUT} || 3;

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
    || _pick_free_port();
our $ServRootFromEnv = defined $ENV{TEST_NGINX_SERVROOT} && length $ENV{TEST_NGINX_SERVROOT};
our $ServRoot = _abs($ServRootFromEnv ? $ENV{TEST_NGINX_SERVROOT} : _default_servroot());
our $HtmlDir = "$ServRoot/html";
our $ConfDir = "$ServRoot/conf";
our $LogDir = "$ServRoot/logs";
our $ConfFile = "$ConfDir/nginx.conf";
our $ErrLogFile = "$LogDir/error.log";
our $StderrFile = "$LogDir/stderr.log";
our $PidFile = "$LogDir/nginx.pid";

# The two variables upstream sets for the test files (nothing else: a file
# using another one would not run there).
$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

my $NginxPid;          # pid of the running nginx child, if any
my %NginxInfo;         # parsed `nginx -V`

my %KnownSections = map { $_ => 1 } qw(
    main_config http_config config user_files
    request raw_request pipelined_requests more_headers
    error_code response_body response_body_like response_body_unlike
    response_headers response_headers_like raw_response_headers_like
    error_log no_error_log timeout abort wait must_die log_level ignore_response
    no_check_leak no_shuffle
);
my %InternalKeys = map { $_ => 1 } qw(
    name description _section_map _section_order seq_num is_filtered
    blocks_object original_values
);

# ---------------------------------------------------------------- settings

sub repeat_each {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}
sub no_long_string { $NoLongString = 1 }
sub no_shuffle { $NoShuffle = 1 }
sub log_level {
    $LogLevel = shift if @_;
    return $LogLevel;
}
sub workers {
    $Workers = shift if @_;
    return $Workers;
}
sub worker_connections {
    $WorkerConnections = shift if @_;
    return $WorkerConnections;
}
sub master_on { $MasterProcessEnabled = 1 }
sub master_off { $MasterProcessEnabled = 0 }
sub master_process_enabled {
    $MasterProcessEnabled = shift if @_;
    return $MasterProcessEnabled;
}
sub env_to_nginx { push @EnvToNginx, @_ }
sub add_block_preprocessor { push @BlockPreprocessors, @_ }
sub no_root_location { $NoRootLocation = 1 }
sub server_port { $ServerPort }
sub server_root { $ServRoot }
sub html_dir { $HtmlDir }
sub bail_out { Test::More::BAIL_OUT(@_) }

sub plan {
    # Passed to Test::More as is: `plan tests => N` is enforced, exactly as
    # under upstream (this runner emits the same assertions per block).
    $DeclaredTests = $_[1] if @_ >= 2 && $_[0] eq 'tests';
    return Test::More::plan(@_);
}

# ---------------------------------------------------------------- helpers

sub _abs { File::Spec->rel2abs($_[0]) }

sub _default_servroot {
    my $name = $0;
    $name =~ s{^(?:\./)?t/}{};
    $name =~ s{\.t$}{};
    $name =~ s{[^A-Za-z0-9_.-]+}{_}g;
    return "t/servroot/$name";
}

sub _pick_free_port {
    for (1 .. 100) {
        my $port = 20000 + int(rand(12000));
        my $sock = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => $port,
            Proto => 'tcp', Listen => 1, ReuseAddr => 0,
        );
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    die "Test::Nginx::Socket: could not find a free port\n";
}

sub _expand_env {
    my ($text, $what) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(TEST_NGINX_[A-Za-z0-9_]+)}{
        defined $ENV{$1} ? $ENV{$1}
            : die "$what: environment variable $1 is not set\n"
    }ge;
    return $text;
}

sub _slurp {
    my $file = shift;
    open my $fh, '<', $file or return '';
    binmode $fh;
    local $/;
    my $s = <$fh>;
    return defined $s ? $s : '';
}

sub _tail {
    my ($text, $n) = @_;
    my @lines = grep { !/ \[debug\] / } split /\n/, $text;
    @lines = @lines[-$n .. -1] if @lines > $n;
    return join '', map { "    $_\n" } @lines;
}

sub _nginx_info {
    return \%NginxInfo if %NginxInfo;
    my $out = `$NginxBinary -V 2>&1`;
    if ($? != 0 || !defined $out || $out !~ m{nginx version: \S+/(\d+)\.(\d+)\.(\d+)}) {
        Test::More::BAIL_OUT("cannot run '$NginxBinary -V' (set TEST_NGINX_BINARY): "
            . (defined $out ? $out : $!));
    }
    %NginxInfo = (
        version => $1 * 1000000 + $2 * 1000 + $3,
        configure => $out,
    );
    return \%NginxInfo;
}

sub _has_module {
    my $mod = shift;    # e.g. "http_proxy"
    return _nginx_info()->{configure} !~ /--without-\Q$mod\E_module\b/;
}

# Value of a section; undef when absent.  Scalar context, like upstream.
sub _sec {
    my ($block, $name) = @_;
    return undef unless exists $block->{$name};
    my $v = $block->{$name};
    return ref $v eq 'ARRAY' ? $v->[0] : $v;
}

# Expected value for request number $i: arrays are indexed, scalars apply
# to every request.
sub _expected_for {
    my ($block, $name, $i) = @_;
    my $v = _sec($block, $name);
    return undef unless defined $v;
    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}

# ---------------------------------------------------------------- config

sub _write_file {
    my ($path, $content, $mode) = @_;
    my ($vol, $dir) = File::Spec->splitpath($path);
    File::Path::make_path($dir) if length $dir && !-d $dir;
    open my $fh, '>', $path or die "cannot write $path: $!\n";
    binmode $fh;
    print $fh $content;
    close $fh or die "cannot write $path: $!\n";
    chmod oct($mode), $path if defined $mode;
}

sub _setup_servroot {
    File::Path::remove_tree($ServRoot) if -d $ServRoot;
    File::Path::make_path($HtmlDir, $ConfDir, $LogDir, "$ServRoot/tmp");
    # upstream puts this page in every fresh server root
    _write_file("$HtmlDir/index.html",
        '<html><head><title>It works!</title></head><body>It works!</body></html>');
}

# `--- user_files` as upstream reads it: a line containing `>>> NAME` starts a
# file; anything after NAME on that line is a date for `touch -t` (GMT);
# NAME may be absolute; $TEST_NGINX_* is expanded in the contents only.  The
# eval form is [[NAME, CONTENT, DATE?], ...].
sub _write_user_files {
    my ($block, $name) = @_;
    my $files = _sec($block, 'user_files');
    return unless $files;
    my @entries;
    if (ref $files eq 'ARRAY') {
        @entries = map { [@$_] } @$files;
    } elsif (ref $files) {
        die "$name - user_files: wrong value type " . ref($files) . " (a string or an ARRAY)\n";
    } else {
        my $cur;
        for my $line (split /(?<=\n)/, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) {
                push @entries, $cur if $cur;
                $cur = [$1, undef, $2];
            } elsif ($cur) {
                $cur->[1] .= $line;
            }
        }
        push @entries, $cur if $cur;
    }
    for my $e (@entries) {
        my ($path, $content, $date) = @$e;
        my $full = $path =~ m{^/} ? $path : "$HtmlDir/$path";
        _write_file($full, _expand_env($content // '', "$name - user_files"));
        next unless $date;
        local $ENV{TZ} = 'GMT';
        system('touch', '-t', $date, $full) == 0
            or die "$name - user_files: `TZ=GMT touch -t '$date' $full` failed\n";
    }
}

sub _write_config {
    my ($block, $name) = @_;
    my $main_config = _expand_env(_sec($block, 'main_config') // '', "$name - main_config");
    my $http_config = _expand_env(_sec($block, 'http_config') // '', "$name - http_config");
    my $config = _expand_env(_sec($block, 'config') // '', "$name - config");
    my $level = _sec($block, 'log_level') // $LogLevel;
    $level =~ s/^\s+|\s+$//g;

    my $conf = "# generated by t/lib/Test/Nginx/Socket.pm for: $name\n";
    for my $so (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '') {
        $conf .= "load_module " . _abs($so) . ";\n";
    }
    $conf .= "daemon off;\n";
    $conf .= "master_process " . ($MasterProcessEnabled ? 'on' : 'off') . ";\n";
    $conf .= "worker_processes $Workers;\n";
    $conf .= "error_log $ErrLogFile $level;\n";
    $conf .= "pid $PidFile;\n";
    $conf .= "user root;\n" if $> == 0 && $main_config !~ /^\s*user\s/m;
    $conf .= "env $_;\n" for @EnvToNginx;
    $conf .= "\n$main_config\n";
    $conf .= "events {\n    worker_connections $WorkerConnections;\n}\n\n";
    $conf .= "http {\n";
    $conf .= "    access_log $LogDir/access.log;\n";
    $conf .= "    default_type text/plain;\n";
    $conf .= "    keepalive_timeout 68;\n";
    $conf .= "    client_body_temp_path $ServRoot/tmp/client_body;\n";
    for my $m (qw(proxy fastcgi uwsgi scgi)) {
        $conf .= "    ${m}_temp_path $ServRoot/tmp/$m;\n" if _has_module("http_$m");
    }
    $conf .= "\n$http_config\n";
    $conf .= "    server {\n";
    $conf .= "        listen 127.0.0.1:$ServerPort;\n";
    $conf .= "        server_name localhost;\n";
    $conf .= "        client_max_body_size 30M;\n";
    $conf .= "        # begin test case config\n$config\n        # end test case config\n";
    $conf .= "        location / {\n            root $HtmlDir;\n"
           . "            index index.html index.htm;\n        }\n"
        unless $NoRootLocation;
    $conf .= "    }\n}\n";
    _write_file($ConfFile, $conf);
}

# ---------------------------------------------------------------- process

sub _start_nginx {
    # Returns (1) when nginx listens, (0, $why) otherwise.
    my $info = _nginx_info();
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    push @cmd, '-e', $ErrLogFile if $info->{version} >= 1019005;

    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $StderrFile;
        open STDERR, '>>', $StderrFile;
        exec { $cmd[0] } @cmd or print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }
    $NginxPid = $pid;

    my $deadline = Time::HiRes::time() + $StartupTimeout;
    while (1) {
        my $r = waitpid($pid, POSIX::WNOHANG());
        if ($r == $pid) {
            my $st = $?;
            undef $NginxPid;
            return (0, 'nginx exited during startup (' . _wait_status($st) . ')', $st);
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $ServerPort, Proto => 'tcp', Timeout => 1);
        if ($s) {
            close $s;
            return (1);
        }
        if (Time::HiRes::time() > $deadline) {
            _stop_nginx();
            return (0, "nginx did not accept connections on port $ServerPort "
                . "within $StartupTimeout s");
        }
        Time::HiRes::sleep(0.05);
    }
}

sub _wait_status {
    my $st = shift;
    return 'exit code ' . ($st >> 8) unless $st & 127;
    return 'killed by signal ' . ($st & 127) . (($st & 128) ? ', core dumped' : '');
}

# Stops nginx; returns (undef) when it exited because we asked, or a string
# describing an unexpected death.
sub _stop_nginx {
    return 'nginx was not running' unless $NginxPid;
    my $pid = $NginxPid;
    my $r = waitpid($pid, POSIX::WNOHANG());
    if ($r == $pid) {
        undef $NginxPid;
        return 'nginx exited on its own before the end of the block ('
            . _wait_status($?) . ')';
    }
    for my $step (['QUIT', $StopTimeout], ['TERM', 3], ['KILL', 3]) {
        my ($sig, $t) = @$step;
        kill $sig, $pid;
        my $deadline = Time::HiRes::time() + $t;
        while (Time::HiRes::time() < $deadline) {
            my $w = waitpid($pid, POSIX::WNOHANG());
            if ($w == $pid || ($w == -1 && $! == Errno::ECHILD)) {
                my $st = $?;
                undef $NginxPid;
                return "nginx needed SIG$sig to stop" if $sig ne 'QUIT';
                return undef if $w == -1;
                # QUIT makes nginx exit 0; anything else is a crash.
                return $st == 0 ? undef
                    : 'nginx exited abnormally on shutdown (' . _wait_status($st) . ')';
            }
            Time::HiRes::sleep(0.02);
        }
    }
    undef $NginxPid;
    return "nginx (pid $pid) could not be stopped";
}

END {
    local $?;
    _stop_nginx() if $NginxPid;
}

# Do not leave nginx behind when the test is interrupted.
for my $sig (qw(INT TERM HUP)) {
    next if defined $SIG{$sig} && $SIG{$sig} ne '' && $SIG{$sig} ne 'DEFAULT';
    $SIG{$sig} = sub {
        _stop_nginx() if $NginxPid;
        $SIG{$sig} = 'DEFAULT';
        kill $sig, $$;
    };
}

# ---------------------------------------------------------------- requests

# Turns one "--- request"-style string into [bytes, method].
sub _build_request {
    my ($block, $req, $more_headers, $connection) = @_;
    open my $in, '<', \$req;
    my $first = <$in>;
    $first = '' unless defined $first;
    my $content = do { local $/; <$in> };
    close $in;
    $first =~ s/^\s+|\s+$//g;
    die "request line is empty\n" unless length $first;
    # Same whitespace handling as upstream: strip leading whitespace if any,
    # otherwise trailing whitespace.
    $content = '' unless defined $content;
    $content =~ s/^\s+|\s+$//s;

    my ($meth) = split /\s+/, $first;
    $first .= ' HTTP/1.1' unless $first =~ m{\sHTTP/\d+\.\d+$};

    my @hdrs;
    for my $line (split /\n/, $more_headers // '') {
        $line =~ s/^\s+|\s+$//g;
        next unless length $line;
        push @hdrs, $line;
    }
    my %have = map { /^([^:]+):/ ? (lc $1 => 1) : () } @hdrs;
    my $head = "$first\r\n";
    $head .= "Host: localhost\r\n" unless $have{host};
    $head .= "Connection: $connection\r\n" unless $have{connection};
    $head .= "$_\r\n" for @hdrs;
    $head .= "Content-Length: " . length($content) . "\r\n"
        if length $content && !$have{'content-length'} && !$have{'transfer-encoding'};
    return ["$head\r\n$content", $meth];
}

# Returns a list of "connections"; each is { packets => [...], methods => [...] }.
sub _plan_requests {
    my ($block, $name) = @_;
    my $more = _expand_env(_sec($block, 'more_headers'), "$name - more_headers");
    my @conns;
    if (defined(my $p = _sec($block, 'pipelined_requests'))) {
        my @reqs = ref $p eq 'ARRAY' ? @$p : ($p);
        my (@bytes, @meths);
        for my $i (0 .. $#reqs) {
            my $r = _build_request($block, _expand_env($reqs[$i], "$name - pipelined_requests"),
                $more, $i == $#reqs ? 'close' : 'keep-alive');
            push @bytes, $r->[0];
            push @meths, $r->[1];
        }
        push @conns, { packets => [join '', @bytes], methods => \@meths };
    } elsif (defined(my $raw = _sec($block, 'raw_request'))) {
        my @packets = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        my ($meth) = $packets[0] =~ /^\s*(\S+)/;
        push @conns, { packets => \@packets, methods => [$meth // 'GET'] };
    } elsif (defined(my $req = _sec($block, 'request'))) {
        my @reqs = ref $req eq 'ARRAY' ? @$req : ($req);
        for my $r (@reqs) {
            if (ref $r eq 'ARRAY') {
                # a request given as pieces: sent as header + body packets
                my $built = _build_request($block, _expand_env(join('', @$r), "$name - request"),
                    $more, 'close');
                my $hend = index($built->[0], "\r\n\r\n") + 4;
                my @packets = (substr($built->[0], 0, $hend));
                push @packets, substr($built->[0], $hend) if length($built->[0]) > $hend;
                push @conns, { packets => \@packets, methods => [$built->[1]] };
            } else {
                my $built = _build_request($block, _expand_env($r, "$name - request"),
                    $more, 'close');
                push @conns, { packets => [$built->[0]], methods => [$built->[1]] };
            }
        }
    }
    return @conns;
}

# Parses as many complete responses as possible from $buf.
# Returns (\@responses, $complete, $error).
sub _parse_responses {
    my ($buf, $methods, $eof) = @_;
    my @res;
    my $pos = 0;
    my $i = 0;
    while ($i < @$methods) {
        my $hend = index($buf, "\r\n\r\n", $pos);
        if ($hend < 0) {
            return (\@res, 0, ($eof && $pos < length $buf)
                ? 'truncated response header' : undef);
        }
        my $head = substr($buf, $pos, $hend - $pos);
        my @lines = split /\r\n/, $head;
        my $status_line = shift @lines;
        my ($proto, $code) = $status_line =~ m{^(HTTP/\d\.\d)\s+(\d{3})\b};
        return (\@res, 0, "bad status line: $status_line") unless defined $code;
        my (@headers, %h);
        for my $l (@lines) {
            if ($l =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/) {
                push @headers, [$1, $2];
                push @{$h{lc $1}}, $2;
            }
        }
        my $start = $hend + 4;
        if ($code =~ /^1/) {        # interim response (100 Continue)
            $pos = $start;
            next;
        }
        my $r = { code => $code, status_line => $status_line, headers => \@headers,
                  h => \%h, raw_headers => "$head\r\n\r\n" };
        my $te = join ',', @{$h{'transfer-encoding'} || []};
        my $cl = $h{'content-length'} ? $h{'content-length'}[0] : undef;
        if (uc($methods->[$i]) eq 'HEAD' || $code == 204 || $code == 304) {
            $r->{body} = '';
            $pos = $start;
        } elsif ($te =~ /chunked/i) {
            my $p = $start;
            my $body = '';
            while (1) {
                my $le = index($buf, "\r\n", $p);
                return (\@res, 0, $eof ? 'truncated chunked body' : undef) if $le < 0;
                my $line = substr($buf, $p, $le - $p);
                my ($hex) = $line =~ /^([0-9a-fA-F]+)/;
                return (\@res, 0, "bad chunk size line: $line") unless defined $hex;
                my $size = hex $hex;
                $p = $le + 2;
                if ($size == 0) {
                    # trailers up to an empty line
                    my $tend = index($buf, "\r\n", $p);
                    while ($tend >= 0 && $tend != $p) {
                        $p = $tend + 2;
                        $tend = index($buf, "\r\n", $p);
                    }
                    return (\@res, 0, $eof ? 'truncated chunked body' : undef) if $tend < 0;
                    $p = $tend + 2;
                    last;
                }
                return (\@res, 0, $eof ? 'truncated chunked body' : undef)
                    if length($buf) < $p + $size + 2;
                $body .= substr($buf, $p, $size);
                $p += $size + 2;
            }
            $r->{body} = $body;
            $r->{chunked} = 1;
            $pos = $p;
        } elsif (defined $cl) {
            if (length($buf) < $start + $cl) {
                return (\@res, 0, $eof ? 'truncated body (Content-Length: '
                    . "$cl, got " . (length($buf) - $start) . ')' : undef);
            }
            $r->{body} = substr($buf, $start, $cl);
            $pos = $start + $cl;
        } else {
            return (\@res, 0, undef) unless $eof;
            $r->{body} = substr($buf, $start);
            $pos = length $buf;
        }
        push @res, $r;
        $i++;
    }
    return (\@res, 1, undef);
}

# Sends one connection's packets; returns (\@responses, $error).
sub _do_connection {
    my ($conn, $timeout) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ServerPort,
        Proto => 'tcp', Timeout => $timeout)
        or return ([], "cannot connect to 127.0.0.1:$ServerPort: $!");
    binmode $sock;
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my $buf = '';
    my $eof = 0;
    my $overall = Time::HiRes::time() + 10 * $timeout;

    my @packets = @{$conn->{packets}};
    for my $pi (0 .. $#packets) {
        my $data = $packets[$pi];
        Time::HiRes::sleep(0.1) if $pi > 0;
        while (length $data) {
            unless ($sel->can_write($timeout)) {
                return ([], "timeout ($timeout s) while sending the request");
            }
            my $n = syswrite($sock, $data);
            if (!defined $n) {
                next if $! == Errno::EAGAIN() || $! == Errno::EINTR();
                # the server may have answered and closed early; go read it
                last;
            }
            substr($data, 0, $n, '');
        }
    }

    my ($res, $complete, $perr) = ([], 0, undef);
    while (1) {
        ($res, $complete, $perr) = _parse_responses($buf, $conn->{methods}, $eof);
        last if $complete || $eof || $perr;
        if (Time::HiRes::time() > $overall || !$sel->can_read($timeout)) {
            close $sock;
            return ($res, "client socket timed out after $timeout s "
                . "(received " . length($buf) . " bytes)");
        }
        my $n = sysread($sock, $buf, 65536, length $buf);
        if (!defined $n) {
            next if $! == Errno::EAGAIN() || $! == Errno::EINTR();
            $eof = 1;       # ECONNRESET and friends
        } elsif ($n == 0) {
            $eof = 1;
        }
    }
    # Let nginx finish the request (log phase) if it said it would close.
    if ($complete && !$eof && @$res
        && grep { /close/i } @{$res->[-1]{h}{connection} || []}) {
        my $deadline = Time::HiRes::time() + 1;
        while (Time::HiRes::time() < $deadline && $sel->can_read(0.2)) {
            my $n = sysread($sock, my $junk, 65536);
            last if !defined $n || $n == 0;
        }
    }
    close $sock;
    return ($res, $complete ? undef
        : ($perr // 'connection closed before the full response arrived'));
}

# ---------------------------------------------------------------- checks

sub _is_str {
    my ($got, $expected, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if ($NoLongString) {
        return Test::More::is($got, $expected, $name);
    }
    require Test::LongString;
    return Test::LongString::is_string($got, $expected, $name);
}

# `--- response_headers` as upstream parses it: one header per line, keyed by
# the exact name (a later line with the same name wins); `!Name`, or a line
# without a colon, means "absent".
sub _parse_headers {
    my $text = shift;
    my %h;
    for my $line (split /\n/, $text // '') {
        $line =~ s/^\s+|\s+$//g;
        if ($line =~ s/^!\s*//) {
            $h{$line} = undef;
        } else {
            my ($k, $v) = split /\s*:\s*/, $line, 2;
            $h{$k} = $v;
        }
    }
    return \%h;
}

# The checks upstream makes for one response, one assertion each: the
# status; each header of response_headers (or else of response_headers_like);
# then response_body (or else response_body_like, or else _unlike).
sub _check_response {
    my ($block, $name, $i, $res, $n) = @_;
    my $tag = $n > 1 ? " (req $i)" : '';
    return if defined _sec($block, 'ignore_response');

    my $code = _expected_for($block, 'error_code', $i);
    $code = 200 unless defined $code;
    Test::More::is(($res && $res->{code}) || '', $code, "$name - status code ok$tag");

    my $raw = $res ? $res->{raw_headers} : '';
    my $header = sub {      # all values of a header, joined like HTTP::Headers
        my $v = $res && $res->{h}{lc $_[0]};
        return $v ? join(', ', @$v) : '';
    };
    if (defined(my $hdrs = _expected_for($block, 'response_headers', $i))) {
        my $h = _parse_headers($hdrs);
        for my $k (sort keys %$h) {
            my $v = $h->{$k};
            if (!defined $v) {
                Test::More::unlike($raw, qr/^\s*\Q$k\E\s*:/ms, "$name - header $k not present$tag");
                next;
            }
            $v =~ s/\$ServerPort(?:ForClient)?\b/$ServerPort/g;
            Test::More::is($header->($k), $v, "$name - header $k ok$tag");
        }
    } elsif (defined(my $like = _expected_for($block, 'response_headers_like', $i))) {
        my $h = _parse_headers($like);
        for my $k (sort keys %$h) {
            my $v = $h->{$k} // '';
            Test::More::like($header->($k), qr/^$v$/, "$name - header $k like ok$tag");
        }
    }

    if (defined(my $pat = _expected_for($block, 'raw_response_headers_like', $i))) {
        # like upstream: the raw head (status line and header lines), unanchored, /s
        chomp $pat unless ref $pat;
        my $re = ref $pat eq 'Regexp' ? $pat : qr/$pat/s;
        Test::More::like($res ? $res->{raw_headers} : undef, $re,
            "$name - raw_response_headers_like - response is expected$tag");
    }

    my $body = $res ? $res->{body} : undef;
    if (defined _sec($block, 'response_body')) {
        my $exp = _expected_for($block, 'response_body', $i);
        if (ref $exp) {
            Test::More::like($body, $exp, "$name - response_body - like$tag");
        } else {
            if (defined $exp) {
                $exp =~ s/\$ServerPort(?:ForClient)?\b/$ServerPort/g;
                $exp = _expand_env($exp, "$name - response_body");
            }
            _is_str($body, $exp, "$name - response_body - response is expected$tag");
        }
    } elsif (defined _sec($block, 'response_body_like') || defined _sec($block, 'response_body_unlike')) {
        my $type = defined _sec($block, 'response_body_like') ? 'like' : 'unlike';
        # no chomp: upstream matches the section as it is, trailing newline included
        my $pat = _expected_for($block, "response_body_$type", $i) // '';
        $pat =~ s/\$ServerPort(?:ForClient)?\b/$ServerPort/g;
        my $cmp = $type eq 'like' ? \&Test::More::like : \&Test::More::unlike;
        $cmp->($body, qr/$pat/s, "$name - response_body_$type - response is expected$tag");
    }
}

# error_log / no_error_log patterns as upstream takes them: a string is one
# pattern per non-empty line, a qr// is one pattern, an array is its elements
# as they are (strings are not split).  Strings match as substrings.
sub _patterns {
    my $v = shift;
    return () unless defined $v;
    if (!ref $v) {
        chomp $v;
        return split /\n+/, $v;
    }
    return ($v) if ref $v eq 'Regexp';
    return grep { defined } @$v;
}

sub _matches {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

# One upstream check_error_log: one assertion per pattern, against the lines
# logged since the previous check.
sub _check_logs {
    my ($block, $name, $log, $tag) = @_;
    $tag //= "";
    my @lines = split /(?<=\n)/, $log;
    for my $pat (_patterns(_sec($block, 'error_log'))) {
        my $found = grep { _matches($_, $pat) } @lines;
        Test::More::ok($found, "$name - pattern \"$pat\" matches a line in error.log$tag")
            or Test::More::diag("error.log (last non-debug lines):\n" . _tail($log, 20));
    }
    for my $pat (_patterns(_sec($block, 'no_error_log'))) {
        my @hits = grep { _matches($_, $pat) } @lines;
        Test::More::ok(!@hits, "$name - pattern \"$pat\" does not match any line in error.log$tag")
            or Test::More::diag("matching lines:\n" . join('', map { "    $_" } @hits[0 .. ($#hits > 9 ? 9 : $#hits)]));
    }
}

# Like upstream, which warns (does not fail) about these unless the block
# expects them.
sub _warn_alerts {
    my ($block, $name, $log) = @_;
    my @want = map { ref $_ ? "$_" : $_ } _patterns(_sec($block, 'error_log')),
        _patterns(_sec($block, 'no_error_log'));
    for my $level (qw(alert crit emerg)) {
        next if grep { index($_, "[$level") >= 0 } @want;
        Test::More::diag("WARNING: $name - $_") for grep { /\[$level\]/ } split /\n/, $log;
    }
}

# ---------------------------------------------------------------- driver

my $AllOk = 1;

sub run_tests {
    # blocks run in a random order, as upstream runs them, unless no_shuffle()
    my @blocks = Test::Base::blocks();
    @blocks = List::Util::shuffle(@blocks) unless $NoShuffle;
    for my $block (@blocks) {
        run_test($block);
    }
    # Without a plan, upstream's run ends with "no plan"; we accept it.
    Test::More::done_testing() unless Test::Builder->new->has_plan;
    if ($AllOk && Test::Builder->new->is_passing && !$ENV{TEST_NGINX_NO_CLEAN}) {
        File::Path::remove_tree($ServRoot);
        # t/servroot itself goes too once it is empty
        rmdir File::Basename::dirname($ServRoot) unless $ServRootFromEnv;
    }
}

sub run_test {
    my $block = shift;
    my $name = $block->name;
    my $ok = eval { _run_block($block, $name); 1 };
    if (!$ok) {
        my $err = $@;
        _stop_nginx() if $NginxPid;
        Test::More::fail("$name - runner error");
        Test::More::diag($err);
    }
    $AllOk = 0 unless Test::Builder->new->is_passing;
}

# Sections of which upstream uses only the first one present.
my @Exclusive = (
    [qw(response_headers response_headers_like)],
    [qw(response_body response_body_like response_body_unlike)],
    [qw(pipelined_requests raw_request request)],
);
# Sections upstream indexes per request when a block sends several.
my @PerRequest = qw(error_code response_headers response_headers_like
    response_body response_body_like response_body_unlike);

sub _log_size { -s $ErrLogFile || 0 }

sub _run_block {
    my ($block, $name) = @_;
    $_->($block) for @BlockPreprocessors;

    my @unknown = grep { !$KnownSections{$_} && !$InternalKeys{$_} } sort keys %$block;
    if (@unknown) {
        Test::More::fail("$name - unsupported section(s): @unknown");
        return;
    }
    if (!defined _sec($block, 'config')) {
        Test::More::fail("$name - no --- config section: upstream would run this block on the "
            . "previous block's nginx, without writing its user_files");
        return;
    }
    for my $set (@Exclusive) {
        my @both = grep { exists $block->{$_} } @$set;
        if (@both > 1) {
            Test::More::fail("$name - sections @both together: upstream uses only --- $both[0]");
            return;
        }
    }

    my $timeout = _sec($block, 'timeout');
    $timeout = $Timeout unless defined $timeout && $timeout =~ /\d/;
    $timeout =~ s/^\s+|\s+$//g;
    my $wait = _sec($block, 'wait');
    $wait = undef unless defined $wait && $wait =~ /^\s*[\d.]+\s*$/;

    _setup_servroot();
    _write_config($block, $name);
    _write_user_files($block, $name);

    if (defined(my $must_die = _sec($block, 'must_die'))) {
        $must_die =~ s/^\s+|\s+$//g;
        # upstream starts nginx once per repetition and checks the log each time
        for my $rep (1 .. $RepeatEach) {
            my $rname = $rep > 1 ? "$name (repeat $rep)" : $name;
            my $pos = _log_size();
            my ($started, $why, $status) = _start_nginx();
            if ($started) {
                _stop_nginx();
                Test::More::fail("$rname - nginx should have failed to start");
            } elsif ($must_die =~ /^\d+$/) {
                Test::More::is(defined $status ? $status >> 8 : undef, $must_die,
                    "$rname - die with the expected exit code") or Test::More::diag($why);
            } else {
                Test::More::ok(defined $status && $status != 0,
                    "$rname - nginx failed to start as expected") or Test::More::diag($why);
            }
            my $log = _slurp($ErrLogFile);
            _check_logs($block, $rname, substr($log, $pos));
        }
        return;
    }

    my @conns = _plan_requests($block, $name);
    my $total = 0;
    $total += @{$_->{methods}} for @conns;
    my $need_array = defined _sec($block, 'pipelined_requests') || $total > 1;
    if ($need_array) {
        my @scalar = grep { defined _sec($block, $_) && ref _sec($block, $_) ne 'ARRAY' } @PerRequest;
        if (@scalar) {
            Test::More::fail("$name - several requests: --- @scalar must be arrays (upstream bails out)");
            return;
        }
    }

    my ($started, $why) = _start_nginx();
    if (!$started) {
        Test::More::fail("$name - nginx started");
        Test::More::diag("$why\nstderr:\n" . _tail(_slurp($StderrFile), 20)
            . "error.log:\n" . _tail(_slurp($ErrLogFile), 20));
        return;
    }

    # Like upstream, the error log is checked after every response, each time
    # against the lines logged since the previous check (the first check of
    # the block sees nginx's startup messages too); the last check of a
    # repetition follows `wait`.  Shutdown messages are not checked.
    my $pos = 0;
    my $check_logs = sub {
        my $rname = shift;
        Time::HiRes::sleep($wait) if defined $wait;
        Time::HiRes::sleep(0.05);       # the log phase runs after the response
        my $log = _slurp($ErrLogFile);
        _check_logs($block, $rname, substr($log, $pos));
        $pos = length $log;
    };
    for my $rep (1 .. $RepeatEach) {
        my $rname = $rep > 1 ? "$name (repeat $rep)" : $name;
        _write_user_files($block, $name) if $rep > 1;
        my $idx = 0;
        for my $conn (@conns) {
            my $n = @{$conn->{methods}};
            my ($res, $err) = _do_connection($conn, $timeout);
            if ($err && !defined _sec($block, 'abort')) {
                Test::More::fail("$rname - ERROR: $err");
            }
            for my $i (0 .. $n - 1) {
                _check_response($block, $rname, $idx, $res->[$i], $total);
                $idx++;
                $check_logs->($rname . ($total > 1 ? " (req $i)" : '')) if $idx < $total;
            }
        }
        $check_logs->($rname);
    }

    my $death = _stop_nginx();
    my $log = _slurp($ErrLogFile);
    if ($death) {
        Test::More::fail("$name - nginx ran and stopped cleanly");
        Test::More::diag("$death\nerror.log:\n" . _tail($log, 20)
            . "stderr:\n" . _tail(_slurp($StderrFile), 10));
    }
    _warn_alerts($block, $name, $log);
}

1;
