# Per-request ini for executors: fephp_php_value / fephp_php_admin_value travel with each request
# to the executor, which applies them around that request only (undone before the next one on
# the same process), and .user.ini files apply as in embedded PHP; over both transports.
use Test::Nginx::Socket;

# Per response: status + body + 1 per log pattern.
# TEST 1, 2: 3 responses; TEST 3: 1; TEST 4, 5: 2.
plan tests => repeat_each() * ((3 + 3 + 1 + 2 + 2) * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: socket transport: a location's values apply to its requests only, on the same executor
--- http_config
    fephp_executors 1;
    fephp_executor_transport socket;
--- config
    location /a/ {
        root html;
        fephp_php_value memory_limit 96M;
        fephp_php_admin_value open_basedir $TEST_NGINX_SERVER_ROOT/html;
        fephp_pass executors;
    }
    location /b/ {
        root html;
        fephp_pass executors;
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



=== TEST 2: shared-memory transport: a location's values apply to its requests only, on the same executor
--- http_config
    fephp_executors 1;
    fephp_executor_transport shm;
--- config
    location /a/ {
        root html;
        fephp_php_value memory_limit 96M;
        fephp_php_admin_value open_basedir $TEST_NGINX_SERVER_ROOT/html;
        fephp_pass executors;
    }
    location /b/ {
        root html;
        fephp_pass executors;
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



=== TEST 3: values merge by name across levels; an admin value cannot be changed by ini_set(), a plain one can
--- http_config
    fephp_executors 1;
    fephp_executor_transport shm;
--- config
    fephp_php_admin_value open_basedir $TEST_NGINX_SERVER_ROOT/html;
    fephp_php_value memory_limit 64M;
    fephp_php_value precision 4;
    location /a/ {
        root html;
        fephp_php_value memory_limit 80M;
        fephp_php_admin_value max_input_vars 77;
        fephp_pass executors;
    }
--- user_files
>>> a/ini.php
<?php
echo ini_get('memory_limit'), ' ', ini_get('precision'), ' ', ini_get('open_basedir') !== '' ? 'basedir' : 'none', ' ', var_export(ini_set('precision', '2'), true), ' ', var_export(ini_set('max_input_vars', '5'), true), ' ', ini_get('max_input_vars'), "\n";
--- request
GET /a/ini.php
--- response_body
80M 4 basedir '4' false 77
--- no_error_log
[error]



=== TEST 4: socket transport: .user.ini files apply in executors, nearest last; admin values stay
--- http_config
    fephp_executors 1;
    fephp_executor_transport socket;
--- config
    location ~ \.php$ {
        root html;
        fephp_php_admin_value max_input_vars 123;
        fephp_pass executors;
    }
--- user_files
>>> .user.ini
memory_limit = 77M
precision = 6
>>> sub/.user.ini
precision = 7
allow_url_fopen = Off
max_input_vars = 5
>>> sub/show.php
<?php echo ini_get('memory_limit'), ' ', ini_get('precision'), ' ', ini_get('allow_url_fopen'), ' ', ini_get('max_input_vars'), "\n";
>>> top.php
<?php echo ini_get('memory_limit'), ' ', ini_get('precision'), "\n";
--- request eval
["GET /sub/show.php", "GET /top.php"]
--- response_body eval
["77M 7 1 123\n", "77M 6\n"]
--- no_error_log
[error]



=== TEST 5: shared-memory transport: .user.ini files apply in executors, nearest last; admin values stay
--- http_config
    fephp_executors 1;
    fephp_executor_transport shm;
--- config
    location ~ \.php$ {
        root html;
        fephp_php_admin_value max_input_vars 123;
        fephp_pass executors;
    }
--- user_files
>>> .user.ini
memory_limit = 77M
precision = 6
>>> sub/.user.ini
precision = 7
allow_url_fopen = Off
max_input_vars = 5
>>> sub/show.php
<?php echo ini_get('memory_limit'), ' ', ini_get('precision'), ' ', ini_get('allow_url_fopen'), ' ', ini_get('max_input_vars'), "\n";
>>> top.php
<?php echo ini_get('memory_limit'), ' ', ini_get('precision'), "\n";
--- request eval
["GET /sub/show.php", "GET /top.php"]
--- response_body eval
["77M 7 1 123\n", "77M 6\n"]
--- no_error_log
[error]
