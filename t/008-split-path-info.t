# fephp_split_path_info on | off | REGEX, on both backends. The regex form works like
# fastcgi_split_path_info: capture 1 is SCRIPT_NAME, capture 2 PATH_INFO; the core (Site's
# SplitRule) applies it after decoding and normalizing the path, so traversal and non-PHP
# scripts are still refused.
use Test::Nginx::Socket;

# status, body and one log pattern per block, plus the checks of extra requests and headers
plan tests => repeat_each() * (blocks() * 3 + 12);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fpm: fephp_split_path_info REGEX sets SCRIPT_NAME and PATH_INFO from the two captures
--- config
    location ~ ^(.+?\.php)(/.*)?$ {
        root html;
        fephp_split_path_info ^(.+?\.php)(/.*)$;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> app/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request eval
["GET /app/a.php/x/y?q=1", "GET /app/a.php"]
--- response_body eval
["/app/a.php [/x/y] a.php\n", "/app/a.php [] a.php\n"]
--- no_error_log
[error]



=== TEST 2: fpm: a greedy REGEX splits at the last .php/, the default at the first
--- config
    location /greedy/ {
        root html;
        fephp_split_path_info "^(.+\.php)(/.*)$";
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /first/ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> greedy/d.php/x.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
>>> first/d.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request eval
["GET /greedy/d.php/x.php/y", "GET /first/d.php/x.php/y"]
--- response_body eval
["/greedy/d.php/x.php [/y] x.php\n", "/first/d.php [/x.php/y] d.php\n"]
--- no_error_log
[error]



=== TEST 3: fpm: a REGEX that does not match leaves the whole path as the script (/r/a.php)
--- config
    location /r/ {
        root html;
        fephp_split_path_info "^(/r/only/.+?\.php)(/.*)$";
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> r/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /r/a.php
--- error_code: 200
--- response_body_like eval
qr{^/r/a.php \[\] a.php$}
--- no_error_log
[error]



=== TEST 4: fpm: a REGEX that does not match leaves the whole path as the script (/r/a.php/x)
--- config
    location /r/ {
        root html;
        fephp_split_path_info "^(/r/only/.+?\.php)(/.*)$";
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> r/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /r/a.php/x
--- error_code: 403
--- response_body_like eval
qr/403/
--- error_log
fephp: forbidden: /r/a.php/x is not a PHP script



=== TEST 5: fpm: fephp_split_path_info off at server level is inherited; a location may turn it back on (/off/a.php/x)
--- config
    fephp_split_path_info off;
    location /off/ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /on/ {
        root html;
        fephp_split_path_info on;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> off/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
>>> on/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /off/a.php/x
--- error_code: 403
--- response_body_like eval
qr/403/
--- error_log
fephp: forbidden



=== TEST 6: fpm: fephp_split_path_info off at server level is inherited; a location may turn it back on (/on/a.php/x)
--- config
    fephp_split_path_info off;
    location /off/ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /on/ {
        root html;
        fephp_split_path_info on;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> off/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
>>> on/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /on/a.php/x
--- error_code: 200
--- response_body_like eval
qr{^/on/a.php \[/x\] a.php$}
--- no_error_log
[error]



=== TEST 7: embedded: fephp_split_path_info REGEX sets SCRIPT_NAME and PATH_INFO from the two captures
--- config
    location ~ ^(.+?\.php)(/.*)?$ {
        root html;
        fephp_split_path_info ^(.+?\.php)(/.*)$;
        fephp_pass embedded;
    }
--- user_files
>>> app/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request eval
["GET /app/a.php/x/y?q=1", "GET /app/a.php"]
--- response_body eval
["/app/a.php [/x/y] a.php\n", "/app/a.php [] a.php\n"]
--- no_error_log
[error]



=== TEST 8: embedded: a greedy REGEX splits at the last .php/, the default at the first
--- config
    location /greedy/ {
        root html;
        fephp_split_path_info "^(.+\.php)(/.*)$";
        fephp_pass embedded;
    }
    location /first/ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> greedy/d.php/x.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
>>> first/d.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request eval
["GET /greedy/d.php/x.php/y", "GET /first/d.php/x.php/y"]
--- response_body eval
["/greedy/d.php/x.php [/y] x.php\n", "/first/d.php [/x.php/y] d.php\n"]
--- no_error_log
[error]



=== TEST 9: embedded: a REGEX that does not match leaves the whole path as the script (/r/a.php)
--- config
    location /r/ {
        root html;
        fephp_split_path_info "^(/r/only/.+?\.php)(/.*)$";
        fephp_pass embedded;
    }
--- user_files
>>> r/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /r/a.php
--- error_code: 200
--- response_body_like eval
qr{^/r/a.php \[\] a.php$}
--- no_error_log
[error]



=== TEST 10: embedded: a REGEX that does not match leaves the whole path as the script (/r/a.php/x)
--- config
    location /r/ {
        root html;
        fephp_split_path_info "^(/r/only/.+?\.php)(/.*)$";
        fephp_pass embedded;
    }
--- user_files
>>> r/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /r/a.php/x
--- error_code: 403
--- response_body_like eval
qr/403/
--- error_log
fephp: forbidden: /r/a.php/x is not a PHP script



=== TEST 11: embedded: fephp_split_path_info off at server level is inherited; a location may turn it back on (/off/a.php/x)
--- config
    fephp_split_path_info off;
    location /off/ {
        root html;
        fephp_pass embedded;
    }
    location /on/ {
        root html;
        fephp_split_path_info on;
        fephp_pass embedded;
    }
--- user_files
>>> off/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
>>> on/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /off/a.php/x
--- error_code: 403
--- response_body_like eval
qr/403/
--- error_log
fephp: forbidden
=== TEST 12: embedded: fephp_split_path_info off at server level is inherited; a location may turn it back on (/on/a.php/x)
--- config
    fephp_split_path_info off;
    location /off/ {
        root html;
        fephp_pass embedded;
    }
    location /on/ {
        root html;
        fephp_split_path_info on;
        fephp_pass embedded;
    }
--- user_files
>>> off/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
>>> on/a.php
<?php echo $_SERVER['SCRIPT_NAME'], " [", $_SERVER['PATH_INFO'] ?? '', "] ", basename($_SERVER['SCRIPT_FILENAME']), "\n";
--- request
GET /on/a.php/x
--- error_code: 200
--- response_body_like eval
qr{^/on/a.php \[/x\] a.php$}
--- no_error_log
[error]



