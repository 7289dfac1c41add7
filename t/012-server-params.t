# $_SERVER as nginx gives it: the whole $_SERVER of a request through plain fastcgi_pass +
# php-fpm with Debian's configuration (nginx's conf/fastcgi_params, plus what Debian's
# snippets/fastcgi-php.conf and fastcgi.conf add: fastcgi_split_path_info, PATH_INFO,
# SCRIPT_FILENAME) is the oracle; fephp_pass to the same php-fpm and fephp_pass embedded (with
# fephp_params) must give the same, for one request with path info, a query, custom and repeated
# headers, a body, basic auth, over HTTPS, with a Host that is not the server's name.
#
# The request reaches the server under test through a proxy hop (the test client speaks plain
# HTTP): the main server proxies to a TLS server (self-signed certificate made here) that
# holds `server_name example.org www.example.org;` and the PHP location. The hop is the same
# for the three modes. Left out of the comparison: REQUEST_TIME, REQUEST_TIME_FLOAT and
# REMOTE_PORT (differ on every request) and the variables of the PHP process's own environment
# (the test php-fpm pool keeps its environment, clear_env = no; not a request param).
# Every other difference between the modes is listed in nginx-module/README.md.
use Test::Nginx::Socket;
use File::Temp qw(tempdir);
use IO::Socket::INET;

my $dir = tempdir('fephp-params.XXXXXX', TMPDIR => 1, CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=example.org"
    . " -keyout '$dir/key.pem' -out '$dir/cert.pem' 2>/dev/null") == 0
    or plan skip_all => 'openssl cannot make a test certificate';
my $probe = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0') or die "$!";
$ENV{TEST_NGINX_TLS_PORT} = $probe->sockport;
close $probe;
$ENV{TEST_NGINX_TLS_DIR} = $dir;
my ($src_conf) = glob("$ENV{HOME}/.cargo/registry/src/*/nginx-src-*/nginx/conf/fastcgi_params");
$ENV{TEST_NGINX_FASTCGI_PARAMS} = $ENV{TEST_NGINX_FASTCGI_PARAMS} // $src_conf
    // plan skip_all => "nginx's conf/fastcgi_params not found (set TEST_NGINX_FASTCGI_PARAMS)";

# What all three modes give for the two requests below, then the documented differences.
our %expected = (rich => <<'EOT', plain => <<'EOT');
CONTENT_LENGTH=7
CONTENT_TYPE=application/x-www-form-urlencoded
DOCUMENT_ROOT=$ROOT
DOCUMENT_URI=/dump.php/extra/päth
GATEWAY_INTERFACE=CGI/1.1
HTTPS=on
HTTP_ACCEPT_LANGUAGE=fr
HTTP_AUTHORIZATION=Basic dXNlcjpwQHNzOndvcmQ=
HTTP_CONNECTION=close
HTTP_CONTENT_LENGTH=7
HTTP_CONTENT_TYPE=application/x-www-form-urlencoded
HTTP_COOKIE=a=1; b=2
HTTP_HOST=127.0.0.1
HTTP_X_CUSTOM_HEADER=custom value
HTTP_X_REPEATED=one, two
PATH_INFO=/extra/päth
PHP_AUTH_PW=p@ss:word
PHP_AUTH_USER=user
PHP_SELF=/dump.php/extra/päth
QUERY_STRING=x=1&y=%20z&x=2
REDIRECT_STATUS=200
REMOTE_ADDR=127.0.0.1
REQUEST_METHOD=POST
REQUEST_SCHEME=https
REQUEST_URI=/dump.php/extra/p%C3%A4th?x=1&y=%20z&x=2
SCRIPT_FILENAME=$ROOT/dump.php
SCRIPT_NAME=/dump.php
SERVER_ADDR=127.0.0.1
SERVER_NAME=example.org
SERVER_PORT=$PORT
SERVER_PROTOCOL=HTTP/1.1
SERVER_SOFTWARE=nginx/$VERSION
EOT
CONTENT_LENGTH=
CONTENT_TYPE=
DOCUMENT_ROOT=$ROOT
DOCUMENT_URI=/dump.php
GATEWAY_INTERFACE=CGI/1.1
HTTPS=on
HTTP_CONNECTION=close
HTTP_HOST=www.example.org:8443
PHP_SELF=/dump.php
QUERY_STRING=
REDIRECT_STATUS=200
REMOTE_ADDR=127.0.0.1
REQUEST_METHOD=GET
REQUEST_SCHEME=https
REQUEST_URI=/dump.php
SCRIPT_FILENAME=$ROOT/dump.php
SCRIPT_NAME=/dump.php
SERVER_ADDR=127.0.0.1
SERVER_NAME=example.org
SERVER_PORT=$PORT
SERVER_PROTOCOL=HTTP/1.1
SERVER_SOFTWARE=nginx/$VERSION
EOT
my $version = `$ENV{TEST_NGINX_BINARY} -v 2>&1` =~ m{nginx/(\S+)} ? $1 : 'unknown';
s{nginx/1\.28\.3}{nginx/$version} for values %expected;

