# X-Accel-* response headers and fephp_hide_header / fephp_pass_header / fephp_ignore_headers,
# on both backends, as nginx's upstream module treats them for fastcgi_pass
# (ngx_http_upstream_process_headers and its X-Accel handlers): X-Accel-Redirect redirects
# internally (URI with args, or @name; `internal;` locations reachable; PHP's body and all but
# the redirect-kept headers dropped; a POST becomes a GET for a URI; an unsafe URI is a 404),
# X-Accel-Limit-Rate sets the request's rate, X-Accel-Charset the charset the charset filter
# uses; Status and X-Accel-* are hidden unless passed. FPM blocks need TEST_NGINX_FPM_SOCKET
# (t/run.sh starts php-fpm and sets it).
use Test::Nginx::Socket;

# status, body, one response header and one log pattern per block
plan tests => repeat_each() * (blocks() * 4);

no_long_string();
run_tests();

__DATA__

=== TEST 1: embedded: X-Accel-Redirect to an internal location: the file is sent, PHP's body and plain headers are dropped, its Content-Type kept
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
    location /protected/ {
        internal;
        root html;
    }
--- user_files
>>> dl.php
<?php
header("Content-Type: application/x-test");
header("X-From-Php: 1");
header("X-Accel-Redirect: /protected/file.txt");
echo "php body";
>>> protected/file.txt
the file
--- request
GET /dl.php
--- error_code: 200
--- response_body
the file
--- response_headers
Content-Type: application/x-test
--- no_error_log
[error]




=== TEST 2: FPM: X-Accel-Redirect to an internal location: the file is sent, PHP's body and plain headers are dropped, its Content-Type kept
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /protected/ {
        internal;
        root html;
    }
--- user_files
>>> dl.php
<?php
header("Content-Type: application/x-test");
header("X-From-Php: 1");
header("X-Accel-Redirect: /protected/file.txt");
echo "php body";
>>> protected/file.txt
the file
--- request
GET /dl.php
--- error_code: 200
--- response_body
the file
--- response_headers
Content-Type: application/x-test
--- no_error_log
[error]




=== TEST 3: embedded: X-Accel-Redirect: plain headers of PHP are not copied
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
    location /protected/ {
        internal;
        root html;
    }
--- user_files
>>> dl.php
<?php
header("X-From-Php: 1");
header("X-Accel-Redirect: /protected/file.txt");
echo "php body";
>>> protected/file.txt
the file
--- request
GET /dl.php
--- error_code: 200
--- response_body
the file
--- response_headers
X-From-Php:
--- no_error_log
[error]




=== TEST 4: FPM: X-Accel-Redirect: plain headers of PHP are not copied
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /protected/ {
        internal;
        root html;
    }
--- user_files
>>> dl.php
<?php
header("X-From-Php: 1");
header("X-Accel-Redirect: /protected/file.txt");
echo "php body";
>>> protected/file.txt
the file
--- request
GET /dl.php
--- error_code: 200
--- response_body
the file
--- response_headers
X-From-Php:
--- no_error_log
[error]




=== TEST 5: embedded: an internal location is not reachable directly
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
    location /protected/ {
        internal;
        root html;
    }
--- user_files
>>> protected/file.txt
the file
--- request
GET /protected/file.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- response_headers
X-Accel-Redirect:
--- no_error_log
[alert]




=== TEST 6: FPM: an internal location is not reachable directly
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /protected/ {
        internal;
        root html;
    }
--- user_files
>>> protected/file.txt
the file
--- request
GET /protected/file.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- response_headers
X-Accel-Redirect:
--- no_error_log
[alert]




