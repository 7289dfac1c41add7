# Bad arguments of the operations directives (fephp_php_value, fephp_php_admin_value, ...) fail
# at configuration time (nginx -t) with a message naming the directive, as in t/005.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fephp_php_value with an invalid ini name
--- config
    location /a { fephp_php_value memory=limit 64M; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_php_value" directive: invalid ini name "memory=limit"



=== TEST 2: fephp_php_admin_value with a line break in the value
--- config
    location /a { fephp_php_admin_value open_basedir "/srv\n/tmp"; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_php_admin_value" directive: invalid value for "open_basedir": NUL or line break



=== TEST 3: fephp_php_value without a value
--- config
    location /a { fephp_php_value memory_limit; fephp_pass embedded; }
--- must_die
--- error_log
invalid number of arguments in "fephp_php_value" directive



=== TEST 4: the same name twice at one level (value and admin value)
--- config
    location /a { fephp_php_value memory_limit 64M; fephp_php_admin_value memory_limit 32M; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_php_admin_value" directive: "memory_limit" is already set at this level



=== TEST 5: fephp_slowlog_timeout with a bad time
--- http_config
    fephp_slowlog_timeout soon;
--- must_die
--- error_log
"fephp_slowlog_timeout" directive: invalid time "soon"



=== TEST 6: fephp_slowlog with an empty value
--- http_config
    fephp_slowlog "";
--- must_die
--- error_log
"fephp_slowlog" directive: invalid value "" (expected a file or stderr)



=== TEST 7: fephp_slowlog_timeout in a location is not allowed
--- config
    location /a { fephp_slowlog_timeout 1s; fephp_pass embedded; }
--- must_die
--- error_log
"fephp_slowlog_timeout" directive is not allowed here



=== TEST 8: fephp_slowlog twice
--- http_config
    fephp_slowlog stderr;
    fephp_slowlog logs/slow.log;
--- must_die
--- error_log
"fephp_slowlog" directive: is duplicate
