# Errors on both backends: engine errors map to statuses (with an [error] line), traversal,
# PHP fatals / exit() / memory_limit, fephp_intercept_errors, error_page, timeouts.
use Test::Nginx::Socket;

# status, body and one log pattern per block, plus the checks of extra requests and headers
plan tests => repeat_each() * (blocks() * 3 + 2);

# A document root holding in/link.php, a symlink to a script outside that root (TESTs 15
# and 21). Made here, outside the server root, because the runner recreates the server root
# for every block.
use File::Temp ();
my $links = File::Temp::tempdir('fephp-t-links.XXXXXX', TMPDIR => 1, CLEANUP => 1);
mkdir "$links/root" and mkdir "$links/root/in" or die "mkdir $links: $!";
open my $outside, '>', "$links/outside.php" or die "$links/outside.php: $!";
print $outside "<?php echo 'escaped';";
close $outside;
symlink "$links/outside.php", "$links/root/in/link.php" or die "symlink: $!";
chmod 0755, $links;
$ENV{TEST_NGINX_LINK_ROOT} = "$links/root";

no_long_string();
run_tests();

__DATA__

=== TEST 1: FPM not listening -> 502 and an [error] line
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_SERVER_ROOT/no-such.sock;
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



=== TEST 3: embedded: missing script -> 404
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- request
GET /missing.php
--- error_code: 404
--- error_log
fephp: not found



=== TEST 4: a non-PHP file behind fephp_pass is refused -> 403
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



=== TEST 5: embedded: a non-PHP file behind fephp_pass is refused -> 403
--- config
    location /up/ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> up/image.jpg
<?php echo "evil\n";
--- request
GET /up/image.jpg
--- error_code: 403
--- error_log
fephp: forbidden



=== TEST 6: PHP's own 404 passes through without fephp_intercept_errors
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



=== TEST 7: embedded: PHP's own 404 passes through without fephp_intercept_errors
--- config
    error_page 404 /err.html;
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
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



=== TEST 8: fephp_intercept_errors on sends PHP's 404 through error_page
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



