# fephp_php_value / fephp_php_admin_value: per-location ini of embedded PHP, applied to each
# request of the location and undone after it (php-fpm's php_value[] / php_admin_value[]; the
# parity with php-fpm is tests/parity.rs per_request_ini_matches_php_fpm_pool_values).
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: a location's values apply to its requests only; the next request elsewhere sees the defaults
--- config
    location /a/ {
        root html;
        fephp_php_value memory_limit 96M;
        fephp_php_admin_value open_basedir $TEST_NGINX_HTML_DIR;
        fephp_pass embedded;
    }
    location /b/ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> a/ini.php
<?php
echo ini_get('memory_limit'), ' [', ini_get('open_basedir'), '] ', var_export(ini_set('open_basedir', '/'), true), ' ', var_export(@file_get_contents('/etc/hostname'), true), "\n";
>>> b/ini.php
<?php
echo ini_get('memory_limit'), ' [', ini_get('open_basedir'), "]\n";
--- request eval
["GET /a/ini.php", "GET /b/ini.php", "GET /a/ini.php"]
--- response_body_like eval
[qr/^96M \[\S+html\] false false$/, qr/^(?!96M)\S+ \[\]$/, qr/^96M \[\S+html\] false false$/]
--- no_error_log
[error]



=== TEST 2: values merge by name across levels: the server's admin value stays, the location adds and overrides
--- config
    fephp_php_admin_value open_basedir $TEST_NGINX_HTML_DIR;
    fephp_php_value memory_limit 64M;
    fephp_php_value precision 4;
    location /a/ {
        root html;
        fephp_php_value memory_limit 80M;
        fephp_pass embedded;
    }
--- user_files
>>> a/ini.php
<?php
echo ini_get('memory_limit'), ' ', ini_get('precision'), ' ', ini_get('open_basedir') !== '' ? 'basedir' : 'none', ' ', var_export(ini_set('precision', '2'), true), "\n";
--- request
GET /a/ini.php
--- response_body
80M 4 basedir '4'
--- no_error_log
[error]



=== TEST 3: an admin value cannot be changed by ini_set(), a plain one can (for the request)
--- config
    location ~ \.php$ {
        root html;
        fephp_php_admin_value memory_limit 90M;
        fephp_php_value display_errors 1;
        fephp_pass embedded;
    }
--- user_files
>>> ini.php
<?php
echo var_export(ini_set('memory_limit', '200M'), true), ' ', ini_get('memory_limit'), ' ', var_export(ini_set('display_errors', '0'), true), "\n";
--- request
GET /ini.php
--- response_body
false 90M '1'
--- no_error_log
[error]



=== TEST 4: upload_max_filesize applies to the request's own body
--- config
    location ~ \.php$ {
        root html;
        fephp_php_value upload_max_filesize 1K;
        fephp_pass embedded;
    }
--- user_files
>>> up.php
<?php echo ini_get('upload_max_filesize'), ' ', $_FILES['f']['error'], "\n";
--- more_headers
Content-Type: multipart/form-data; boundary=XyZ
--- request eval
"POST /up.php\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n" . ("x" x 4000) . "\r\n--XyZ--\r\n"
--- response_body
1K 1
--- no_error_log
[error]



=== TEST 5: a name PHP does not know is logged once (warn) and ignored, like php-fpm
--- config
    location ~ \.php$ {
        root html;
        fephp_php_value no_such_setting.anywhere 1;
        fephp_php_value memory_limit 70M;
        fephp_pass embedded;
    }
--- user_files
>>> ini.php
<?php echo ini_get('memory_limit'), "\n";
--- request eval
["GET /ini.php", "GET /ini.php"]
--- response_body eval
["70M\n", "70M\n"]
--- error_log
php_value no_such_setting.anywhere = "1" ignored: PHP has no such ini setting
