# The nginx event loop never waits for PHP: with ONE nginx worker, a PHP request in flight
# (sleep(2)) does not delay a `return 200` location or a static file. A driver script (run by
# PHP-FPM) opens its own connections to this nginx and reports the order in which they finish.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: a sleeping FPM request does not block return 200 or static files
--- config
    location = /ok { return 200 "ok\n"; }
    location = /driver.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /sleep.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> static.txt
static file
>>> sleep.php
<?php sleep(2); echo "slept\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
function req($path, $port) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n");
    return $s;
}
$slow = req('/sleep.php', $port);
usleep(300000); // the slow request is now running in PHP
foreach (['/ok', '/static.txt'] as $p) {
    $r = stream_get_contents(req($p, $port));
    echo $p, " ", strpos($r, " 200 ") !== false ? "200" : "bad", "\n";
}
$read = [$slow]; $w = $e = null;
echo "slow still running: ", stream_select($read, $w, $e, 0) === 0 ? "yes" : "no", "\n";
$r = stream_get_contents($slow);
echo "/sleep.php ", strpos($r, "slept") !== false ? "done" : "bad", "\n";
--- request
GET /driver.php
--- response_body
/ok 200
/static.txt 200
slow still running: yes
/sleep.php done
--- timeout: 10
--- no_error_log
[error]



=== TEST 2: a sleeping embedded-PHP request does not block return 200 or static files
--- config
    location = /ok { return 200 "ok\n"; }
    location = /driver.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /sleep.php {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> static.txt
static file
>>> sleep.php
<?php sleep(2); echo "slept\n";
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
function req($path, $port) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    fwrite($s, "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n");
    return $s;
}
$slow = req('/sleep.php', $port);
usleep(300000);
foreach (['/ok', '/static.txt'] as $p) {
    $r = stream_get_contents(req($p, $port));
    echo $p, " ", strpos($r, " 200 ") !== false ? "200" : "bad", "\n";
}
$read = [$slow]; $w = $e = null;
echo "slow still running: ", stream_select($read, $w, $e, 0) === 0 ? "yes" : "no", "\n";
$r = stream_get_contents($slow);
echo "/sleep.php ", strpos($r, "slept") !== false ? "done" : "bad", "\n";
--- request
GET /driver.php
--- response_body
/ok 200
/static.txt 200
slow still running: yes
/sleep.php done
--- timeout: 10
--- no_error_log
[error]



=== TEST 3: a client that does not read a large response (back-pressure) blocks nothing and gets every byte
--- config
    location = /ok { return 200 "ok\n"; }
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> big.php
<?php for ($i = 0; $i < 8192; $i++) { echo str_repeat(chr(65 + $i % 26), 1023), "\n"; }
>>> driver.php
<?php
// holds 16 MB: php-fpm keeps a PHP_VALUE for the child's later requests, and 004-errors.t
// leaves memory_limit=16M in one child of the shared pool
ini_set('memory_limit', '128M');
$port = $_SERVER['SERVER_PORT'];
$big = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
fwrite($big, "GET /big.php HTTP/1.0\r\nHost: localhost\r\n\r\n");
usleep(500000); // nginx fills the socket buffers and must stop pulling from PHP
$ok = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
fwrite($ok, "GET /ok HTTP/1.0\r\nHost: localhost\r\n\r\n");
echo "ok while blocked: ", strpos(stream_get_contents($ok), " 200 ") !== false ? "yes" : "no", "\n";
$r = stream_get_contents($big);
$body = substr($r, strpos($r, "\r\n\r\n") + 4);
$want = '';
for ($i = 0; $i < 8192; $i++) { $want .= str_repeat(chr(65 + $i % 26), 1023) . "\n"; }
echo "big body: ", strlen($body), " ", $body === $want ? "intact" : "corrupt", "\n";
--- request
GET /driver.php
--- response_body
ok while blocked: yes
big body: 8388608 intact
--- timeout: 20
--- no_error_log
[error]
