# The embedded PHP's configuration: by default the php.ini and scan directory libphp was built
# with (Debian: /etc/php/8.2/embed/php.ini + conf.d/, which load the extensions apt installed,
# as for php-fpm); fephp_php_ini_file chooses another file or none; fephp_php_ini applies on
# top. Whatever the ini says, opcache is on and hard_timeout is 0 (no _exit of the worker).
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: no fephp_php_ini lines: the distribution's php.ini and conf.d, so mbstring, intl, mysqli
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> conf.php
<?php
$ext = [];
foreach (['mbstring', 'intl', 'mysqli', 'xml', 'ctype', 'iconv', 'fileinfo'] as $e) {
    $ext[] = $e . '=' . (extension_loaded($e) ? 1 : 0);
}
$s = opcache_get_status(false);
echo preg_replace('~^/etc/php/8\.\d+/~', '/etc/php/X/', (string) php_ini_loaded_file()), "\n",
    implode(' ', $ext), "\n",
    'opcache=', $s && $s['opcache_enabled'] ? 1 : 0, ' hard_timeout=', ini_get('hard_timeout'), "\n",
    mb_strtoupper('é'), ' ', class_exists('Collator') ? 'intl' : '-', ' ', function_exists('mysqli_connect') ? 'mysqli' : '-', "\n";
--- request
GET /conf.php
--- response_body
/etc/php/X/embed/php.ini
mbstring=1 intl=1 mysqli=1 xml=1 ctype=1 iconv=1 fileinfo=1
opcache=1 hard_timeout=0
É intl mysqli
--- error_log eval
qr{php: embedded PHP configuration: php\.ini: /etc/php/[0-9.]+/embed/php\.ini; scanned: /etc/php/[0-9.]+/embed/conf\.d \(\d+ files\); opcache: loaded}



=== TEST 2: fephp_php_ini applies on top of the distribution's php.ini (memory_limit 128M there)
--- http_config
    fephp_php_ini memory_limit 77M;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> conf.php
<?php echo ini_get('memory_limit'), ' ', ini_get('post_max_size'), ' ', extension_loaded('intl') ? 'intl' : '-', "\n";
--- request
GET /conf.php
--- response_body
77M 8M intl
--- no_error_log
[error]



=== TEST 3: fephp_php_ini_file off: no php.ini, no conf.d, so none of the distribution's extensions; opcache still on
--- http_config
    fephp_php_ini_file off;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> conf.php
<?php
$s = opcache_get_status(false);
echo var_export(php_ini_loaded_file(), true), ' ', var_export(php_ini_scanned_files(), true), ' ',
    extension_loaded('mbstring') ? 'mbstring' : '-', ' ', extension_loaded('intl') ? 'intl' : '-', ' ',
    extension_loaded('mysqli') ? 'mysqli' : '-', ' opcache=', $s && $s['opcache_enabled'] ? 1 : 0,
    ' hard_timeout=', ini_get('hard_timeout'), ' display_errors=', ini_get('display_errors'), "\n";
--- request
GET /conf.php
--- response_body
false false - - - opcache=1 hard_timeout=0 display_errors=0
--- error_log
php: embedded PHP configuration: php.ini: off; scanned: none; opcache: loaded



=== TEST 4: fephp_php_ini_file FILE (relative to the configuration prefix) is loaded, the scan directory too, fephp_php_ini on top; its hard_timeout does not apply
--- http_config
    fephp_php_ini_file ../html/custom.ini;
    fephp_php_ini precision 11;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> custom.ini
memory_limit = 99M
precision = 5
hard_timeout = 7
>>> conf.php
<?php
$s = opcache_get_status(false);
echo basename(php_ini_loaded_file()), ' ', ini_get('memory_limit'), ' ', ini_get('precision'), ' ',
    extension_loaded('intl') ? 'intl' : '-', ' opcache=', $s && $s['opcache_enabled'] ? 1 : 0,
    ' hard_timeout=', ini_get('hard_timeout'), "\n";
--- request
GET /conf.php
--- response_body
custom.ini 99M 11 intl opcache=1 hard_timeout=0
--- no_error_log
[error]



=== TEST 5: max_execution_time is our watchdog's, not PHP's itimer: a 500, and the worker lives (the runner fails a block whose nginx exited)
--- http_config
    fephp_php_ini max_execution_time 1;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> spin.php
<?php $t = microtime(true); while (microtime(true) - $t < 12) { } echo "not stopped\n";
--- request
GET /spin.php
--- timeout: 15
--- error_code: 500
--- response_body
--- error_log
Maximum execution time of 1 second exceeded
