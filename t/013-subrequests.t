# PHP as a subrequest, on both backends: SSI `include virtual` and `mirror`. The end of a
# subrequest's body is `last_in_chain` + `sync` (nginx's own `ngx_http_send_special`), never an
# empty buffer nginx would report as `zero size buf in output`; only the main request ends with
# `last_buf`. fastcgi_pass logs no [alert] here, neither do we. A PHP subrequest that fails
# after its head (fephp_read_timeout mid-body) terminates the whole request
# (`ngx_http_terminate_request`), which runs the request cleanups of every PHP part still in
# flight at once: the client gets what was sent so far and the connection is closed.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 4);

no_long_string();
run_tests();

__DATA__

=== TEST 1: SSI include virtual of PHP parts through FPM
--- config
    location /ssi/ {
        root html;
        default_type text/html;
        ssi on;
    }
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> ssi/page.html
before <!--# include virtual="/part.php?n=1" --> middle <!--# include virtual="/part.php?n=2" --> after
>>> part.php
<?php echo "part", $_GET['n'];
--- request
GET /ssi/page.html
--- response_body
before part1 middle part2 after
--- no_error_log
[alert]
[error]



=== TEST 2: SSI include virtual of PHP parts, embedded
--- config
    location /ssi/ {
        root html;
        default_type text/html;
        ssi on;
    }
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> ssi/page.html
before <!--# include virtual="/part.php?n=1" --> middle <!--# include virtual="/part.php?n=2" --> after
>>> part.php
<?php echo "part", $_GET['n'];
--- request
GET /ssi/page.html
--- response_body
before part1 middle part2 after
--- no_error_log
[alert]
[error]



=== TEST 3: SSI include of a streamed (flushed) PHP part and an empty one, FPM
--- config
    location /ssi/ {
        root html;
        default_type text/html;
        ssi on;
    }
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> ssi/page.html
[<!--# include virtual="/stream.php" -->][<!--# include virtual="/empty.php" -->]
>>> stream.php
<?php echo "a"; flush(); usleep(100000); echo "b"; flush(); echo "c";
>>> empty.php
<?php
--- request
GET /ssi/page.html
--- response_body
[abc][]
--- no_error_log
[alert]
[error]



=== TEST 4: SSI include of a streamed (flushed) PHP part and an empty one, embedded
--- config
    location /ssi/ {
        root html;
        default_type text/html;
        ssi on;
    }
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> ssi/page.html
[<!--# include virtual="/stream.php" -->][<!--# include virtual="/empty.php" -->]
>>> stream.php
<?php echo "a"; flush(); usleep(100000); echo "b"; flush(); echo "c";
>>> empty.php
<?php
--- request
GET /ssi/page.html
--- response_body
[abc][]
--- no_error_log
[alert]
[error]



=== TEST 5: mirror to a PHP location (a background subrequest), FPM
--- config
    location = /static.txt {
        root html;
        mirror /mirror.php;
    }
    location = /mirror.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> static.txt
static
>>> mirror.php
<?php echo "mirrored\n";
--- request
GET /static.txt
--- response_body
static
--- wait: 0.3
--- no_error_log
[alert]
[error]



=== TEST 6: mirror to a PHP location (a background subrequest), embedded
--- config
    location = /static.txt {
        root html;
        mirror /mirror.php;
    }
    location = /mirror.php {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> static.txt
static
>>> mirror.php
<?php echo "mirrored\n";
--- request
GET /static.txt
--- response_body
static
--- wait: 0.3
--- no_error_log
[alert]
[error]



=== TEST 7: a PHP part timing out mid-body terminates the page and a PHP part in flight, FPM
--- config
    location /ssi/ {
        root html;
        default_type text/html;
        ssi on;
    }
    location = /stall.php {
        root html;
        fephp_read_timeout 1s;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location = /slow.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> ssi/page.html
[<!--# include virtual="/stall.php" -->][<!--# include virtual="/slow.php" -->]
>>> stall.php
<?php while (ob_get_level()) ob_end_flush(); echo "a"; flush(); sleep(4); echo "b";
>>> slow.php
<?php sleep(3); echo "slow";
--- request
GET /ssi/page.html HTTP/1.0
--- response_body chop
[a
--- timeout: 4
--- error_log
[error]
--- no_error_log
[alert]


=== TEST 8: a PHP part timing out mid-body terminates the page and a PHP part in flight, embedded
--- config
    location /ssi/ {
        root html;
        default_type text/html;
        ssi on;
    }
    location = /stall.php {
        root html;
        fephp_read_timeout 1s;
        fephp_pass embedded;
    }
    location = /slow.php {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> ssi/page.html
[<!--# include virtual="/stall.php" -->][<!--# include virtual="/slow.php" -->]
>>> stall.php
<?php while (ob_get_level()) ob_end_flush(); echo "a"; flush(); sleep(4); echo "b";
>>> slow.php
<?php sleep(3); echo "slow";
--- request
GET /ssi/page.html HTTP/1.0
--- response_body chop
[a
--- timeout: 4
--- error_log
[error]
--- no_error_log
[alert]
