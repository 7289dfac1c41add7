# Bad directive arguments fail at configuration time with a message naming the directive.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fephp_pass with a relative unix path
--- config
    location /a { fephp_pass unix:relative.sock; }
--- must_die
--- error_log
"fephp_pass" directive: invalid address



=== TEST 2: fephp_pass with junk
--- config
    location /a { fephp_pass unix:relative.sock; }
--- must_die
--- error_log
"fephp_pass" directive: invalid address



=== TEST 2a: fephp_pass NAME without an upstream block: nginx's check, as for fastcgi_pass
--- config
    location /a { fephp_pass nowhere; }
--- must_die
--- error_log
no port in upstream "nowhere"



=== TEST 2b: fephp_pass to a host name that does not resolve (nginx -t refuses it, like fastcgi_pass)
--- config
    location /a { fephp_pass no-such-host.invalid:9000; }
--- must_die
--- error_log
"fephp_pass" directive: host not found in "no-such-host.invalid:9000"



=== TEST 3: fephp_pass twice
--- config
    location /a { fephp_pass embedded; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_pass" directive: is duplicate



=== TEST 4: fephp_pass at server level is not allowed
--- config
    fephp_pass embedded;
--- must_die
--- error_log
"fephp_pass" directive is not allowed here



=== TEST 5: fephp_max_connections 0
--- config
    location /a { fephp_max_connections 0; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_max_connections" directive: invalid number "0"



=== TEST 5b: fephp_keepalive (the deprecated old name of fephp_max_connections) still checks its value
--- config
    location /a { fephp_keepalive 0; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_keepalive" directive: invalid number "0"



=== TEST 5c: two locations passing to one FPM address with different fephp_max_connections (one pool per address)
--- config
    location /a { fephp_max_connections 2; fephp_pass 127.0.0.1:9000; }
    location /b { fephp_max_connections 3; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_max_connections" directive: locations passing to 127.0.0.1:9000 share one FPM pool per worker and must agree on fephp_max_connections



=== TEST 5e: fephp_keepalive warns that it is deprecated (the configuration then fails on another directive, so the warning is in the start-up output)
--- config
    location /a { fephp_keepalive 1; fephp_pass 127.0.0.1:9000; }
    location /b { fephp_max_requests lots; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
the "fephp_keepalive" directive is deprecated, use the "fephp_max_connections" directive instead



=== TEST 5d: fephp_buffer_size junk
--- config
    location /a { fephp_buffer_size lots; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_buffer_size" directive: invalid size "lots"



=== TEST 6: fephp_max_requests not a number
--- config
    location /a { fephp_max_requests lots; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_max_requests" directive: invalid number "lots"



=== TEST 7: fephp_read_timeout not a time
--- config
    location /a { fephp_read_timeout soon; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_read_timeout" directive: invalid time "soon"



=== TEST 8: fephp_split_path_info takes on or off
--- config
    location /a { fephp_split_path_info maybe; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_split_path_info" directive: invalid value "maybe"



=== TEST 9: fephp_param with a bad third argument
--- config
    location /a { fephp_param A b always; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_param" directive: invalid parameter "always"



=== TEST 10: fephp_param with a bad variable
--- config
    location /a { fephp_param A $no_such_variable_here; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
unknown "no_such_variable_here" variable



=== TEST 11: fephp_php_ini only at http level
--- config
    location /a { fephp_php_ini memory_limit 64M; }
--- must_die
--- error_log
"fephp_php_ini" directive is not allowed here



=== TEST 12: fephp_index with a slash
--- config
    location /a { fephp_index a/b.php; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_index" directive: invalid index "a/b.php"



=== TEST 13: fephp_status takes no arguments
--- config
    location /s { fephp_status json; }
--- must_die
--- error_log
invalid number of arguments in "fephp_status" directive



=== TEST 14: fephp_queue 0
--- config
    location /a { fephp_queue 0; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_queue" directive: invalid number "0"



=== TEST 15: fephp_queue with a bad timeout
--- config
    location /a { fephp_queue 4 timeout=never; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_queue" directive: invalid time in "timeout=never"



=== TEST 16: fephp_queue with an unknown parameter
--- config
    location /a { fephp_queue 4 wait=1s; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_queue" directive: invalid parameter "wait=1s"



=== TEST 17: two embedded locations with different fephp_queue
--- config
    location /a { fephp_queue 4; fephp_pass embedded; }
    location /b { fephp_queue 8; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_queue" directive: locations with "fephp_pass embedded" share one PHP thread



=== TEST 18: fephp_split_path_info regex without two captures
--- config
    location /a { fephp_split_path_info "^(.+\.php)$"; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_split_path_info" directive: invalid value "^(.+\.php)$": regex "^(.+\\.php)$" needs two captures



=== TEST 19: fephp_split_path_info regex that does not compile
--- config
    location /a { fephp_split_path_info "^((.+\.php)(/.*)$"; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_split_path_info" directive: invalid value "^((.+\.php)(/.*)$": invalid regex



=== TEST 20: fephp_intercept_errors takes on or off
--- config
    location /a { fephp_intercept_errors maybe; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_intercept_errors" directive: invalid value "maybe"



=== TEST 21: fephp_connect_timeout 0
--- config
    location /a { fephp_connect_timeout 0; fephp_pass 127.0.0.1:9000; }
--- must_die
--- error_log
"fephp_connect_timeout" directive: invalid time "0"



=== TEST 22: fephp_index twice
--- config
    location /a { fephp_index a.php; fephp_index b.php; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_index" directive: is duplicate



=== TEST 23: fephp_php_ini_file naming a missing file (nginx -t fails, naming it)
--- http_config
    fephp_php_ini_file /definitely/not/here/php.ini;
--- config
    location /a { fephp_pass embedded; }
--- must_die
--- error_log
"fephp_php_ini_file" directive: cannot read php.ini file /definitely/not/here/php.ini: No such file or directory



=== TEST 24: fephp_php_ini_file naming a directory
--- http_config
    fephp_php_ini_file /etc;
--- config
    location /a { fephp_pass embedded; }
--- must_die
--- error_log
"fephp_php_ini_file" directive: php.ini file /etc is not a regular file



=== TEST 25: fephp_php_ini_file twice
--- http_config
    fephp_php_ini_file off;
    fephp_php_ini_file off;
--- config
    location /a { fephp_pass embedded; }
--- must_die
--- error_log
"fephp_php_ini_file" directive: is duplicate



=== TEST 26: fephp_php_ini_file only at http level
--- config
    location /a { fephp_php_ini_file off; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_php_ini_file" directive is not allowed here
