# FPM connection pool directives: fephp_max_connections (connections open per worker and FPM
# address; old name fephp_keepalive), fephp_max_requests (requests per connection), one pool per
# address. They have no embedded
# counterpart (embedded PHP has no connections); fephp_status's counters show the effect.
use Test::Nginx::Socket;

# status, body and one log pattern per block, plus the checks of extra requests and headers
plan tests => repeat_each() * (blocks() * 3 + 56);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fephp_keepalive (the deprecated old name of fephp_max_connections; its warning: t/005 TEST 5e): sequential requests reuse one kept-alive FastCGI connection
--- config
    location ~ \.php$ {
        root html;
        fephp_keepalive 1;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /status { fephp_status; }
--- user_files
>>> a.php
<?php echo "a\n";
--- request eval
["GET /a.php", "GET /a.php", "GET /a.php", "GET /status"]
--- response_body_like eval
[qr/^a$/, qr/^a$/, qr/^a$/, qr/fephp_pool_connections_opened_total\{engine="[^"]+"\} 1\n.*fephp_pool_connections_reused_total\{engine="[^"]+"\} 2\n/s]
--- no_error_log
[error]



=== TEST 2: fephp_max_requests 1: every request gets a fresh FastCGI connection
--- config
    location ~ \.php$ {
        root html;
        fephp_max_connections 1;
        fephp_max_requests 1;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /status { fephp_status; }
--- user_files
>>> a.php
<?php echo "a\n";
--- request eval
["GET /a.php", "GET /a.php", "GET /a.php", "GET /status"]
--- response_body_like eval
[qr/^a$/, qr/^a$/, qr/^a$/, qr/fephp_pool_connections_opened_total\{engine="[^"]+"\} 3\n.*fephp_pool_connections_reused_total\{engine="[^"]+"\} 0\n/s]
--- no_error_log
[error]



=== TEST 3: fephp_max_requests 2: a connection serves two requests, then a new one opens
--- config
    location ~ \.php$ {
        root html;
        fephp_max_connections 1;
        fephp_max_requests 2;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /status { fephp_status; }
--- user_files
>>> a.php
<?php echo "a\n";
--- request eval
["GET /a.php", "GET /a.php", "GET /a.php", "GET /status"]
--- response_body_like eval
[qr/^a$/, qr/^a$/, qr/^a$/, qr/fephp_pool_connections_opened_total\{engine="[^"]+"\} 2\n.*fephp_pool_connections_reused_total\{engine="[^"]+"\} 1\n/s]
--- no_error_log
[error]



=== TEST 4: locations passing to one FPM address share its one pool, whatever their timeouts (one location's fephp_max_connections is the pool's)
--- config
    location /a/ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /b/ {
        root html;
        fephp_read_timeout 5s;
        fephp_connect_timeout 2s;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /c/ {
        root html;
        fephp_max_connections 2;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /e/ {
        root html;
        fephp_pass embedded;
    }
    location = /status { fephp_status; }
--- request
GET /status?json
--- response_body_like
^\{"pid":\d+,"ok":true,"engines":\[\{"engine":"embedded",[^\]]*\{"engine":"fpm unix:[^"]+",[^{]*\}\]\}$
--- no_error_log
[error]



=== TEST 5: FPM closes kept-alive connections while they sit idle (its child exits after every request): every request still gets 200, each on a new connection
--- config
    location ~ \.php$ {
        root html;
        fephp_max_connections 1;
        fephp_pass unix:$TEST_NGINX_FPM_RECYCLE_SOCKET;
    }
    location = /status { fephp_status; }
--- user_files
>>> a.php
<?php echo "a\n";
--- request eval
["GET /a.php", "GET /a.php", "GET /a.php", "GET /a.php", "GET /status"]
--- response_body_like eval
[qr/^a$/, qr/^a$/, qr/^a$/, qr/^a$/, qr/fephp_pool_connections_opened_total\{engine="[^"]+"\} 4\n/s]
--- no_error_log
[error]



=== TEST 6: the health probe and requests share the nginx-driven pool: probe, request, probe all succeed
--- config
    location ~ \.php$ {
        root html;
        fephp_max_connections 2;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /status { fephp_status; }
--- user_files
>>> a.php
<?php echo "a\n";
--- request eval
["GET /status?json", "GET /a.php", "GET /status?json", "GET /a.php"]
--- response_body_like eval
[qr/"ok":true/, qr/^a$/, qr/"ok":true/, qr/^a$/]
--- no_error_log
[error]



=== TEST 7: fephp_pass host:port (TCP): connections opened on nginx's event loop, kept alive and reused
--- config
    location ~ \.php$ {
        root html;
        fephp_max_connections 1;
        fephp_pass $TEST_NGINX_FPM_TCP;
    }
    location = /status { fephp_status; }
--- user_files
>>> tcp.php
<?php echo "tcp ", $_SERVER['REQUEST_URI'], "\n";
--- request eval
["GET /tcp.php?1", "GET /tcp.php?2", "GET /tcp.php?3", "GET /status"]
--- response_body_like eval
[qr/^tcp \/tcp\.php\?1$/, qr/^tcp \/tcp\.php\?2$/, qr/^tcp \/tcp\.php\?3$/, qr/fephp_pool_connections_reused_total\{engine="[^"]+"\} [1-9]/s]
--- no_error_log
[error]



=== TEST 8: fephp_pass host:port with nothing listening -> 502 and an [error] line
--- config
    location ~ \.php$ {
        root html;
        fephp_pass $TEST_NGINX_CLOSED_TCP;
    }
--- user_files
>>> a.php
<?php echo "never\n";
--- request
GET /a.php
--- error_code: 502
--- error_log
fephp: backend unreachable
