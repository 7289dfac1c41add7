# Worker mode (fephp_worker) over the socket transport (fephp_executor_transport socket; t/050
# runs it over shared memory, the default): the same boot / fault / recycling behaviour, and the
# request's fephp_php_value / fephp_php_admin_value applied to each request a worker handles and
# put back after it, over both transports. Against the real parts: nginx with the module,
# Debian's libphp in the executors, php-fpm only for driver scripts. No timing assertions.
use Test::Nginx::Socket;

# TEST 1-4: one response each (status, body, one log pattern); TEST 5, 6: three responses each
# (status, body, one log pattern per response).
plan tests => repeat_each() * (4 * 3 + 2 * 9);

no_long_string();
run_tests();

__DATA__

=== TEST 1: socket transport: the worker boots once and serves many requests; the status page says worker mode
--- http_config
    fephp_executors 1;
    fephp_executor_transport socket;
--- config
    location = /driver.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /w/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php;
        fephp_pass executors;
    }
    location = /status { fephp_status; }
--- user_files
>>> w/worker.php
<?php
$boot = getmypid() . '-' . mt_rand();
$hits = 0;
while (fephp_handle_request(function () use ($boot, &$hits) {
    $hits++;
    echo $boot, ' ', $hits, ' ', $_GET['q'] ?? '-', ' ', PHP_SAPI;
})) {}
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$boots = [];
foreach (['a', 'b', 'c'] as $q) {
    [$boot, $hits, $got, $sapi] = explode(' ', file_get_contents("http://127.0.0.1:$port/w/worker.php?q=$q"));
    $boots[$boot] = true;
    echo "$hits $got $sapi\n";
}
echo "boots: ", count($boots), "\n";
foreach (explode("\n", file_get_contents("http://127.0.0.1:$port/status")) as $line) {
    if (str_starts_with($line, 'fephp_executors_worker_mode{')) echo $line, "\n";
}
--- request
GET /driver.php
--- response_body
1 a fe-php
2 b fe-php
3 c fe-php
boots: 1
fephp_executors_worker_mode{engine="executors"} 1
--- timeout: 15
--- error_log
worker mode: every executor runs



=== TEST 2: socket transport: a fatal error in the handler costs one request (500) and the worker boots afresh
--- http_config
    fephp_executors 1;
    fephp_executor_transport socket;
--- config
    location = /driver.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /w/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php;
        fephp_pass executors;
    }
--- user_files
>>> w/worker.php
<?php
$boot = getmypid() . '-' . mt_rand();
while (fephp_handle_request(function () use ($boot) {
    if (($_GET['op'] ?? '') === 'fatal') {
        no_such_function();
    }
    echo $boot;
})) {}
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$ctx = stream_context_create(['http' => ['ignore_errors' => true]]);
$a = file_get_contents("http://127.0.0.1:$port/w/worker.php", false, $ctx);
file_get_contents("http://127.0.0.1:$port/w/worker.php?op=fatal", false, $ctx);
echo "fatal: ", explode(' ', $http_response_header[0])[1], "\n";
$b = file_get_contents("http://127.0.0.1:$port/w/worker.php", false, $ctx);
echo "after: ", explode(' ', $http_response_header[0])[1], "\n";
echo "fresh boot: ", $a !== $b && $b !== '' ? "yes" : "no", "\n";
--- request
GET /driver.php
--- response_body
fatal: 500
after: 200
fresh boot: yes
--- timeout: 15
--- error_log
a request failed



=== TEST 3: socket transport: max_requests=2 recycles the worker: a new boot every 2 requests
--- http_config
    fephp_executors 1;
    fephp_executor_transport socket;
--- config
    location = /driver.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /w/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php max_requests=2;
        fephp_pass executors;
    }
--- user_files
>>> w/worker.php
<?php
$boot = getmypid() . '-' . mt_rand();
while (fephp_handle_request(function () use ($boot) { echo $boot; })) {}
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$seen = [];
$out = [];
for ($i = 0; $i < 5; $i++) {
    $b = file_get_contents("http://127.0.0.1:$port/w/worker.php");
    $seen[$b] ??= count($seen) + 1;
    $out[] = $seen[$b];
}
echo implode(' ', $out), "\n";
--- request
GET /driver.php
--- response_body
1 1 2 2 3
--- timeout: 15
--- no_error_log
[error]



=== TEST 4: socket transport: a worker script that cannot boot: 503 and a clear [error]
--- http_config
    fephp_executors 1;
    fephp_executor_transport socket;
--- config
    location /w/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php;
        fephp_pass executors;
    }
--- user_files
>>> w/worker.php
<?php
require __DIR__ . '/missing-bootstrap.php';
while (fephp_handle_request(function () { echo 'never'; })) {}
--- request
GET /w/worker.php
--- error_code: 503
--- response_body_like: 503 Service
--- timeout: 15
--- error_log
worker.php failed to boot



=== TEST 5: socket transport: a location's php_value / php_admin_value apply to the worker's requests of that location only
--- http_config
    fephp_executors 1;
    fephp_executor_transport socket;
--- config
    location /a/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php;
        fephp_php_value memory_limit 96M;
        fephp_php_admin_value open_basedir $TEST_NGINX_SERVER_ROOT/html;
        fephp_pass executors;
    }
    location /b/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php;
        fephp_pass executors;
    }
--- user_files
>>> w/worker.php
<?php
$boot = getmypid();
while (fephp_handle_request(function () use ($boot) {
    echo $boot, ' ', ini_get('memory_limit'), ' [', ini_get('open_basedir'), '] ',
        var_export(ini_set('open_basedir', '/'), true), ' ', var_export(@file_get_contents('/etc/passwd') !== false, true), "\n";
})) {}
>>> a/ini.php
<?php // served by the worker's handler
>>> b/ini.php
<?php // served by the worker's handler
--- request eval
["GET /a/ini.php", "GET /b/ini.php", "GET /a/ini.php"]
--- response_body_like eval
[qr/^\d+ 96M \[\S+html\] false false$/, qr/^\d+ (?!96M)\S+ \[\] '' true$/, qr/^\d+ 96M \[\S+html\] false false$/]
--- timeout: 15
--- no_error_log
[error]



=== TEST 6: shm transport: a location's php_value / php_admin_value apply to the worker's requests of that location only
--- http_config
    fephp_executors 1;
    fephp_executor_transport shm;
--- config
    location /a/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php;
        fephp_php_value memory_limit 96M;
        fephp_php_admin_value open_basedir $TEST_NGINX_SERVER_ROOT/html;
        fephp_pass executors;
    }
    location /b/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php;
        fephp_pass executors;
    }
--- user_files
>>> w/worker.php
<?php
$boot = getmypid();
while (fephp_handle_request(function () use ($boot) {
    echo $boot, ' ', ini_get('memory_limit'), ' [', ini_get('open_basedir'), '] ',
        var_export(ini_set('open_basedir', '/'), true), ' ', var_export(@file_get_contents('/etc/passwd') !== false, true), "\n";
})) {}
>>> a/ini.php
<?php // served by the worker's handler
>>> b/ini.php
<?php // served by the worker's handler
--- request eval
["GET /a/ini.php", "GET /b/ini.php", "GET /a/ini.php"]
--- response_body_like eval
[qr/^\d+ 96M \[\S+html\] false false$/, qr/^\d+ (?!96M)\S+ \[\] '' true$/, qr/^\d+ 96M \[\S+html\] false false$/]
--- timeout: 15
--- no_error_log
[error]
