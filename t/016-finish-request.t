# fastcgi_finish_request(): the client gets the whole response (and its keep-alive connection
# back) while the script goes on. The script touches flag.txt after a sleep; the requests after
# it on the same connection see the static flag.txt missing (the response was complete before
# the sleep ended), then a PHP request, queued behind the still running script (one PHP thread;
# php-fpm: a pool of one child), sees it, and so does the static file after it. No timing
# assertion: only the order of events.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fephp_pass embedded: the response ends at fastcgi_finish_request, the script goes on
--- config
    log_not_found off;
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> finish.php
<?php
echo "done\n";
fastcgi_finish_request();
sleep(1);
echo "lost\n";
touch(__DIR__ . "/flag.txt");
>>> check.php
<?php echo file_exists(__DIR__ . "/flag.txt") ? "flag\n" : "no flag\n";
--- pipelined_requests eval
["GET /finish.php", "GET /flag.txt", "GET /check.php", "GET /flag.txt"]
--- error_code eval
[200, 404, 200, 200]
--- response_body_like eval
[qr/^done$/, qr/404 Not Found/, qr/^flag$/, qr/^$/]
--- no_error_log
[error]



=== TEST 2: fephp_pass to php-fpm (one child), the same sequence
--- config
    log_not_found off;
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_RECYCLE_SOCKET;
    }
--- user_files
>>> finish.php
<?php
echo "done\n";
fastcgi_finish_request();
sleep(1);
echo "lost\n";
touch(__DIR__ . "/flag.txt");
>>> check.php
<?php echo file_exists(__DIR__ . "/flag.txt") ? "flag\n" : "no flag\n";
--- pipelined_requests eval
["GET /finish.php", "GET /flag.txt", "GET /check.php", "GET /flag.txt"]
--- error_code eval
[200, 404, 200, 200]
--- response_body_like eval
[qr/^done$/, qr/404 Not Found/, qr/^flag$/, qr/^$/]
--- no_error_log
[error]



=== TEST 3: fephp_status shows the embedded request as finishing while the script goes on
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
    location = /status { fephp_status; }
--- user_files
>>> finish.php
<?php
echo "done\n";
fastcgi_finish_request();
sleep(1);
--- pipelined_requests eval
["GET /finish.php", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/^done$/, qr/fephp_php_busy\{engine="embedded"\} 1\n.*fephp_php_finishing\{engine="embedded"\} 1\n/s]
--- no_error_log
[error]



=== TEST 4: fephp_pass embedded: output after fastcgi_finish_request is discarded, a second call is false
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> twice.php
<?php
header("X-Finish: yes");
echo "visible\n";
ob_start();
echo "buffered\n";
$first = fastcgi_finish_request();
$second = fastcgi_finish_request();
echo "discarded\n";
file_put_contents(__DIR__ . "/result.txt", var_export([$first, $second], true));
--- request
GET /twice.php
--- error_code: 200
--- response_body
visible
buffered
--- no_error_log
[error]



=== TEST 5: the time limit keeps counting after fastcgi_finish_request
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> limit.php
<?php
set_time_limit(1);
echo "done\n";
fastcgi_finish_request();
$x = 0;
while (true) { $x++; }
--- request
GET /limit.php
--- response_body
done
--- wait: 2
--- error_log
Maximum execution time of 1 second exceeded
