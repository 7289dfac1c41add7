# max_execution_time of embedded PHP as the script sees it: the configured value, a location's
# fephp_php_value, a .user.ini, with and without the distribution's php.ini (which sets
# max_input_time, the case where PHP itself re-arms its timer per script). The limit is the
# watchdog's (PHP's ITIMER_PROF is never armed); a value set for one request never reaches the
# next one.
use Test::Nginx::Socket;

# Per response: status + body + 1 per log pattern (checked after every response).
# TEST 1: 2 responses; TEST 2-3: 1 each; TEST 4: 2 responses; TEST 5: 1.
plan tests => repeat_each() * ((2 + 1 + 1 + 2 + 1) * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: a location's max_execution_time does not reach the next request elsewhere, which runs with the configured limit
--- http_config
    fephp_php_ini max_execution_time 20;
--- config
    location /a/ {
        root html;
        fephp_php_value max_execution_time 1;
        fephp_pass embedded;
    }
    location /b/ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> a/limit.php
<?php echo ini_get('max_execution_time'), "\n";
>>> b/spin.php
<?php $t = microtime(true); while (microtime(true) - $t < 2) { } echo "not stopped ", ini_get('max_execution_time'), "\n";
--- request eval
["GET /a/limit.php", "GET /b/spin.php"]
--- timeout: 15
--- response_body eval
["1\n", "not stopped 20\n"]
--- no_error_log
[error]



=== TEST 2: a .user.ini's max_execution_time is the script's limit (no php.ini)
--- http_config
    fephp_php_ini_file off;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> .user.ini
max_execution_time = 1
>>> spin.php
<?php $t = microtime(true); while (microtime(true) - $t < 12) { } echo "not stopped\n";
--- request
GET /spin.php
--- timeout: 15
--- error_code: 500
--- response_body
--- error_log
Maximum execution time of 1 second exceeded



=== TEST 3: a .user.ini's max_execution_time is the script's limit (the distribution's php.ini, max_input_time set)
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> .user.ini
max_execution_time = 1
max_input_time = 5
>>> spin.php
<?php $t = microtime(true); while (microtime(true) - $t < 12) { } echo "not stopped\n";
--- request
GET /spin.php
--- timeout: 15
--- error_code: 500
--- response_body
--- error_log
Maximum execution time of 1 second exceeded



=== TEST 4: set_time_limit() holds for its own request only
--- http_config
    fephp_php_ini max_execution_time 20;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> limit.php
<?php set_time_limit(1); echo ini_get('max_execution_time'), "\n";
>>> spin.php
<?php $t = microtime(true); while (microtime(true) - $t < 2) { } echo "not stopped ", ini_get('max_execution_time'), "\n";
--- request eval
["GET /limit.php", "GET /spin.php"]
--- timeout: 15
--- response_body eval
["1\n", "not stopped 20\n"]
--- no_error_log
[error]



=== TEST 5: a location's max_execution_time ends its own request
--- config
    location /a/ {
        root html;
        fephp_php_value max_execution_time 1;
        fephp_pass embedded;
    }
--- user_files
>>> a/spin.php
<?php $t = microtime(true); while (microtime(true) - $t < 12) { } echo "not stopped\n";
--- request
GET /a/spin.php
--- timeout: 15
--- error_code: 500
--- response_body
--- error_log
Maximum execution time of 1 second exceeded
