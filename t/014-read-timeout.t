# fephp_read_timeout while the response body streams (FPM): PHP sends the head and some body,
# flushes, then sleeps longer than fephp_read_timeout. The engine's read timeout ends the
# request after fephp_read_timeout (the response is truncated: the connection is closed), not
# the bridge's idle guard one second later.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 4);

no_long_string();
run_tests();

__DATA__

=== TEST 1: FPM stalls mid-body -> truncated after fephp_read_timeout by the engine
--- config
    location ~ \.php$ {
        root html;
        fephp_read_timeout 1s;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> stall.php
<?php while (ob_get_level()) ob_end_flush(); echo "first\n"; flush(); sleep(4); echo "late\n";
--- request
GET /stall.php HTTP/1.0
--- response_body
first
--- timeout: 1.8
--- error_log
read from PHP-FPM timed out after 1s
--- no_error_log
nothing received within fephp_read_timeout



=== TEST 2: FPM streams with pauses shorter than fephp_read_timeout (longer in total) -> complete
--- config
    location ~ \.php$ {
        root html;
        fephp_read_timeout 1s;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> drip.php
<?php while (ob_get_level()) ob_end_flush();
for ($i = 0; $i < 4; $i++) { echo "$i\n"; flush(); usleep(400000); }
--- request
GET /drip.php
--- response_body
0
1
2
3
--- timeout: 4
--- response_headers
Content-Type: text/html; charset=UTF-8
--- no_error_log
[error]
