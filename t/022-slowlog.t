# fephp_slowlog_timeout + fephp_slowlog: a request of embedded PHP running past the timeout gets
# its PHP backtrace written once (innermost frame first, function() file:line), taken inside
# the PHP thread at the VM's next interrupt check; the request is not stopped. A second request
# reads the log file back.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: a slow request's backtrace is written once; the request completes
--- http_config
    fephp_slowlog_timeout 200ms;
    fephp_slowlog logs/slow.log;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> slow.php
<?php
function inner() { $t = microtime(true); while (microtime(true) - $t < 0.7) { } return "done"; }
function outer() { return inner(); }
echo outer(), "\n";
>>> read.php
<?php
$log = file_get_contents('$TEST_NGINX_SERVER_ROOT/logs/slow.log');
echo substr_count($log, 'script_filename = '), "\n", $log;
--- request eval
["GET /slow.php", "GET /read.php"]
--- response_body_like eval
[qr/^done$/, qr/^1\n.*\[fe-php embedded\] pid \d+\nscript_filename = \S+\/slow\.php\nrequest_uri = \/slow\.php\nslower than 0\.200s; innermost frame first:\n(?:\[0\] microtime\(\) \[internal function\]\n)?\[\d\] inner\(\) \S+\/slow\.php:2\n\[\d\] outer\(\) \S+\/slow\.php:3\n\[\d\] \{main\} \S+\/slow\.php:4\n$/s]
--- no_error_log
[error]



=== TEST 2: a request faster than the timeout is not logged
--- http_config
    fephp_slowlog_timeout 2s;
    fephp_slowlog logs/slow.log;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> fast.php
<?php echo "fast\n";
>>> read.php
<?php echo var_export(@file_get_contents('$TEST_NGINX_SERVER_ROOT/logs/slow.log'), true), "\n";
--- request eval
["GET /fast.php", "GET /read.php"]
--- response_body eval
["fast\n", "false\n"]
--- no_error_log
[error]



=== TEST 3: the default target is stderr: nginx's error log
--- http_config
    fephp_slowlog_timeout 100ms;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> slow.php
<?php
$t = microtime(true); while (microtime(true) - $t < 0.4) { }
echo "done\n";
--- request
GET /slow.php
--- response_body
done
--- error_log
slower than 0.100s; innermost frame first:
[0] {main} 
