# fephp_status against a php-fpm pool of one child that is busy: the health probe has its own
# short timeout and reports the pool busy, at once, instead of waiting for the status request's
# own timeout (it answered 504 after ~11 s before). The child is kept busy by a script that ends
# its response with fastcgi_finish_request() and sleeps on.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: the only child is busy: the probe answers quickly, reporting busy
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SINGLE_SOCKET;
    }
    location = /status { fephp_status; }
--- user_files
>>> busy.php
<?php echo "busy\n"; fastcgi_finish_request(); sleep(2);
--- request eval
["GET /busy.php", "GET /status?json"]
--- response_body_like eval
[qr/^busy$/, qr/"ok":true.*"busy":true,"detail":"no PHP-FPM child at \S+ answered within 1s: every child busy"/]
--- no_error_log
[error]
--- timeout: 3



=== TEST 2: an idle pool of one child: healthy, not busy
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SINGLE_SOCKET;
    }
    location = /status { fephp_status; }
--- user_files
>>> a.php
<?php echo "a\n";
--- request eval
["GET /a.php", "GET /status?json"]
--- response_body_like eval
[qr/^a$/, qr/"ok":true.*"busy":false/]
--- no_error_log
[error]
