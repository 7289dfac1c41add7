# The response head limit, as fastcgi_pass's fastcgi_buffer_size: a PHP response whose head
# (status and headers) is longer than fephp_buffer_size (default one memory page, 4k|8k) is a
# 502 "too big" on both backends; a larger fephp_buffer_size lets it through.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fastcgi_pass (reference): 200 headers of 100 bytes are a 502
--- config
    location ~ \.php$ {
        root html;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> big.php
<?php for ($i = 0; $i < 200; $i++) header(sprintf("X-H%03d: %s", $i, str_repeat("v", 92))); echo "body\n";
--- request
GET /big.php
--- error_code: 502
--- error_log
too big header



=== TEST 2: fephp_pass FPM: 200 headers of 100 bytes are a 502
--- config
    location ~ \.php$ {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> big.php
<?php for ($i = 0; $i < 200; $i++) header(sprintf("X-H%03d: %s", $i, str_repeat("v", 92))); echo "body\n";
--- request
GET /big.php
--- error_code: 502
--- error_log
too big a response head



=== TEST 3: fephp_pass embedded: 200 headers of 100 bytes are a 502
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> big.php
<?php for ($i = 0; $i < 200; $i++) header(sprintf("X-H%03d: %s", $i, str_repeat("v", 92))); echo "body\n";
--- request
GET /big.php
--- error_code: 502
--- error_log
too big a response head



=== TEST 4: fephp_pass FPM with fephp_buffer_size 32k: the same head passes
--- config
    location ~ \.php$ {
        root html;
        fephp_buffer_size 32k;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- user_files
>>> big.php
<?php for ($i = 0; $i < 200; $i++) header(sprintf("X-H%03d: %s", $i, str_repeat("v", 92))); echo "body\n";
--- request
GET /big.php
--- response_body
body



=== TEST 5: fephp_pass embedded with fephp_buffer_size 32k: the same head passes
--- config
    location ~ \.php$ {
        root html;
        fephp_buffer_size 32k;
        fephp_pass embedded;
    }
--- user_files
>>> big.php
<?php for ($i = 0; $i < 200; $i++) header(sprintf("X-H%03d: %s", $i, str_repeat("v", 92))); echo "body\n";
--- request
GET /big.php
--- response_body
body
