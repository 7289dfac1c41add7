# fephp_pass to PHP-FPM: request/response mapping, bodies, HEAD, keep-alive, pipelining.
# Needs TEST_NGINX_FPM_SOCKET (t/run.sh starts php-fpm and sets it).
use Test::Nginx::Socket;

# status, body and one log pattern per block, plus the checks of extra requests and headers
plan tests => repeat_each() * (blocks() * 3 + 13);

no_long_string();
run_tests();

__DATA__

=== TEST 1: hello world through FPM
--- config
    location ~ \.php(/|$) {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> hello.php
<?php echo "hello from ", PHP_SAPI, "\n";
--- request
GET /hello.php
--- response_body
hello from fpm-fcgi
--- no_error_log
[error]



=== TEST 2: CGI params: script name, path info, query, request uri, method
--- config
    location ~ \.php(/|$) {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> app/info.php
<?php
foreach (['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_URI', 'DOCUMENT_URI', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'HTTP_X_FOO'] as $k) {
    echo $k, "=", $_SERVER[$k] ?? '-', "\n";
}
echo "root_ok=", (realpath($_SERVER['DOCUMENT_ROOT'] . '/app/info.php') === realpath(__FILE__)) ? 1 : 0, "\n";
--- request
GET /app/info.php/extra/path?a=1&b=2
--- more_headers
X-Foo: bar
--- response_body
REQUEST_METHOD=GET
SCRIPT_NAME=/app/info.php
PATH_INFO=/extra/path
QUERY_STRING=a=1&b=2
REQUEST_URI=/app/info.php/extra/path?a=1&b=2
DOCUMENT_URI=/app/info.php/extra/path
SERVER_PROTOCOL=HTTP/1.1
REMOTE_ADDR=127.0.0.1
HTTP_X_FOO=bar
root_ok=1
--- no_error_log
[error]



=== TEST 3: POST body in memory
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> post.php
<?php $b = file_get_contents('php://input'); echo strlen($b), " ", $b, " ", $_SERVER['CONTENT_TYPE'], " ", $_POST['k'] ?? '-', "\n";
--- request
POST /post.php
k=v&x=1
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- response_body
7 k=v&x=1 application/x-www-form-urlencoded v
--- no_error_log
[error]



=== TEST 4: large POST body goes through nginx's temp file, byte for byte
--- config
    client_body_buffer_size 8k;
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> md5.php
<?php $b = file_get_contents('php://input'); echo strlen($b), " ", md5($b), "\n";
--- request eval
"POST /md5.php\n" . ("0123456789abcdef" x 131072)
--- response_body eval
"2097152 " . do { require Digest::MD5; Digest::MD5::md5_hex("0123456789abcdef" x 131072) } . "\n"
--- timeout: 10
--- error_log
a client request body is buffered to a temporary file



=== TEST 5: response headers: status, Location, repeated Set-Cookie, Content-Type, Content-Length
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> h.php
<?php
http_response_code(201);
header('Content-Type: application/x-test');
header('X-Custom: yes');
header('Content-Length: 3');
setcookie('a', '1');
setcookie('b', '2');
echo "abc";
--- request
GET /h.php
--- error_code: 201
--- response_headers
Content-Type: application/x-test
Content-Length: 3
X-Custom: yes
!Transfer-Encoding
Set-Cookie: a=1, b=2
--- response_body chop
abc



=== TEST 6: Location without Status is a 302
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> r.php
<?php header('Location: /elsewhere');
--- request
GET /r.php
--- error_code: 302
--- response_headers_like
Location: /elsewhere
--- no_error_log
[error]



=== TEST 7: no Content-Length from PHP means chunked
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> c.php
<?php echo "one\n"; flush(); echo "two\n";
--- request
GET /c.php
--- response_headers
Transfer-Encoding: chunked
--- response_body
one
two



=== TEST 8: HEAD sends the head only
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> hd.php
<?php header('X-Method: ' . $_SERVER['REQUEST_METHOD']); echo "body that must not be sent\n";
--- request
HEAD /hd.php
--- response_headers
X-Method: HEAD
--- response_body
--- no_error_log
[error]



=== TEST 9: large streamed response (2 MB) arrives whole
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> big.php
<?php for ($i = 0; $i < 2048; $i++) { echo str_repeat(chr(65 + $i % 26), 1023), "\n"; }
--- request
GET /big.php
--- response_body eval
CORE::join "", map { (chr(65 + $_ % 26) x 1023) . "\n" } 0 .. 2047
--- timeout: 10
--- no_error_log
[error]



=== TEST 10: pipelined requests on one keep-alive connection
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> n.php
<?php echo "n=", $_GET['n'], "\n";
--- pipelined_requests eval
["GET /n.php?n=1", "GET /n.php?n=2", "GET /n.php?n=3"]
--- response_body eval
["n=1\n", "n=2\n", "n=3\n"]
--- no_error_log
[error]



=== TEST 11: front controller through try_files: the script is the rewritten URI, REQUEST_URI the original
--- config
    location /pretty/ {
        root html;
        try_files $uri /index.php$is_args$args;
    }
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> index.php
<?php echo $_SERVER['SCRIPT_NAME'], " ", $_SERVER['REQUEST_URI'], " ", $_SERVER['QUERY_STRING'], "\n";
--- request
GET /pretty/path?x=1
--- response_body
/index.php /pretty/path?x=1 x=1
--- no_error_log
[error]



=== TEST 12: fephp_index runs for a directory URI
--- config
    location /d/ {
        root html;
        fephp_index main.php;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> d/main.php
<?php echo "main ", $_SERVER['SCRIPT_NAME'], "\n";
--- request
GET /d/
--- response_body
main /d/main.php
--- no_error_log
[error]



=== TEST 13: fephp_split_path_info off keeps the whole path as the script
--- config
    location /s/ {
        root html;
        fephp_split_path_info off;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> s/a.php
<?php echo "ran\n";
--- request
GET /s/a.php/extra
--- error_code: 403
--- error_log
fephp: forbidden



=== TEST 14: fephp_status: Prometheus text by default, health JSON on ?json
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /status { fephp_status; }
--- request eval
["GET /status", "GET /status?json"]
--- response_body_like eval
[qr/# fephp_status of nginx worker pid \d+.*fephp_requests_total\{engine="fpm unix:[^"]+",class="2xx"\} \d+/s, qr/^\{"pid":\d+,"ok":true,"engines":\[\{"engine":"fpm unix:[^"]+","backend":"fpm","ok":true/]
--- no_error_log
[error]
