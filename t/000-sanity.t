# Sanity tests for the project's Test::Nginx::Socket runner itself.
# They use stock nginx features only (no fe-php module), e.g.:
#   TEST_NGINX_BINARY=/usr/sbin/nginx prove -r t/000-sanity.t

use Test::Nginx::Socket;

repeat_each(2);

# status + body per block, plus the headers, log patterns and extra requests
plan tests => repeat_each() * (blocks() * 2 + 19);

no_long_string();
run_tests();

__DATA__

=== TEST 1: return 200
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok
--- no_error_log
[error]



=== TEST 2: static user file, inline error_code
--- config
--- user_files
>>> hello.txt
Hello, world
>>> sub/dir/page.html 202001020304
<p>page</p>
--- request
GET /hello.txt
--- error_code: 200
--- response_body
Hello, world
--- response_headers
Content-Type: text/plain
Content-Length: 13
!X-Absent



=== TEST 3: more_headers echoed back
--- config
    location = /echo {
        add_header X-Foo-Back $http_x_foo;
        return 200 "foo=$http_x_foo bar=$http_x_bar\n";
    }
--- request
GET /echo
--- more_headers
X-Foo: hello
X-Bar: world
--- response_headers
X-Foo-Back: hello
--- response_body
foo=hello bar=world



=== TEST 4: 404 logs an error
--- config
--- request
GET /missing.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log eval
["No such file or directory",
 qr/\[error\] .*open\(\) ".*missing\.html" failed/]



=== TEST 5: response_headers_like and chunked body
--- config
    location = /chunked {
        # no Content-Length is known for this one: nginx sends it chunked
        ssi on;
        default_type text/html;
        alias $TEST_NGINX_SERVER_ROOT/html/ssi.html;
    }
--- user_files
>>> ssi.html
a<!--# echo var="uri" -->b
--- request
GET /chunked
--- response_headers_like
Transfer-Encoding: chunked
Content-Type: text/ht.*
--- response_body
a/chunkedb



=== TEST 6: pipelined requests
--- config
    location /p {
        return 200 "uri=$uri\n";
    }
--- pipelined_requests eval
["GET /p/one", "GET /p/two", "HEAD /p/three"]
--- response_body eval
["uri=/p/one\n", "uri=/p/two\n", ""]
--- error_code eval
[200, 200, 200]



=== TEST 7: main_config and http_config
--- main_config
    # both directives are only valid in the main context
    pcre_jit on;
    worker_rlimit_nofile 2048;
--- http_config
    map $uri $mapped {
        default  "none";
        /m       "mapped-ok";
    }
--- config
    location = /m {
        return 200 "$mapped\n";
    }
--- request
GET /m
--- response_body
mapped-ok



=== TEST 8: POST with a body
--- config
    location = /post {
        client_body_buffer_size 1m;
        return 200 "$request_method $content_length\n";
    }
--- request
POST /post
hello world
--- response_body
POST 11



=== TEST 9: request eval and response_body eval
--- config
    location = /big {
        return 200 "$arg_x$arg_x$arg_x";
    }
--- request eval
"GET /big?x=" . ("a" x 1000)
--- response_body eval
"a" x 3000



=== TEST 10: error_code other than 200, custom body
--- config
    location = /teapot {
        return 418 "short and stout";
    }
--- request
GET /teapot
--- error_code: 418
--- response_body chomp
short and stout



=== TEST 11: must_die with a bad directive
--- config
    location = /bad {
        this_directive_does_not_exist on;
    }
--- must_die
--- error_log
unknown directive "this_directive_does_not_exist"



=== TEST 12: raw_request
--- config
    location = /raw {
        return 200 "raw $server_protocol\n";
    }
--- raw_request eval
"GET /raw HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body
raw HTTP/1.0



=== TEST 13: several requests, one connection each
--- config
    location /multi {
        return 200 "$uri";
    }
--- request eval
["GET /multi/a", "GET /multi/b"]
--- response_body eval
["/multi/a", "/multi/b"]



=== TEST 14: error_log from the config (info level), wait
--- config
    location = /warn {
        return 302 /elsewhere;
    }
--- log_level: info
--- request
GET /warn
--- error_code: 302
--- response_headers_like
Location: http://localhost:\d+/elsewhere
--- wait: 0.1
--- no_error_log
[error]
[crit]
[alert]



=== TEST 15: user_files: a date after the name sets the file's mtime (GMT)
--- config
--- user_files
>>> sub/dir/page.html 202001020304
<p>page</p>
--- request
GET /sub/dir/page.html
--- response_headers
Last-Modified: Thu, 02 Jan 2020 03:04:00 GMT
--- response_body
<p>page</p>
