# Errors: engine errors map to statuses (with an [error] line), fephp_intercept_errors,
# fephp_read_timeout.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: FPM not listening -> 502 and an [error] line
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_SERVROOT/no-such.sock;
    }
--- user_files
>>> a.php
<?php echo "never\n";
--- request
GET /a.php
--- error_code: 502
--- error_log
fephp: backend unreachable



=== TEST 2: missing script -> 404
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- request
GET /missing.php
--- error_code: 404
--- error_log
fephp: not found



=== TEST 3: a non-PHP file behind fephp_pass is refused -> 403
--- config
    location /up/ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> up/image.jpg
<?php echo "evil\n";
--- request
GET /up/image.jpg
--- error_code: 403
--- error_log
fephp: forbidden



=== TEST 4: PHP's own 404 passes through without fephp_intercept_errors
--- config
    error_page 404 /err.html;
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> nf.php
<?php http_response_code(404); echo "php says 404\n";
>>> err.html
nginx error page
--- request
GET /nf.php
--- error_code: 404
--- response_body
php says 404
--- no_error_log
[error]



=== TEST 5: fephp_intercept_errors on sends PHP's 404 through error_page
--- config
    error_page 404 /err.html;
    location ~ \.php$ {
        root html;
        fephp_intercept_errors on;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> nf.php
<?php http_response_code(404); echo "php says 404\n";
>>> err.html
nginx error page
--- request
GET /nf.php
--- error_code: 404
--- response_body
nginx error page
--- no_error_log
[error]



=== TEST 6: fephp_intercept_errors on without a matching error_page passes PHP's response
--- config
    error_page 404 /err.html;
    location ~ \.php$ {
        root html;
        fephp_intercept_errors on;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> e.php
<?php http_response_code(503); echo "php says 503\n";
--- request
GET /e.php
--- error_code: 503
--- response_body
php says 503
--- no_error_log
[error]



=== TEST 7: fephp_read_timeout -> 504
--- config
    location ~ \.php$ {
        root html;
        fephp_read_timeout 1s;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> slow.php
<?php sleep(3); echo "late\n";
--- request
GET /slow.php
--- error_code: 504
--- timeout: 6
--- error_log
fephp: backend timeout
