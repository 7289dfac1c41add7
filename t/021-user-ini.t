# .user.ini files in embedded PHP, as php-fpm reads them: from the document root down to the
# script's directory, PERDIR/USER settings only (PHP_INI_SYSTEM ones and fephp_php_admin_value
# stay), user_ini.filename and user_ini.cache_ttl honoured. The parity with php-fpm is
# tests/parity.rs (tests/parity/userini/).
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: the root's and the sub directory's files apply, nearest last; SYSTEM settings and admin values stay
--- config
    location ~ \.php$ {
        root html;
        fephp_php_admin_value max_input_vars 123;
        fephp_pass embedded;
    }
--- user_files
>>> .user.ini
memory_limit = 77M
precision = 6
>>> sub/.user.ini
precision = 7
allow_url_fopen = Off
max_input_vars = 5
>>> sub/show.php
<?php echo ini_get('memory_limit'), ' ', ini_get('precision'), ' ', ini_get('allow_url_fopen'), ' ', ini_get('max_input_vars'), "\n";
>>> top.php
<?php echo ini_get('memory_limit'), ' ', ini_get('precision'), "\n";
--- request eval
["GET /sub/show.php", "GET /top.php"]
--- response_body eval
["77M 7 1 123\n", "77M 6\n"]
--- no_error_log
[error]



=== TEST 2: user_ini.filename names the file (and .user.ini is then ignored)
--- http_config
    fephp_php_ini user_ini.filename .phprc;
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> .user.ini
precision = 3
>>> .phprc
precision = 9
>>> show.php
<?php echo ini_get('precision'), "\n";
--- request
GET /show.php
--- response_body
9
--- no_error_log
[error]



=== TEST 3: user_ini.cache_ttl: a changed file is not read again before the TTL (default 300 s)
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> .user.ini
precision = 6
>>> show.php
<?php echo ini_get('precision'), "\n";
>>> change.php
<?php file_put_contents(__DIR__ . '/.user.ini', "precision = 8\n"); echo "changed\n";
--- request eval
["GET /show.php", "GET /change.php", "GET /show.php"]
--- response_body eval
["6\n", "changed\n", "6\n"]
--- no_error_log
[error]



=== TEST 4: an empty user_ini.filename: no .user.ini at all
--- http_config
    fephp_php_ini user_ini.filename "";
--- config
    location ~ \.php$ {
        root html;
        fephp_pass embedded;
    }
--- user_files
>>> .user.ini
precision = 3
>>> show.php
<?php echo ini_get('precision'), "\n";
--- request
GET /show.php
--- response_body
14
--- no_error_log
[error]
