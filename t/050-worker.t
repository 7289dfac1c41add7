# fephp_worker: worker mode of the executor pool (issue 15). Each executor runs the worker script
# once; it boots and serves requests through fephp_handle_request(). Against the real parts:
# nginx with the module, Debian's libphp in the executors, php-fpm only to run driver scripts
# (several requests in one block). No timing assertions: every wait is bounded.
use Test::Nginx::Socket;

# One status and one body check per block, plus one per error_log / no_error_log line.
plan tests => repeat_each() * (3 * blocks());

no_long_string();
run_tests();

__DATA__

=== TEST 1: the worker boots once and serves many requests; the status page says worker mode
--- http_config
    fephp_executors 1;
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



=== TEST 2: per-request isolation through nginx: status, headers, output buffers, ini, superglobals
--- http_config
    fephp_executors 1;
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
while (fephp_handle_request(function () {
    if (($_GET['op'] ?? '') === 'dirty') {
        http_response_code(418);
        header('X-Leak: 1');
        ini_set('precision', '3');
        $_SERVER['LEAK'] = 1;
        ob_start();
        echo 'dirty';
        return;
    }
    echo json_encode(['code' => http_response_code(), 'precision' => ini_get('precision'),
        'leak' => $_SERVER['LEAK'] ?? null, 'get' => $_GET,
        'ob' => ob_get_level() === (ini_get('output_buffering') ? 1 : 0) ? 'default' : ob_get_level(),
        'x' => $_SERVER['HTTP_X_ONE'] ?? null]);
})) {}
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$ctx = stream_context_create(['http' => ['ignore_errors' => true, 'header' => "X-One: 1\r\n"]]);
$body = file_get_contents("http://127.0.0.1:$port/w/worker.php?op=dirty", false, $ctx);
echo $http_response_header[0], " ", $body, " ", in_array('X-Leak: 1', $http_response_header) ? "leak-header" : "-", "\n";
$body = file_get_contents("http://127.0.0.1:$port/w/worker.php?op=info", false, stream_context_create(['http' => ['ignore_errors' => true]]));
echo $http_response_header[0], " ", in_array('X-Leak: 1', $http_response_header) ? "leak-header" : "no-leak-header", "\n";
echo $body, "\n";
--- request
GET /driver.php
--- response_body_like
^HTTP/1.[01] 418 [^\n]* dirty leak-header
HTTP/1.[01] 200 OK no-leak-header
\{"code":200,"precision":"14","leak":null,"get":\{"op":"info"\},"ob":"default","x":null\}
--- timeout: 15
--- no_error_log
[error]



=== TEST 3: a fatal error in the handler costs one request (500) and the worker boots afresh
--- http_config
    fephp_executors 1;
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



=== TEST 4: max_requests=2 recycles the worker: a new boot every 2 requests
--- http_config
    fephp_executors 1;
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



=== TEST 5: a worker script that cannot boot: 503 and a clear [error]
--- http_config
    fephp_executors 1;
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



=== TEST 6: watch=: a change under a watched path restarts the workers
--- http_config
    fephp_executors 1;
--- config
    location = /driver.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /w/ {
        root html;
        fephp_worker $TEST_NGINX_SERVER_ROOT/html/w/worker.php watch=$TEST_NGINX_SERVER_ROOT/html/w/src watch=$TEST_NGINX_SERVER_ROOT/html/w/*.ini;
        fephp_pass executors;
    }
--- user_files
>>> w/worker.php
<?php
$version = require __DIR__ . '/src/version.php';
while (fephp_handle_request(function () use ($version) { echo $version; })) {}
>>> w/src/version.php
<?php return 'v1';
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$dir = dirname(__FILE__) . '/w';
echo "before: ", file_get_contents("http://127.0.0.1:$port/w/worker.php"), "\n";
file_put_contents("$dir/src/version.php", "<?php return 'v2' /* changed */;");
$now = '';
for ($i = 0; $i < 100 && $now !== 'v2'; $i++) {
    usleep(100000);
    $now = (string) @file_get_contents("http://127.0.0.1:$port/w/worker.php");
}
echo "after the change: $now\n";
--- request
GET /driver.php
--- response_body
before: v1
after the change: v2
--- timeout: 20
--- error_log
watched files changed: restarting the workers
