# The response-path directives (fephp_buffering and its companions, fephp_hide_header /
# pass_header / ignore_headers): bad arguments fail at configuration time naming the directive
# (as the fastcgi_* twins), good ones serve. The slow-client behaviour itself is tested with a
# client that stops reading in tests/nginx_response_buffering.rs.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fephp_buffering takes on or off
--- config
    location /a { fephp_buffering maybe; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_buffering" directive: invalid value "maybe"



=== TEST 2: fephp_buffers needs a positive number
--- config
    location /a { fephp_buffers 0 4k; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_buffers" directive: invalid value "0"



=== TEST 3: fephp_buffers needs a size
--- config
    location /a { fephp_buffers 8 lots; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_buffers" directive: invalid size "lots"



=== TEST 4: fephp_temp_file_write_size below fephp_buffer_size, as fastcgi's check
--- config
    location /a { fephp_buffer_size 16k; fephp_temp_file_write_size 4k; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_temp_file_write_size" must be equal to or greater than the maximum of the value of "fephp_buffer_size" and one of the "fephp_buffers"



=== TEST 5: fephp_max_temp_file_size needs a size
--- config
    location /a { fephp_max_temp_file_size big; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_max_temp_file_size" directive: invalid value "big"



=== TEST 6: fephp_temp_path twice in one level (nginx's path slot)
--- config
    location /a { fephp_temp_path /tmp/a; fephp_temp_path /tmp/b; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_temp_path" directive is duplicate



=== TEST 7: fephp_ignore_headers takes the names fastcgi_ignore_headers takes
--- config
    location /a { fephp_ignore_headers X-Accel-Redirect X-Bogus; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_ignore_headers" directive: invalid value "X-Bogus"



=== TEST 8: all of them, valid, on both backends' locations: PHP answers
--- config
    fephp_buffering on;
    fephp_buffers 4 8k;
    fephp_temp_path fephp_temp_042 1 2;
    fephp_max_temp_file_size 64m;
    fephp_temp_file_write_size 16k;
    fephp_ignore_headers X-Accel-Expires Set-Cookie;
    fephp_hide_header X-Internal;
    fephp_pass_header X-Accel-Charset;
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> ok.php
<?php header("X-Internal: secret"); echo "ok\n";
--- request
GET /ok.php
--- response_body
ok
