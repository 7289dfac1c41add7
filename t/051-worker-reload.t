# fephp_worker and nginx's reload: the new configuration gets a new executor pool whose workers
# boot the new code; the old pool drains. With a master process, as in production.
use Test::Nginx::Socket;

# One status and one body check, plus one per no_error_log line.
plan tests => repeat_each() * (3 * blocks());

master_on();
workers(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: nginx -s reload: the new configuration's workers boot the new code
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
$version = require __DIR__ . '/version.php';
while (fephp_handle_request(function () use ($version) { echo $version; })) {}
>>> w/version.php
<?php return 'v1';
>>> driver.php
<?php
$port = $_SERVER['SERVER_PORT'];
$dir = dirname(__FILE__) . '/w';
echo "before: ", file_get_contents("http://127.0.0.1:$port/w/worker.php"), "\n";
file_put_contents("$dir/version.php", "<?php return 'v2' /* changed */;");
echo "still booted: ", file_get_contents("http://127.0.0.1:$port/w/worker.php"), "\n";
$pid = (int) file_get_contents(dirname(__FILE__) . '/../logs/nginx.pid');
exec('kill -HUP ' . $pid);
$now = '';
for ($i = 0; $i < 100 && $now !== 'v2'; $i++) {
    usleep(100000);
    $now = (string) @file_get_contents("http://127.0.0.1:$port/w/worker.php");
}
echo "after reload: $now\n";
--- request
GET /driver.php
--- response_body
before: v1
still booted: v1
after reload: v2
--- timeout: 20
--- no_error_log
[error]
