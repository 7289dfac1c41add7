# fephp_pass NAME to an `upstream NAME {}` block of PHP-FPM servers: nginx's balancer picks the
# server (weights, backup, down, max_fails), fephp_next_upstream / fephp_next_upstream_tries
# retry a failed attempt on the next server, fephp_status shows each server's state.
# t/run.sh's three FPM pools tell who served through getenv('FEPHP_POOL') (tests, recycle,
# tcp); TEST_NGINX_CLOSED_TCP is a port nothing listens on (connect refused: an `error`).
# Smooth weighted round robin is deterministic in one worker: equal weights start with the
# first server.
use Test::Nginx::Socket;
use Digest::MD5;

# Counted as upstream counts (t/README.md): per response 1 status + 1 body, + 1 per
# error_log / no_error_log pattern after each response; must_die blocks 1 + their patterns.
plan tests => repeat_each() * 107;

no_long_string();
run_tests();

__DATA__

=== TEST 1: round robin over a unix and a TCP server
--- http_config
    upstream php {
        server unix:$TEST_NGINX_FPM_SOCKET;
        server $TEST_NGINX_FPM_TCP;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request eval
["GET /who.php", "GET /who.php", "GET /who.php", "GET /who.php"]
--- response_body eval
["tests\n", "tcp\n", "tests\n", "tcp\n"]
--- no_error_log
[error]



=== TEST 2: weights 1/2/3: six requests are served 1, 2 and 3 times; fephp_status counts them
--- http_config
    upstream php {
        server unix:$TEST_NGINX_FPM_RECYCLE_SOCKET weight=1;
        server unix:$TEST_NGINX_FPM_SOCKET weight=2;
        server $TEST_NGINX_FPM_TCP weight=3;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
    location = /status { fephp_status; }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request eval
[("GET /who.php") x 6, "GET /status?json"]
--- response_body_like eval
[(qr/^(tests|recycle|tcp)$/) x 6,
 qr/"upstream":"php","ok":true,"servers":\[\{"server":"unix:[^"]+recycle[^"]*","state":"up","backup":false,"weight":1,[^}]*"requests":1,"errors":0\},\{"server":"unix:[^"]+","state":"up","backup":false,"weight":2,[^}]*"requests":2,"errors":0\},\{"server":"127.0.0.1:\d+","state":"up","backup":false,"weight":3,[^}]*"requests":3,"errors":0\}\]/]
--- no_error_log
[error]



=== TEST 3: a refused server: the request goes to the next one (fephp_next_upstream default: error timeout)
--- http_config
    upstream php {
        server $TEST_NGINX_CLOSED_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request
GET /who.php
--- response_body
tests
--- error_log eval
qr/fephp: upstream "php" server 127\.0\.0\.1:\d+: .*; trying the next server/



=== TEST 4: the failed server is skipped for fail_timeout (max_fails=1): one error, then only the live server; fephp_status shows it failed
--- http_config
    upstream php {
        server $TEST_NGINX_CLOSED_TCP max_fails=1 fail_timeout=30s;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
    location = /status { fephp_status; }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request eval
["GET /who.php", "GET /who.php", "GET /who.php", "GET /who.php", "GET /status?json"]
--- response_body_like eval
[qr/^tests$/, qr/^tests$/, qr/^tests$/, qr/^tests$/,
 qr/\{"server":"127\.0\.0\.1:\d+","state":"failed","backup":false,"weight":1,"fails":1,"max_fails":1,"fail_timeout":30,"failed_until":\d+,"conns":0,"requests":1,"errors":1\},\{"server":"unix:[^"]+","state":"up",[^}]*"conns":0,"requests":4,"errors":0\}/]



=== TEST 5: fephp_next_upstream off: the refused attempt is a 502, not retried
--- http_config
    upstream php {
        server $TEST_NGINX_CLOSED_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_next_upstream off;
        fephp_pass php;
    }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request
GET /who.php
--- error_code: 502
--- no_error_log
trying the next server



=== TEST 6: fephp_next_upstream_tries 1: one attempt only
--- http_config
    upstream php {
        server $TEST_NGINX_CLOSED_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_next_upstream_tries 1;
        fephp_pass php;
    }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request
GET /who.php
--- error_code: 502
--- no_error_log
trying the next server



=== TEST 7: backup: used when the primary server fails
--- http_config
    upstream php {
        server $TEST_NGINX_CLOSED_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET backup;
    }
--- config
    location /a/ {
        root html;
        fephp_pass php;
    }
--- user_files
>>> a/who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request
GET /a/who.php
--- response_body
tests
--- error_log
trying the next server



=== TEST 7b: backup: never used while the primary server is up
--- http_config
    upstream up {
        server $TEST_NGINX_FPM_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET backup;
    }
--- config
    location /b/ {
        root html;
        fephp_pass up;
    }
--- user_files
>>> b/who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request eval
["GET /b/who.php", "GET /b/who.php", "GET /b/who.php"]
--- response_body eval
["tcp\n", "tcp\n", "tcp\n"]
--- no_error_log
trying the next server



=== TEST 8: every server refused: 502 after one attempt per server
--- http_config
    upstream php {
        server $TEST_NGINX_CLOSED_TCP;
        server unix:/nonexistent/fephp-upstream.sock;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request
GET /who.php
--- error_code: 502
--- error_log eval
[qr/upstream "php" server 127\.0\.0\.1:\d+: .*; trying the next server/, qr/\[error\].*fephp: .* while serving "\/who\.php"/]



=== TEST 9: a POST body is sent again to the next server, whole
--- http_config
    upstream php {
        server $TEST_NGINX_CLOSED_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        client_body_buffer_size 1k;
        fephp_pass php;
    }
--- user_files
>>> md5.php
<?php $b = file_get_contents('php://input'); echo getenv('FEPHP_POOL'), " ", strlen($b), " ", md5($b), "\n";
--- request eval
"POST /md5.php\n" . ("x" x 5000) . ("y" x 5000)
--- response_body eval
"tests 10000 " . Digest::MD5::md5_hex(("x" x 5000) . ("y" x 5000)) . "\n"
--- error_log
trying the next server



=== TEST 10: other balancers keep working: hash on an argument always picks the same server
--- http_config
    upstream php {
        hash $arg_k;
        server unix:$TEST_NGINX_FPM_SOCKET;
        server $TEST_NGINX_FPM_TCP;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
    location = /status { fephp_status; }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request eval
["GET /who.php?k=1", "GET /who.php?k=1", "GET /who.php?k=1", "GET /who.php?k=1", "GET /status?json"]
--- response_body_like eval
[qr/^(tests|tcp)$/, qr/^(tests|tcp)$/, qr/^(tests|tcp)$/, qr/^(tests|tcp)$/,
 qr/"requests":4,"errors":0\}.*"requests":0,|"requests":0,.*"requests":4,"errors":0\}/s]
--- no_error_log
[error]



=== TEST 11: a down server is never picked; least_conn works
--- http_config
    upstream php {
        least_conn;
        server $TEST_NGINX_FPM_TCP down;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
    location = /status { fephp_status; }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request eval
["GET /who.php", "GET /who.php", "GET /status?json"]
--- response_body_like eval
[qr/^tests$/, qr/^tests$/, qr/"servers":\[\{"server":"127\.0\.0\.1:\d+","state":"down",[^}]*"requests":0,[^}]*\},\{"server":"unix:[^"]+","state":"up",[^}]*"requests":2,"errors":0\}\]/]
--- no_error_log
[error]



=== TEST 12: fephp_next_upstream: bad value
--- http_config
    upstream php { server unix:$TEST_NGINX_FPM_SOCKET; }
--- config
    location / {
        fephp_next_upstream error http_500;
        fephp_pass php;
    }
--- must_die
--- error_log
"fephp_next_upstream" directive: invalid value "http_500" (expected error, timeout or off)



=== TEST 13: fephp_pass to an upstream name that has no block: nginx's own check
--- config
    location / {
        fephp_pass nosuchblock;
    }
--- must_die
--- error_log
no port in upstream "nosuchblock"



=== TEST 14: a server that times out (accepts, never answers): the request goes to the next one after fephp_read_timeout
--- http_config
    upstream php {
        server $TEST_NGINX_BLACKHOLE_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_read_timeout 1s;
        fephp_pass php;
    }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request
GET /who.php
--- response_body
tests
--- error_log eval
qr/fephp: upstream "php" server 127\.0\.0\.1:\d+: .*; trying the next server/



=== TEST 15: fephp_next_upstream error: a timeout is not retried (504)
--- http_config
    upstream php {
        server $TEST_NGINX_BLACKHOLE_TCP;
        server unix:$TEST_NGINX_FPM_SOCKET;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_read_timeout 1s;
        fephp_next_upstream error;
        fephp_pass php;
    }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request
GET /who.php
--- error_code: 504
--- no_error_log
trying the next server



=== TEST 16: fephp_status in Prometheus text: per-server series and the server pools' series
--- http_config
    upstream php {
        server unix:$TEST_NGINX_FPM_SOCKET weight=2;
        server $TEST_NGINX_CLOSED_TCP backup;
    }
--- config
    location ~ \.php$ {
        root html;
        fephp_pass php;
    }
    location = /status { fephp_status; }
--- user_files
>>> who.php
<?php echo getenv('FEPHP_POOL'), "\n";
--- request eval
["GET /who.php", "GET /status"]
--- response_body_like eval
[qr/^tests$/,
 qr/fephp_upstream_server_up\{upstream="php",server="unix:[^"]+",backup="false"\} 1\n.*fephp_upstream_server_up\{upstream="php",server="127\.0\.0\.1:\d+",backup="true"\} 1\n.*fephp_upstream_server_requests_total\{upstream="php",server="unix:[^"]+",backup="false"\} 1\n.*fephp_pool_connections_open\{engine="upstream php server unix:[^"]+"\} 1\n/s]
--- no_error_log
[error]
