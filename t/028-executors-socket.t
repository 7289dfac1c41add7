# fephp_pass executors over the socket transport (fephp_executor_transport socket: a unix-socket
# connection per request; t/025-executors.t runs the same blocks over the default transport,
# shared memory): PHP in a pool of executor processes behind one shared queue, started by
# nginx (a supervisor forked in init_module). Against the real parts: nginx with the module,
# Debian's libphp in the executors, php-fpm only to run some driver scripts. No timing
# assertions: drivers report orderings and counts, every wait is bounded.
use Test::Nginx::Socket;

# Assertions per block, counted as upstream Test::Nginx does: one status and one body check
# per request, one per error_log / no_error_log line.
plan tests => repeat_each() * (3 + 3 + 3 + 4 + 3 + 4 + 3 + 2 + 2 + 3 + 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: hello through an executor (our SAPI, not the nginx worker)
--- http_config
    fephp_executor_transport socket;
    fephp_executors 2;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> hello.php
<?php echo php_sapi_name(), " ", getmypid() > 0 ? "pid" : "nopid", "\n";
--- request
GET /hello.php
--- response_body
fe-php pid
--- no_error_log
[error]



=== TEST 2: one shared queue: while one executor sleeps, the others serve 5 requests
--- http_config
    fephp_executor_transport socket;
    fephp_executors 3;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> slow.php
<?php sleep(3); echo "slow done\n";
>>> hello.php
<?php echo "hello\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$slow = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
fwrite($slow, "GET /slow.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
usleep(200000);
$ok = 0;
for ($i = 0; $i < 5; $i++) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET /hello.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
    $r = stream_get_contents($s);
    if (strpos($r, " 200 ") !== false && strpos($r, "hello") !== false) $ok++;
}
stream_set_blocking($slow, false);
$early = stream_get_contents($slow);
echo "hellos ok: $ok\n";
echo "slow still running: ", $early === "" ? "yes" : "no", "\n";
stream_set_blocking($slow, true);
$r = $early . stream_get_contents($slow);
echo "slow: ", strpos($r, "slow done") !== false ? "done" : "bad", "\n";
--- request
GET /driver.php
--- response_body
hellos ok: 5
slow still running: yes
slow: done
--- timeout: 15
--- no_error_log
[error]



=== TEST 3: a PHP crash fails only its request (502, [error] line); the executor is replaced
--- http_config
    fephp_executor_transport socket;
    fephp_executors 1;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> crash.php
<?php ini_set("memory_limit","-1"); $a=[]; $r=&$a; for($i=0;$i<3000000;$i++){$r[0]=[]; $r=&$r[0];} echo serialize($a);
>>> hello.php
<?php echo "hello after crash\n";
--- request
GET /crash.php
--- error_code: 502
--- response_body_like: 502 Bad Gateway
--- timeout: 15
--- error_log
the executor ended before its response did



=== TEST 3b: after a PHP crash (502), the next request is served by the replacement executor
--- http_config
    fephp_executor_transport socket;
    fephp_executors 1;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> crash.php
<?php ini_set("memory_limit","-1"); $a=[]; $r=&$a; for($i=0;$i<3000000;$i++){$r[0]=[]; $r=&$r[0];} echo serialize($a);
>>> hello.php
<?php echo "hello after crash\n";
--- request eval
["GET /crash.php", "GET /hello.php"]
--- error_code eval
[502, 200]
--- response_body_like eval
[qr/502 Bad Gateway/, qr/^hello after crash$/]
--- timeout: 15



=== TEST 4: fephp_request_terminate_timeout: a stuck executor is killed (504) and replaced
--- http_config
    fephp_executor_transport socket;
    fephp_executors 1;
    fephp_request_terminate_timeout 1s;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> stuck.php
<?php set_time_limit(0); sleep(20); echo "never\n";
>>> hello.php
<?php echo "hello after kill\n";
--- request
GET /stuck.php
--- error_code: 504
--- response_body_like: 504 Gateway Time-out
--- timeout: 15
--- error_log
killed after the request terminate timeout



=== TEST 4b: after a terminate-timeout kill (504), the next request is served by the replacement executor
--- http_config
    fephp_executor_transport socket;
    fephp_executors 1;
    fephp_request_terminate_timeout 1s;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> stuck.php
<?php set_time_limit(0); sleep(20); echo "never\n";
>>> hello.php
<?php echo "hello after kill\n";
--- request eval
["GET /stuck.php", "GET /hello.php"]
--- error_code eval
[504, 200]
--- response_body_like eval
[qr/504 Gateway Time-out/, qr/^hello after kill$/]
--- timeout: 15



=== TEST 5: fephp_executor_max_requests: an executor is replaced after N requests
--- http_config
    fephp_executor_transport socket;
    fephp_executors 2;
    fephp_executor_max_requests 3;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> pid.php
<?php echo getmypid();
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$pids = [];
for ($i = 0; $i < 7; $i++) {
    $r = file_get_contents("http://127.0.0.1:$port/pid.php");
    if ($r !== false) $pids[$r] = true;
}
// This driver holds one executor; the other serves all 7, recycled after every 3.
echo "distinct executors: ", count($pids) >= 3 ? ">= 3" : count($pids), "\n";
--- request
GET /driver.php
--- response_body
distinct executors: >= 3
--- timeout: 15
--- no_error_log
[error]



=== TEST 6: executors run as their own user (nobody when nginx runs as root)
--- http_config eval
"fephp_executor_transport socket;\n" . ($> == 0 ? "fephp_executor_user nobody nogroup;" : "")
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
--- user_files
>>> uid.php
<?php preg_match('/^Uid:\s+(\d+)/m', file_get_contents('/proc/self/status'), $m); echo $m[1], "\n";
--- request
GET /uid.php
--- response_body eval
$> == 0 ? scalar(getpwnam("nobody")) . "\n" : "$>\n"



=== TEST 7: fephp_status?full shows each executor: pid, state, the current URI and its duration
--- http_config
    fephp_executor_transport socket;
    fephp_executors 2;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
    location = /status { fephp_status; }
--- user_files
>>> slow.php
<?php sleep(2); echo "ok";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$slow = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
fwrite($slow, "GET /slow.php?marker=42 HTTP/1.0\r\nHost: localhost\r\n\r\n");
$status = "";
for ($i = 0; $i < 50 && strpos($status, 'marker=42') === false; $i++) {
    usleep(50000);
    $status = file_get_contents("http://127.0.0.1:$port/status?full");
}
foreach (explode("\n", $status) as $line) {
    if (preg_match('/^fephp_executors_(total|busy)\{/', $line)) echo $line, "\n";
    if (strpos($line, 'marker=42') !== false) echo preg_replace('/pid="\d+"/', 'pid="N"', preg_replace('/ [0-9.]+$/', ' T', $line)), "\n";
}
fclose($slow);
--- request
GET /driver.php
--- response_body
fephp_executors_total{engine="executors"} 2
fephp_executors_busy{engine="executors"} 2
fephp_executor_request_duration_seconds{engine="executors",pid="N",uri="/slow.php?marker=42"} T
--- timeout: 15



=== TEST 8: fephp_queue timeout=: a request that waited longer for an executor gets 503
--- http_config
    fephp_executor_transport socket;
    fephp_executors 1;
--- config
    location = /driver.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location /q/ {
        root html;
        fephp_queue 16 timeout=1s;
        fephp_pass executors;
    }
--- user_files
>>> q/slow.php
<?php sleep(2); echo "slow\n";
>>> q/next.php
<?php echo "next\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$slow = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
fwrite($slow, "GET /q/slow.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
usleep(300000);
$next = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
fwrite($next, "GET /q/next.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
$a = stream_get_contents($slow);
$b = stream_get_contents($next);
echo "slow: ", strpos($a, " 200 ") !== false ? 200 : "bad", "\n";
echo "next: ", preg_match('/^HTTP\/1\.\d (\d+)/', $b, $m) ? $m[1] : "bad", "\n";
--- request
GET /driver.php
--- response_body
slow: 200
next: 503
--- timeout: 15
--- error_log
waited longer than the queue timeout



=== TEST 9: a dynamic pool (fephp_executors N min_spare= max_spare= start=) grows to keep a spare executor
--- http_config
    fephp_executor_transport socket;
    fephp_executors 4 start=1 min_spare=1 max_spare=1;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass executors;
    }
    location = /status { fephp_status; }
--- user_files
>>> driver.php
<?php
// This request holds the one executor started at first; the pool starts another as a spare.
$port = $_SERVER['SERVER_PORT'];
$running = 0;
for ($i = 0; $i < 100 && $running < 2; $i++) {
    usleep(50000);
    if (preg_match('/^fephp_executors_running\{[^}]*\} (\d+)$/m', (string) @file_get_contents("http://127.0.0.1:$port/status"), $m)) $running = (int) $m[1];
}
echo "grew: ", $running >= 2 ? "yes" : "no ($running)", "\n";
--- request
GET /driver.php
--- response_body
grew: yes
--- timeout: 15
--- error_log
started a dynamic pool: 1 executors at first, at most 4
