# Queueing, on both backends: concurrent PHP requests wait for a free FPM connection
# (fephp_max_connections 1) or for the worker's one embedded PHP thread, in order; fephp_queue N
# bounds the wait list (one more gets 503 at once) and timeout=T how long one may wait (then
# 503). A driver script (run by PHP-FPM's TCP pool: another address, so another fephp pool
# than the one under test, which is one per address) opens its own connections to this
# nginx and reports statuses and ordering, never absolute timings.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fpm: concurrent requests to a 1-connection pool queue and run one after another (all 200)
--- config
    location = /driver.php {
        root html;
        fephp_pass $TEST_NGINX_FPM_TCP;
    }
    location /q/ {
        root html;
        fephp_max_connections 1;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> q/work.php
<?php $t0 = microtime(true); usleep(600000); echo "span ", $t0, " ", microtime(true), "\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$socks = [];
for ($i = 0; $i < 3; $i++) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET /q/work.php?i=$i HTTP/1.0\r\nHost: localhost\r\n\r\n");
    $socks[] = $s;
}
$spans = [];
foreach ($socks as $s) {
    $r = stream_get_contents($s);
    echo strpos($r, " 200 ") !== false ? "200" : "bad", "\n";
    if (preg_match('/span (\S+) (\S+)/', $r, $m)) $spans[] = [(float)$m[1], (float)$m[2]];
}
usort($spans, fn($a, $b) => $a[0] <=> $b[0]);
$overlap = 0;
for ($i = 1; $i < count($spans); $i++) if ($spans[$i][0] < $spans[$i - 1][1]) $overlap++;
echo "spans ", count($spans), " overlapping ", $overlap, "\n";
--- request
GET /driver.php
--- response_body
200
200
200
spans 3 overlapping 0
--- timeout: 15
--- no_error_log
[error]



=== TEST 2: embedded: concurrent requests queue for the one PHP thread and run one after another (all 200)
--- config
    location = /driver.php {
        root html;
        fephp_pass $TEST_NGINX_FPM_TCP;
    }
    location /q/ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> q/work.php
<?php $t0 = microtime(true); usleep(600000); echo "span ", $t0, " ", microtime(true), "\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$socks = [];
for ($i = 0; $i < 3; $i++) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET /q/work.php?i=$i HTTP/1.0\r\nHost: localhost\r\n\r\n");
    $socks[] = $s;
}
$spans = [];
foreach ($socks as $s) {
    $r = stream_get_contents($s);
    echo strpos($r, " 200 ") !== false ? "200" : "bad", "\n";
    if (preg_match('/span (\S+) (\S+)/', $r, $m)) $spans[] = [(float)$m[1], (float)$m[2]];
}
usort($spans, fn($a, $b) => $a[0] <=> $b[0]);
$overlap = 0;
for ($i = 1; $i < count($spans); $i++) if ($spans[$i][0] < $spans[$i - 1][1]) $overlap++;
echo "spans ", count($spans), " overlapping ", $overlap, "\n";
--- request
GET /driver.php
--- response_body
200
200
200
spans 3 overlapping 0
--- timeout: 15
--- no_error_log
[error]



=== TEST 3: fpm: fephp_queue 1 -> the request beyond running + 1 queued gets 503 at once
--- config
    location = /driver.php {
        root html;
        fephp_pass $TEST_NGINX_FPM_TCP;
    }
    location /q/ {
        root html;
        fephp_max_connections 1;
        fephp_queue 1;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> q/sleep.php
<?php usleep(1500000); echo "slept\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
function req($port) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET /q/sleep.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
    return $s;
}
function status($r) { return preg_match('#^HTTP/1\.\d (\d+)#', $r, $m) ? $m[1] : 'none'; }
$running = req($port);
usleep(400000);            // the first one runs
$queued = req($port);
usleep(400000);            // the second one waits in the queue (1 place)
$third = req($port);
echo "third: ", status(stream_get_contents($third)), "\n";   // queue full: 503 at once
$read = [$running]; $w = $e = null;
echo "first still running: ", stream_select($read, $w, $e, 0) === 0 ? "yes" : "no", "\n";
echo "first: ", status(stream_get_contents($running)), "\n";
echo "queued: ", status(stream_get_contents($queued)), "\n";
--- request
GET /driver.php
--- response_body
third: 503
first still running: yes
first: 200
queued: 200
--- timeout: 15
--- error_log
fephp: overloaded: all 1 FastCGI connections busy and 1 requests already waiting