# The documented differences (nginx-module/README.md, "CGI params"), by mode.
# The version of the nginx under test (TEST_NGINX_BINARY, else `nginx` on PATH, as upstream).
sub nginx_older_than_1_23 {
    my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';
    my $v = `$bin -v 2>&1`;
    my ($major, $minor) = $v =~ m{nginx/(\d+)\.(\d+)} or return 0;
    return $major == 1 && $minor < 23;
}

sub expected_for {
    my ($mode, $request) = @_;
    my $body = $expected{$request};
    if ($mode ne 'embedded') {
        # php-fpm adds FCGI_ROLE itself (the FastCGI role); embedded PHP is not FastCGI.
        $body = join '', sort map { "$_\n" } split(/\n/, $body), 'FCGI_ROLE=RESPONDER';
    }
    if ($mode eq 'fastcgi') {
        # Debian's snippets/fastcgi-php.conf runs `try_files $fastcgi_script_name =404`, which
        # makes $uri (DOCUMENT_URI) the script name; fephp gives the request's URI, as plain
        # fastcgi_params does.
        $body =~ s{^DOCUMENT_URI=.*$}{DOCUMENT_URI=/dump.php}m;
        # Debian's fastcgi_param PATH_INFO $path_info sends it even when empty; fephp only
        # when there is one (PHP-FPM then shows none, like Apache's mod_php).
        $body =~ s{^(PATH_INFO=.*\n)?(PHP_AUTH_PW|PHP_SELF)}{($1 // "PATH_INFO=\n") . $2}me;
        if (nginx_older_than_1_23()) {
            # Before 1.23.0, nginx's fastcgi module sent a repeated request header as separate
            # params (PHP keeps the last); since 1.23.0 it joins them (`, `; `; ` for Cookie),
            # as fephp does. Debian 12's nginx is 1.22 (test-deb runs this suite there).
            $body =~ s{^HTTP_COOKIE=a=1; b=2$}{HTTP_COOKIE=b=2}m;
            $body =~ s{^HTTP_X_REPEATED=one, two$}{HTTP_X_REPEATED=two}m;
        }
    }
    return $body;
}

# The three blocks share everything but the PHP location's backend, given as their `config`.
add_block_preprocessor(sub {
    my $block = shift;
    my $backend = $block->config or return;
    my $mode = $backend =~ /fastcgi_pass/ ? 'fastcgi' : $backend =~ /fephp_pass unix:/ ? 'fpm' : 'embedded';
    my $request = $block->request ? 'plain' : 'rich';
    $block->set_value('http_config', <<"CONF");
    server {
        listen 127.0.0.1:\$TEST_NGINX_TLS_PORT ssl;
        server_name example.org www.example.org;
        ssl_certificate \$TEST_NGINX_TLS_DIR/cert.pem;
        ssl_certificate_key \$TEST_NGINX_TLS_DIR/key.pem;
        root html;
        location ~ [^/]\\.php(/|\$) {
$backend
        }
    }
CONF
    $block->set_value('config', <<'CONF');
    location / {
        proxy_pass https://127.0.0.1:$TEST_NGINX_TLS_PORT;
        proxy_set_header Host $http_host;
        proxy_http_version 1.1;
    }
CONF
    $block->set_value('user_files', <<'FILES');
>>> dump.php
<?php
$out = [];
foreach ($_SERVER as $k => $v) {
    if (in_array($k, ['REQUEST_TIME', 'REQUEST_TIME_FLOAT', 'REMOTE_PORT'], true) || getenv($k, true) !== false) {
        continue;
    }
    $out[$k] = is_array($v) ? json_encode($v) : (string) $v;
}
ksort($out);
foreach ($out as $k => $v) {
    // nginx's version is whatever nginx runs the suite (the vendored one, Debian's in test-deb)
    $v = $k === 'SERVER_SOFTWARE' ? preg_replace('#^nginx/[0-9.]+$#', 'nginx/$VERSION', $v) : $v;
    echo $k, '=', $k === 'SERVER_PORT' ? '$PORT' : str_replace($_SERVER['DOCUMENT_ROOT'], '$ROOT', $v), "\n";
}
FILES
    $block->set_value('response_body', expected_for($mode, $request));
    return if $request eq 'plain';
    $block->set_value('request', "POST /dump.php/extra/p%C3%A4th?x=1&y=%20z&x=2\na=1&b=2");
    $block->set_value('more_headers', <<'HDRS');
Host: 127.0.0.1
Content-Type: application/x-www-form-urlencoded
Authorization: Basic dXNlcjpwQHNzOndvcmQ=
X-Custom-Header: custom value
X-Repeated: one
X-Repeated: two
Cookie: a=1
Cookie: b=2
Accept-Language: fr
HDRS
});

no_root_location();
plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: the oracle: fastcgi_pass with Debian's fastcgi_params (+ fastcgi-php.conf, fastcgi.conf)
--- config
            fastcgi_split_path_info ^(.+?\.php)(/.*)$;
            try_files $fastcgi_script_name =404;
            set $path_info $fastcgi_path_info;
            fastcgi_param PATH_INFO $path_info;
            fastcgi_index index.php;
            include $TEST_NGINX_FASTCGI_PARAMS;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:$TEST_NGINX_FPM_SOCKET;
--- no_error_log
[error]



=== TEST 2: fephp_pass to the same php-fpm, with fephp_params
--- config
            include $TEST_NGINX_FEPHP_PARAMS;
            fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
--- no_error_log
[error]



=== TEST 3: fephp_pass embedded, with fephp_params
--- config
            include $TEST_NGINX_FEPHP_PARAMS;
            fephp_pass embedded;
--- no_error_log
[error]



=== TEST 4: the oracle, a plain request (no path info, query, body or auth), Host: the second server name with a port
--- config
            fastcgi_split_path_info ^(.+?\.php)(/.*)$;
            try_files $fastcgi_script_name =404;
            set $path_info $fastcgi_path_info;
            fastcgi_param PATH_INFO $path_info;
            fastcgi_index index.php;
            include $TEST_NGINX_FASTCGI_PARAMS;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:$TEST_NGINX_FPM_SOCKET;
--- request
GET /dump.php
--- more_headers
Host: www.example.org:8443
--- no_error_log
[error]



=== TEST 5: fephp_pass to php-fpm, the plain request
--- config
            include $TEST_NGINX_FEPHP_PARAMS;
            fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
--- request
GET /dump.php
--- more_headers
Host: www.example.org:8443
--- no_error_log
[error]



=== TEST 6: fephp_pass embedded, the plain request
--- config
            include $TEST_NGINX_FEPHP_PARAMS;
            fephp_pass embedded;
--- request
GET /dump.php
--- more_headers
Host: www.example.org:8443
--- no_error_log
[error]
