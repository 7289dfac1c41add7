# Bad fephp_worker arguments fail at configuration time with a message naming the directive.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fephp_worker with a relative path
--- config
    location /w/ { fephp_worker worker.php; fephp_pass executors; }
--- must_die
--- error_log
"fephp_worker" directive: "worker.php" is not an absolute path to a file



=== TEST 2: fephp_worker with a missing file
--- config
    location /w/ { fephp_worker /nonexistent/worker.php; fephp_pass executors; }
--- must_die
--- error_log
"fephp_worker" directive: "/nonexistent/worker.php" is not an absolute path to a file



=== TEST 3: fephp_worker with an unknown parameter
--- config
    location /w/ { fephp_worker $TEST_NGINX_SERVER_ROOT/html/w.php sleep=1; fephp_pass executors; }
--- user_files
>>> w.php
<?php
--- must_die
--- error_log
"fephp_worker" directive: invalid parameter "sleep=1"



=== TEST 4: two different worker scripts in one configuration
--- config
    location /a/ { fephp_worker $TEST_NGINX_SERVER_ROOT/html/a.php; fephp_pass executors; }
    location /b/ { fephp_worker $TEST_NGINX_SERVER_ROOT/html/b.php; fephp_pass executors; }
--- user_files
>>> a.php
<?php
>>> b.php
<?php
--- must_die
--- error_log
one worker script per configuration



=== TEST 5: fephp_worker executors= with fephp_executors set
--- http_config
    fephp_executors 2;
--- config
    location /w/ { fephp_worker $TEST_NGINX_SERVER_ROOT/html/w.php executors=3; fephp_pass executors; }
--- user_files
>>> w.php
<?php
--- must_die
--- error_log
"executors=3": fephp_executors is set already



=== TEST 6: fephp_worker without any fephp_pass executors location (e.g. with fephp_pass embedded)
--- config
    location /w/ { fephp_worker $TEST_NGINX_SERVER_ROOT/html/w.php; fephp_pass embedded; }
--- user_files
>>> w.php
<?php
--- must_die
--- error_log
"fephp_worker" directive: no location has "fephp_pass executors"
