# Response headers as fastcgi_pass passes them, on both backends (each group starts with the
# fastcgi_pass reference on the same php-fpm): a relative Location stays relative (nginx makes
# only r->headers_out.location absolute, which the upstream module sets for absolute URLs only);
# PHP's status line ("Status: 204 No Content") is nginx's status line, so a 204 keeps its
# Content-Type.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 4);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fastcgi_pass (reference): relative Location with 301 stays relative
--- config
    location ~ \.php$ {
        root html;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> redir.php
<?php header("Location: /x", true, 301);
--- request
GET /redir.php
--- error_code: 301
--- response_headers
Location: /x
--- no_error_log
[error]
[alert]



=== TEST 2: fephp_pass FPM: relative Location with 301 stays relative
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> redir.php
<?php header("Location: /x", true, 301);
--- request
GET /redir.php
--- error_code: 301
--- response_headers
Location: /x
--- no_error_log
[error]
[alert]



=== TEST 3: fephp_pass embedded: relative Location with 301 stays relative
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> redir.php
<?php header("Location: /x", true, 301);
--- request
GET /redir.php
--- error_code: 301
--- response_headers
Location: /x
--- no_error_log
[error]
[alert]



=== TEST 4: fastcgi_pass (reference): absolute Location (implicit 302) passes unchanged
--- config
    location ~ \.php$ {
        root html;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> redir.php
<?php header("Location: http://example.com/y");
--- request
GET /redir.php
--- error_code: 302
--- response_headers
Location: http://example.com/y
--- no_error_log
[error]
[alert]



=== TEST 5: fephp_pass FPM: absolute Location (implicit 302) passes unchanged
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> redir.php
<?php header("Location: http://example.com/y");
--- request
GET /redir.php
--- error_code: 302
--- response_headers
Location: http://example.com/y
--- no_error_log
[error]
[alert]



=== TEST 6: fephp_pass embedded: absolute Location (implicit 302) passes unchanged
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> redir.php
<?php header("Location: http://example.com/y");
--- request
GET /redir.php
--- error_code: 302
--- response_headers
Location: http://example.com/y
--- no_error_log
[error]
[alert]



=== TEST 7: fastcgi_pass (reference): 204 keeps its Content-Type
--- config
    location ~ \.php$ {
        root html;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> nc.php
<?php http_response_code(204); header("Content-Type: application/json");
--- request
GET /nc.php
--- error_code: 204
--- response_headers
Content-Type: application/json
--- no_error_log
[error]
[alert]



=== TEST 8: fephp_pass FPM: 204 keeps its Content-Type
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> nc.php
<?php http_response_code(204); header("Content-Type: application/json");
--- request
GET /nc.php
--- error_code: 204
--- response_headers
Content-Type: application/json
--- no_error_log
[error]
[alert]



=== TEST 9: fephp_pass embedded: 204 keeps its Content-Type
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> nc.php
<?php http_response_code(204); header("Content-Type: application/json");
--- request
GET /nc.php
--- error_code: 204
--- response_headers
Content-Type: application/json
--- no_error_log
[error]
[alert]