=== TEST 4: embedded: fephp_queue 1 -> the request beyond running + 1 queued gets 503 at once
--- config
    location = /driver.php {
        root html;
        fephp_pass $TEST_NGINX_FPM_TCP;
    }
    location /q/ {
        root html;
        fephp_queue 1;
        fephp_pass embedded;
    }
--- user_files
>>> q/sleep.php
<?php usleep(1500000); echo "slept\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
function req($port) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET /q/sleep.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
    return $s;
}
function status($r) { return preg_match('#^HTTP/1\.\d (\d+)#', $r, $m) ? $m[1] : 'none'; }
$running = req($port);
usleep(400000);            // the first one runs
$queued = req($port);
usleep(400000);            // the second one waits in the queue (1 place)
$third = req($port);
echo "third: ", status(stream_get_contents($third)), "\n";   // queue full: 503 at once
$read = [$running]; $w = $e = null;
echo "first still running: ", stream_select($read, $w, $e, 0) === 0 ? "yes" : "no", "\n";
echo "first: ", status(stream_get_contents($running)), "\n";
echo "queued: ", status(stream_get_contents($queued)), "\n";
--- request
GET /driver.php
--- response_body
third: 503
first still running: yes
first: 200
queued: 200
--- timeout: 15
--- error_log
fephp: overloaded: embedded PHP queue is full



=== TEST 5: fpm: fephp_queue timeout=1s -> a request waiting longer gets 503
--- config
    location = /driver.php {
        root html;
        fephp_pass $TEST_NGINX_FPM_TCP;
    }
    location /q/ {
        root html;
        fephp_max_connections 1;
        fephp_queue 8 timeout=1s;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> q/sleep.php
<?php sleep(3); echo "slept\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
function req($port) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET /q/sleep.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
    return $s;
}
function status($r) { return preg_match('#^HTTP/1\.\d (\d+)#', $r, $m) ? $m[1] : 'none'; }
$running = req($port);
usleep(400000);
$waiting = req($port);
echo "waiting: ", status(stream_get_contents($waiting)), "\n";  // gives up after timeout=1s
$read = [$running]; $w = $e = null;
echo "first still running: ", stream_select($read, $w, $e, 0) === 0 ? "yes" : "no", "\n";
echo "first: ", status(stream_get_contents($running)), "\n";
--- request
GET /driver.php
--- response_body
waiting: 503
first still running: yes
first: 200
--- timeout: 15
--- error_log
fephp: overloaded: no FastCGI connection free within 1s



=== TEST 6: embedded: fephp_queue timeout=1s -> a request waiting longer gets 503
--- config
    location = /driver.php {
        root html;
        fephp_pass $TEST_NGINX_FPM_TCP;
    }
    location /q/ {
        root html;
        fephp_queue 8 timeout=1s;
        fephp_pass embedded;
    }
--- user_files
>>> q/sleep.php
<?php sleep(3); echo "slept\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
function req($port) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET /q/sleep.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
    return $s;
}
function status($r) { return preg_match('#^HTTP/1\.\d (\d+)#', $r, $m) ? $m[1] : 'none'; }
$running = req($port);
usleep(400000);
$waiting = req($port);
echo "waiting: ", status(stream_get_contents($waiting)), "\n";  // gives up after timeout=1s
$read = [$running]; $w = $e = null;
echo "first still running: ", stream_select($read, $w, $e, 0) === 0 ? "yes" : "no", "\n";
echo "first: ", status(stream_get_contents($running)), "\n";
--- request
GET /driver.php
--- response_body
waiting: 503
first still running: yes
first: 200
--- timeout: 15
--- error_log
fephp: overloaded: waited more than 1s for the PHP thread
