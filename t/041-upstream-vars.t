# nginx's own $upstream_* variables for fephp_pass, both backends: the bridge fills
# r->upstream_states as ngx_http_upstream.c does ($upstream_status, $upstream_addr,
# $upstream_response_time, $upstream_header_time, $upstream_bytes_received,
# $upstream_response_length), states of an X-Accel-Redirect chain separated by " : ". The
# access log goes to the error log here so `error_log` can check its line. FPM blocks need
# TEST_NGINX_FPM_SOCKET (t/run.sh starts php-fpm and sets it).
use Test::Nginx::Socket;

# status, body, one response header and one log line per block
plan tests => repeat_each() * (blocks() * 4);

no_long_string();
run_tests();

__DATA__

=== TEST 1: embedded: $upstream_status, $upstream_addr, response and header time, bytes received
--- http_config
    log_format fephp "fephp-log status=$upstream_status addr=$upstream_addr rt=$upstream_response_time ht=$upstream_header_time bytes=$upstream_bytes_received len=$upstream_response_length";
--- config
    access_log logs/error.log fephp;
    location ~ \.php$ {
        root html;
        add_header X-Up "$upstream_status $upstream_addr" always;
        fephp_pass embedded;
    }
--- user_files
>>> hello.php
<?php echo "hello";
--- request
GET /hello.php
--- error_code: 200
--- response_body chomp
hello
--- response_headers_like
X-Up: 200 embedded
--- error_log eval
qr/fephp-log status=200 addr=embedded rt=\d+\.\d{3} ht=\d+\.\d{3} bytes=5 len=5/




=== TEST 2: FPM: $upstream_status, $upstream_addr, response and header time, bytes received
--- http_config
    log_format fephp "fephp-log status=$upstream_status addr=$upstream_addr rt=$upstream_response_time ht=$upstream_header_time bytes=$upstream_bytes_received len=$upstream_response_length";
--- config
    access_log logs/error.log fephp;
    location ~ \.php$ {
        root html;
        add_header X-Up "$upstream_status $upstream_addr" always;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> hello.php
<?php echo "hello";
--- request
GET /hello.php
--- error_code: 200
--- response_body chomp
hello
--- response_headers_like
X-Up: 200 unix:/\S+
--- error_log eval
qr/fephp-log status=200 addr=unix:\/\S+ rt=\d+\.\d{3} ht=\d+\.\d{3} bytes=5 len=5/




=== TEST 3: embedded: PHP's status is $upstream_status
--- http_config
    log_format fephp "fephp-log status=$upstream_status addr=$upstream_addr rt=$upstream_response_time ht=$upstream_header_time bytes=$upstream_bytes_received len=$upstream_response_length";
--- config
    access_log logs/error.log fephp;
    location ~ \.php$ {
        root html;
        add_header X-Up "$upstream_status $upstream_addr" always;
        fephp_pass embedded;
    }
--- user_files
>>> nf.php
<?php http_response_code(404); echo "nope";
--- request
GET /nf.php
--- error_code: 404
--- response_body chomp
nope
--- response_headers_like
X-Up: 404 embedded
--- error_log eval
qr/fephp-log status=404 addr=embedded rt=\d+\.\d{3} ht=\d+\.\d{3} bytes=4 len=4/




=== TEST 4: FPM: PHP's status is $upstream_status
--- http_config
    log_format fephp "fephp-log status=$upstream_status addr=$upstream_addr rt=$upstream_response_time ht=$upstream_header_time bytes=$upstream_bytes_received len=$upstream_response_length";
--- config
    access_log logs/error.log fephp;
    location ~ \.php$ {
        root html;
        add_header X-Up "$upstream_status $upstream_addr" always;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> nf.php
<?php http_response_code(404); echo "nope";
--- request
GET /nf.php
--- error_code: 404
--- response_body chomp
nope
--- response_headers_like
X-Up: 404 unix:/\S+
--- error_log eval
qr/fephp-log status=404 addr=unix:\/\S+ rt=\d+\.\d{3} ht=\d+\.\d{3} bytes=4 len=4/




=== TEST 5: embedded: X-Accel-Redirect to PHP again: two states, as nginx separates them
--- http_config
    log_format fephp "fephp-log status=$upstream_status addr=$upstream_addr rt=$upstream_response_time ht=$upstream_header_time bytes=$upstream_bytes_received len=$upstream_response_length";
--- config
    access_log logs/error.log fephp;
    location ~ \.php$ {
        root html;
        add_header X-Up "$upstream_status $upstream_addr" always;
        fephp_pass embedded;
    }
--- user_files
>>> a.php
<?php header("X-Accel-Redirect: /b.php");
>>> b.php
<?php echo "from b";
--- request
GET /a.php
--- error_code: 200
--- response_body chomp
from b
--- response_headers_like
X-Up: 200 : 200 embedded : embedded
--- error_log eval
qr/fephp-log status=200 : 200 addr=embedded : embedded rt=\d+\.\d{3} : \d+\.\d{3} ht=\d+\.\d{3} : \d+\.\d{3} bytes=0 : 6 len=0 : 6/




=== TEST 6: FPM: X-Accel-Redirect to PHP again: two states, as nginx separates them
--- http_config
    log_format fephp "fephp-log status=$upstream_status addr=$upstream_addr rt=$upstream_response_time ht=$upstream_header_time bytes=$upstream_bytes_received len=$upstream_response_length";
--- config
    access_log logs/error.log fephp;
    location ~ \.php$ {
        root html;
        add_header X-Up "$upstream_status $upstream_addr" always;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> a.php
<?php header("X-Accel-Redirect: /b.php");
>>> b.php
<?php echo "from b";
--- request
GET /a.php
--- error_code: 200
--- response_body chomp
from b
--- response_headers_like
X-Up: 200 : 200 unix:/\S+ : unix:/\S+
--- error_log eval
qr/fephp-log status=200 : 200 addr=unix:\/\S+ : unix:\/\S+ rt=\d+\.\d{3} : \d+\.\d{3} ht=\d+\.\d{3} : \d+\.\d{3} bytes=0 : 6 len=0 : 6/




=== TEST 7: FPM unreachable: 502 is $upstream_status, no header time
--- http_config
    log_format fephp "fephp-log status=$upstream_status addr=$upstream_addr rt=$upstream_response_time ht=$upstream_header_time bytes=$upstream_bytes_received len=$upstream_response_length";
--- config
    access_log logs/error.log fephp;
    location ~ \.php$ {
        root html;
        add_header X-Up "$upstream_status $upstream_addr" always;
        fephp_pass unix:/nonexistent/fephp-040.sock;
    }
--- user_files
>>> hello.php
<?php echo "hello";
--- request
GET /hello.php
--- error_code: 502
--- response_body_like: 502 Bad Gateway
--- response_headers_like
X-Up: 502 unix:/nonexistent/fephp-040.sock
--- error_log eval
qr/fephp-log status=502 addr=unix:\/nonexistent\/fephp-040.sock rt=\d+\.\d{3} ht=- bytes=0 len=0/
