# fephp_param, on both backends (fephp_pass unix:FPM and fephp_pass embedded): complex values, if_not_empty, overrides of the engine's params, inheritance
# like fastcgi_param (a level with its own list does not see the parent's).
use Test::Nginx::Socket;

# status, body and one log pattern per block, plus the checks of extra requests and headers
plan tests => repeat_each() * (blocks() * 3 + 6);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fpm: static and variable values, if_not_empty
--- config
    location ~ \.php$ {
        root html;
        fephp_param APP_ENV testing;
        fephp_param FROM_VAR "u=$uri a=$arg_a";
        fephp_param EMPTY_SKIPPED $arg_missing if_not_empty;
        fephp_param EMPTY_KEPT $arg_missing;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> p.php
<?php foreach (['APP_ENV', 'FROM_VAR', 'EMPTY_SKIPPED', 'EMPTY_KEPT'] as $k) echo $k, "=", array_key_exists($k, $_SERVER) ? "[" . $_SERVER[$k] . "]" : "unset", "\n";
--- request
GET /p.php?a=7
--- response_body
APP_ENV=[testing]
FROM_VAR=[u=/p.php a=7]
EMPTY_SKIPPED=unset
EMPTY_KEPT=[]
--- no_error_log
[error]



=== TEST 2: embedded: static and variable values, if_not_empty
--- config
    location ~ \.php$ {
        root html;
        fephp_param APP_ENV testing;
        fephp_param FROM_VAR "u=$uri a=$arg_a";
        fephp_param EMPTY_SKIPPED $arg_missing if_not_empty;
        fephp_param EMPTY_KEPT $arg_missing;
        fephp_pass embedded;
    }
--- user_files
>>> p.php
<?php foreach (['APP_ENV', 'FROM_VAR', 'EMPTY_SKIPPED', 'EMPTY_KEPT'] as $k) echo $k, "=", array_key_exists($k, $_SERVER) ? "[" . $_SERVER[$k] . "]" : "unset", "\n";
--- request
GET /p.php?a=7
--- response_body
APP_ENV=[testing]
FROM_VAR=[u=/p.php a=7]
EMPTY_SKIPPED=unset
EMPTY_KEPT=[]
--- no_error_log
[error]



=== TEST 3: fpm: a fephp_param overrides the engine's param of the same name
--- config
    location ~ \.php$ {
        root html;
        fephp_param SERVER_NAME $server_name;
        fephp_param HTTPS on;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> s.php
<?php echo $_SERVER['SERVER_NAME'], " ", $_SERVER['HTTPS'], "\n";
--- request
GET /s.php
--- response_body
localhost on
--- no_error_log
[error]



=== TEST 4: embedded: a fephp_param overrides the engine's param of the same name
--- config
    location ~ \.php$ {
        root html;
        fephp_param SERVER_NAME $server_name;
        fephp_param HTTPS on;
        fephp_pass embedded;
    }
--- user_files
>>> s.php
<?php echo $_SERVER['SERVER_NAME'], " ", $_SERVER['HTTPS'], "\n";
--- request
GET /s.php
--- response_body
localhost on
--- no_error_log
[error]



=== TEST 5: fpm: params are inherited from the server level when the location has none
--- config
    fephp_param LEVEL server;
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
--- request
GET /l.php
--- response_body
server unset
--- no_error_log
[error]



=== TEST 6: embedded: params are inherited from the server level when the location has none
--- config
    fephp_param LEVEL server;
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
--- request
GET /l.php
--- response_body
server unset
--- no_error_log
[error]



=== TEST 7: fpm: a location with its own params does not inherit the server's
--- config
    fephp_param LEVEL server;
    location ~ \.php$ {
        root html;
        fephp_param OWN location;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
--- request
GET /l.php
--- response_body
unset location
--- no_error_log
[error]



=== TEST 8: embedded: a location with its own params does not inherit the server's
--- config
    fephp_param LEVEL server;
    location ~ \.php$ {
        root html;
        fephp_param OWN location;
        fephp_pass embedded;
    }
--- user_files
>>> l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
--- request
GET /l.php
--- response_body
unset location
--- no_error_log
[error]



=== TEST 9: fpm: the shipped fephp_params file can be included
--- http_config
    include $TEST_NGINX_FEPHP_PARAMS;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> i.php
<?php echo "ok\n";
--- request
GET /i.php
--- response_body
ok
--- no_error_log
[error]



=== TEST 10: embedded: the shipped fephp_params file can be included
--- http_config
    include $TEST_NGINX_FEPHP_PARAMS;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> i.php
<?php echo "ok\n";
--- request
GET /i.php
--- response_body
ok
--- no_error_log
[error]



=== TEST 11: fpm: server-level params reach a nested location; a sibling location with its own list does not see them
--- config
    fephp_param LEVEL server;
    location /outer/ {
        location ~ \.php$ {
            root html;
            fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
        }
    }
    location /own/ {
        fephp_param OWN own;
        location ~ \.php$ {
            root html;
            fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
        }
    }
--- user_files
>>> outer/l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
>>> own/l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
--- request eval
["GET /outer/l.php", "GET /own/l.php"]
--- response_body eval
["server unset\n", "unset own\n"]
--- no_error_log
[error]



=== TEST 12: embedded: server-level params reach a nested location; a sibling location with its own list does not see them
--- config
    fephp_param LEVEL server;
    location /outer/ {
        location ~ \.php$ {
            root html;
            fephp_pass embedded;
        }
    }
    location /own/ {
        fephp_param OWN own;
        location ~ \.php$ {
            root html;
            fephp_pass embedded;
        }
    }
--- user_files
>>> outer/l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
>>> own/l.php
<?php echo $_SERVER['LEVEL'] ?? 'unset', " ", $_SERVER['OWN'] ?? 'unset', "\n";
--- request eval
["GET /outer/l.php", "GET /own/l.php"]
--- response_body eval
["server unset\n", "unset own\n"]
--- no_error_log
[error]