=== TEST 9: embedded: fephp_intercept_errors on sends PHP's 404 through error_page
--- config
    error_page 404 /err.html;
    location ~ \.php$ {
        root html;
        fephp_intercept_errors on;
        fephp_pass embedded;
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



=== TEST 10: fephp_intercept_errors on without a matching error_page passes PHP's response
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



=== TEST 11: embedded: fephp_intercept_errors on without a matching error_page passes PHP's response
--- config
    error_page 404 /err.html;
    location ~ \.php$ {
        root html;
        fephp_intercept_errors on;
        fephp_pass embedded;
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



=== TEST 12: fephp_read_timeout -> 504
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



=== TEST 13: embedded: fephp_read_timeout -> 504 (the bridge's idle guard)
--- config
    location ~ \.php$ {
        root html;
        fephp_read_timeout 1s;
        fephp_pass embedded;
    }
--- user_files
>>> slow.php
<?php sleep(3); echo "late\n";
--- request
GET /slow.php
--- error_code: 504
--- timeout: 8
--- error_log
fephp: backend timeout



=== TEST 14: fpm: a percent-encoded traversal (nginx merges it for location matching) is refused -> 403
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> sub/a.php
<?php echo "sub\n";
>>> x.php
<?php echo "must not run through /sub/%2e%2e/\n";
--- request
GET /sub/%2e%2e/x.php
--- error_code: 403
--- error_log
fephp: forbidden: `..` in request path



=== TEST 15: fpm: with disable_symlinks on, a symlink to a script outside the document root is refused -> 403
--- config
    location /in/ {
        disable_symlinks on;
        root $TEST_NGINX_LINK_ROOT;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- request
GET /in/link.php
--- error_code: 403
--- response_body_unlike: escaped
--- error_log
fephp: forbidden: /in/link.php: symlink



=== TEST 16: fpm: a path through a non-PHP file is not found -> 404
--- config
    location ~ \.php(/|$) {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> up/image.jpg
<?php echo "evil\n";
--- request
GET /up/image.jpg/x.php
--- error_code: 404
--- error_log
fephp: not found



=== TEST 17: fpm: a PHP fatal error is a 500, and the next request on the same backend works
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> fatal.php
<?php echo "before\n"; undefined_function_xyz();
>>> ok.php
<?php echo "ok\n";
--- request eval
["GET /fatal.php", "GET /ok.php"]
--- error_code eval
[500, 200]
--- response_body_like eval
[qr/^(?!.*ok)/s, qr/^ok$/]



=== TEST 18: fpm: exit() ends the script with what it printed, status 200
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> exit.php
<?php echo "a"; exit("b"); echo "c";
>>> exit3.php
<?php header('X-Before: 1'); echo "three"; exit(3);
--- request eval
["GET /exit.php", "GET /exit3.php"]
--- response_headers eval
[{}, {"X-Before" => "1"}]
--- response_body eval
["ab", "three"]
--- no_error_log
[error]



=== TEST 19: fpm: memory_limit exhausted is a 500, the next request works
--- config
    location ~ \.php$ {
        root html;
        fephp_param PHP_VALUE "memory_limit=16M";
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> hog.php
<?php echo ini_get('memory_limit'), "\n"; $a = []; for ($i = 0; $i < 100; $i++) { $a[] = str_repeat('x', 1 << 20); } echo "survived\n";
>>> ok.php
<?php echo "ok ", ini_get('memory_limit'), "\n";
--- request eval
["GET /hog.php", "GET /ok.php"]
--- error_code eval
[500, 200]
--- response_body_like eval
[qr/^(?!.*survived)/s, qr/^ok \d+M$/]



=== TEST 20: embedded: a percent-encoded traversal (nginx merges it for location matching) is refused -> 403
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> sub/a.php
<?php echo "sub\n";
>>> x.php
<?php echo "must not run through /sub/%2e%2e/\n";
--- request
GET /sub/%2e%2e/x.php
--- error_code: 403
--- error_log
fephp: forbidden: `..` in request path



=== TEST 21: embedded: with disable_symlinks on, a symlink to a script outside the document root is refused -> 403
--- config
    location /in/ {
        disable_symlinks on;
        root $TEST_NGINX_LINK_ROOT;
        fephp_pass embedded;
    }
--- request
GET /in/link.php
--- error_code: 403
--- response_body_unlike: escaped
--- error_log
fephp: forbidden: /in/link.php: symlink



=== TEST 22: embedded: a path through a non-PHP file is not found -> 404
--- config
    location ~ \.php(/|$) {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> up/image.jpg
<?php echo "evil\n";
--- request
GET /up/image.jpg/x.php
--- error_code: 404
--- error_log
fephp: not found



=== TEST 23: embedded: a PHP fatal error is a 500 (display_errors 0, output_buffering 4096 as in php.ini-production), and the next request works
--- http_config
    fephp_php_ini display_errors 0;
    fephp_php_ini output_buffering 4096;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> fatal.php
<?php echo "before\n"; undefined_function_xyz();
>>> ok.php
<?php echo "ok\n";
--- request eval
["GET /fatal.php", "GET /ok.php"]
--- error_code eval
[500, 200]
--- response_body_like eval
[qr/^(?!.*ok)/s, qr/^ok$/]



=== TEST 24: embedded: exit() ends the script with what it printed, status 200
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> exit.php
<?php echo "a"; exit("b"); echo "c";
>>> exit3.php
<?php header('X-Before: 1'); echo "three"; exit(3);
--- request eval
["GET /exit.php", "GET /exit3.php"]
--- response_headers eval
[{}, {"X-Before" => "1"}]
--- response_body eval
["ab", "three"]
--- no_error_log
[error]



=== TEST 25: embedded: memory_limit exhausted is a 500, the next request works
--- http_config
    fephp_php_ini memory_limit 16M;
    fephp_php_ini display_errors 0;
    fephp_php_ini output_buffering 4096;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> hog.php
<?php echo ini_get('memory_limit'), "\n"; $a = []; for ($i = 0; $i < 100; $i++) { $a[] = str_repeat('x', 1 << 20); } echo "survived\n";
>>> ok.php
<?php echo "ok ", ini_get('memory_limit'), "\n";
--- request eval
["GET /hog.php", "GET /ok.php"]
--- error_code eval
[500, 200]
--- response_body_like eval
[qr/^(?!.*survived)/s, qr/^ok \d+M$/]



=== TEST 26: error_page for an engine error (FPM down -> 502) serves the error page
--- config
    error_page 502 /down.html;
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_SERVER_ROOT/no-such.sock;
    }
--- user_files
>>> a.php
<?php echo "never\n";
>>> down.html
PHP is down
--- request
GET /a.php
--- error_code: 502
--- response_body
PHP is down
--- error_log
fephp: backend unreachable



=== TEST 27: fephp_read_timeout set at server level is inherited by the location -> 504
--- config
    fephp_read_timeout 1s;
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> slow.php
<?php sleep(3); echo "late\n";
--- request
GET /slow.php
--- error_code: 504
--- timeout: 8
--- error_log
fephp: backend timeout
