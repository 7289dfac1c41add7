# fephp_pass embedded: PHP runs inside the nginx worker (one PHP thread per worker process).
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: hello world from embedded PHP
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> hello.php
<?php echo "hello from embedded\n";
--- request
GET /hello.php
--- response_body
hello from embedded
--- no_error_log
[error]



=== TEST 2: CGI params and query
--- config
    location ~ \.php(/|$) {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> info.php
<?php echo $_SERVER['REQUEST_METHOD'], " ", $_SERVER['SCRIPT_NAME'], " ", $_SERVER['PATH_INFO'] ?? '-', " ", $_GET['q'] ?? '-', "\n";
--- request
GET /info.php/x?q=1
--- response_body
GET /info.php /x 1
--- no_error_log
[error]



=== TEST 3: POST body (large, through the temp file)
--- config
    client_body_buffer_size 8k;
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> md5.php
<?php $b = file_get_contents('php://input'); echo strlen($b), " ", md5($b), "\n";
--- request eval
"POST /md5.php\n" . ("0123456789abcdef" x 65536)
--- response_body eval
"1048576 " . do { require Digest::MD5; Digest::MD5::md5_hex("0123456789abcdef" x 65536) } . "\n"
--- timeout: 10
--- no_error_log
[error]



=== TEST 4: fephp_php_ini applies to the embedded PHP
--- http_config
    fephp_php_ini memory_limit 77M;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> ini.php
<?php echo ini_get('memory_limit'), "\n";
--- request
GET /ini.php
--- response_body
77M
--- no_error_log
[error]



=== TEST 5: headers, status and cookies
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> h.php
<?php http_response_code(202); header('X-A: 1'); setcookie('a', '1'); setcookie('b', '2'); echo "x";
--- request
GET /h.php
--- error_code: 202
--- response_headers
X-A: 1
Set-Cookie: a=1, b=2
--- response_body chop
x



=== TEST 6: fephp_status reports the embedded engine as JSON
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
    location = /status { fephp_status; }
--- request
GET /status?json
--- response_body_like
"engine":"embedded","backend":"embedded","ok":true
--- no_error_log
[error]