=== TEST 7: embedded: X-Accel-Redirect with args; a POST becomes a GET
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
    location /internal/ {
        internal;
        return 200 "$request_method $uri $args\n";
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /internal/x?a=1&b=2");
--- request
POST /go.php
body
--- error_code: 200
--- response_body
GET /internal/x a=1&b=2
--- response_headers
X-Accel-Redirect:
--- no_error_log
[error]




=== TEST 8: FPM: X-Accel-Redirect with args; a POST becomes a GET
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /internal/ {
        internal;
        return 200 "$request_method $uri $args\n";
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /internal/x?a=1&b=2");
--- request
POST /go.php
body
--- error_code: 200
--- response_body
GET /internal/x a=1&b=2
--- response_headers
X-Accel-Redirect:
--- no_error_log
[error]




=== TEST 9: embedded: X-Accel-Redirect to a named location keeps the method
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
    location @named {
        return 200 "named $request_method\n";
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: @named"); echo "php body";
--- request
POST /go.php
body
--- error_code: 200
--- response_body
named POST
--- response_headers
X-Accel-Redirect:
--- no_error_log
[error]




=== TEST 10: FPM: X-Accel-Redirect to a named location keeps the method
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location @named {
        return 200 "named $request_method\n";
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: @named"); echo "php body";
--- request
POST /go.php
body
--- error_code: 200
--- response_body
named POST
--- response_headers
X-Accel-Redirect:
--- no_error_log
[error]




=== TEST 11: embedded: X-Accel-Redirect to an unsafe URI is a 404
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /../etc/passwd");
--- request
GET /go.php
--- error_code: 404
--- response_body_like: 404 Not Found
--- response_headers
X-Accel-Redirect:
--- error_log
unsafe URI "/../etc/passwd" was detected




=== TEST 12: FPM: X-Accel-Redirect to an unsafe URI is a 404
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /../etc/passwd");
--- request
GET /go.php
--- error_code: 404
--- response_body_like: 404 Not Found
--- response_headers
X-Accel-Redirect:
--- error_log
unsafe URI "/../etc/passwd" was detected




=== TEST 13: embedded: fephp_ignore_headers X-Accel-Redirect: PHP's response is sent
--- config
    location ~ \.php$ {
        root html;
        fephp_ignore_headers X-Accel-Redirect;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /elsewhere"); echo "php body\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
php body
--- response_headers
X-Accel-Redirect:
--- no_error_log
[error]




=== TEST 14: FPM: fephp_ignore_headers X-Accel-Redirect: PHP's response is sent
--- config
    location ~ \.php$ {
        root html;
        fephp_ignore_headers X-Accel-Redirect;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /elsewhere"); echo "php body\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
php body
--- response_headers
X-Accel-Redirect:
--- no_error_log
[error]




=== TEST 15: embedded: fephp_pass_header X-Accel-Redirect passes it (and still redirects)
--- config
    location ~ \.php$ {
        root html;
        fephp_pass_header X-Accel-Redirect;
        fephp_ignore_headers X-Accel-Redirect;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /elsewhere"); echo "php body\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
php body
--- response_headers
X-Accel-Redirect: /elsewhere
--- no_error_log
[error]




=== TEST 16: FPM: fephp_pass_header X-Accel-Redirect passes it (and still redirects)
--- config
    location ~ \.php$ {
        root html;
        fephp_pass_header X-Accel-Redirect;
        fephp_ignore_headers X-Accel-Redirect;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Redirect: /elsewhere"); echo "php body\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
php body
--- response_headers
X-Accel-Redirect: /elsewhere
--- no_error_log
[error]




=== TEST 17: embedded: X-Accel-Limit-Rate sets the request's rate ($limit_rate)
--- config
    location ~ \.php$ {
        root html;
        add_header X-Rate $limit_rate always;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Limit-Rate: 100000"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Rate: 100000
--- no_error_log
[error]




=== TEST 18: FPM: X-Accel-Limit-Rate sets the request's rate ($limit_rate)
--- config
    location ~ \.php$ {
        root html;
        add_header X-Rate $limit_rate always;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Limit-Rate: 100000"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Rate: 100000
--- no_error_log
[error]




=== TEST 19: embedded: fephp_ignore_headers X-Accel-Limit-Rate
--- config
    location ~ \.php$ {
        root html;
        fephp_ignore_headers X-Accel-Limit-Rate;
        add_header X-Rate $limit_rate always;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Limit-Rate: 100000"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Rate: 0
--- no_error_log
[error]




=== TEST 20: FPM: fephp_ignore_headers X-Accel-Limit-Rate
--- config
    location ~ \.php$ {
        root html;
        fephp_ignore_headers X-Accel-Limit-Rate;
        add_header X-Rate $limit_rate always;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Limit-Rate: 100000"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Rate: 0
--- no_error_log
[error]




=== TEST 21: embedded: X-Accel-Charset sets the charset nginx's charset filter uses
--- config
    location ~ \.php$ {
        root html;
        source_charset utf-8;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php ini_set("default_charset", ""); header("Content-Type: text/plain"); header("X-Accel-Charset: utf-8"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
Content-Type: text/plain; charset=utf-8
--- no_error_log
[error]




=== TEST 22: FPM: X-Accel-Charset sets the charset nginx's charset filter uses
--- config
    location ~ \.php$ {
        root html;
        source_charset utf-8;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php ini_set("default_charset", ""); header("Content-Type: text/plain"); header("X-Accel-Charset: utf-8"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
Content-Type: text/plain; charset=utf-8
--- no_error_log
[error]




=== TEST 23: embedded: fephp_ignore_headers X-Accel-Charset
--- config
    location ~ \.php$ {
        root html;
        source_charset utf-8;
        fephp_ignore_headers X-Accel-Charset;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php ini_set("default_charset", ""); header("Content-Type: text/plain"); header("X-Accel-Charset: utf-8"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
Content-Type: text/plain
--- no_error_log
[error]




=== TEST 24: FPM: fephp_ignore_headers X-Accel-Charset
--- config
    location ~ \.php$ {
        root html;
        source_charset utf-8;
        fephp_ignore_headers X-Accel-Charset;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php ini_set("default_charset", ""); header("Content-Type: text/plain"); header("X-Accel-Charset: utf-8"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
Content-Type: text/plain
--- no_error_log
[error]




=== TEST 25: embedded: X-Accel-Expires and X-Accel-Buffering are hidden by default
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Expires: 10"); header("X-Accel-Buffering: no"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Accel-Expires:
--- no_error_log
[error]




=== TEST 26: FPM: X-Accel-Expires and X-Accel-Buffering are hidden by default
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Expires: 10"); header("X-Accel-Buffering: no"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Accel-Expires:
--- no_error_log
[error]




=== TEST 27: embedded: fephp_hide_header hides a header
--- config
    location ~ \.php$ {
        root html;
        fephp_hide_header X-Powered-By;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Powered-By: PHP/x"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Powered-By:
--- no_error_log
[error]




=== TEST 28: FPM: fephp_hide_header hides a header
--- config
    location ~ \.php$ {
        root html;
        fephp_hide_header X-Powered-By;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Powered-By: PHP/x"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Powered-By:
--- no_error_log
[error]




=== TEST 29: embedded: fephp_pass_header passes a header hidden by default
--- config
    location ~ \.php$ {
        root html;
        fephp_pass_header X-Accel-Buffering;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Buffering: yes"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Accel-Buffering: yes
--- no_error_log
[error]




=== TEST 30: FPM: fephp_pass_header passes a header hidden by default
--- config
    location ~ \.php$ {
        root html;
        fephp_pass_header X-Accel-Buffering;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Accel-Buffering: yes"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Accel-Buffering: yes
--- no_error_log
[error]




=== TEST 31: embedded: fephp_hide_header of a level replaces the parent's lists
--- config
    fephp_hide_header X-Secret;
    location ~ \.php$ {
        root html;
        fephp_pass_header X-Accel-Expires;
        fephp_pass embedded;
    }
--- user_files
>>> go.php
<?php header("X-Secret: s"); header("X-Accel-Expires: 5"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Secret: s
--- no_error_log
[error]




=== TEST 32: FPM: fephp_hide_header of a level replaces the parent's lists
--- config
    fephp_hide_header X-Secret;
    location ~ \.php$ {
        root html;
        fephp_pass_header X-Accel-Expires;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> go.php
<?php header("X-Secret: s"); header("X-Accel-Expires: 5"); echo "ok\n";
--- request
GET /go.php
--- error_code: 200
--- response_body
ok
--- response_headers
X-Secret: s
--- no_error_log
[error]
