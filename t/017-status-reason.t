# Reason phrases of PHP's status line reach the client as php-fpm sends them (`Status: 299
# Custom`, which nginx's fastcgi module turns into its status line): a custom one from
# header("HTTP/1.1 ..."), PHP's own table for http_response_code(), a script's Status header.
# Each script runs through fastcgi_pass (the reference), fephp_pass to php-fpm and embedded PHP.
use Test::Nginx::Socket;

plan tests => repeat_each() * (blocks() * 4);

no_long_string();

our $Scripts = <<'PHP';
>>> custom.php
<?php header("HTTP/1.1 299 Custom Reason"); echo "custom\n";
>>> table.php
<?php http_response_code(428); echo "table\n";
>>> header.php
<?php header("Status: 451 Not Here"); echo "header\n";
PHP

our %Pass = (
    reference => 'fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name; fastcgi_param REQUEST_METHOD $request_method; fastcgi_pass unix:$TEST_NGINX_FPM_SOCKET;',
    fpm => 'fephp_pass unix:$TEST_NGINX_FPM_SOCKET;',
    embedded => 'fephp_pass embedded;',
);

add_block_preprocessor(sub {
    my $block = shift;
    my ($mode) = $block->name =~ /^TEST \d+: (\w+)/;
    $block->set_value(config => "location ~ \\.php\$ { root html; $Pass{$mode} }");
    $block->set_value(user_files => $Scripts);
});

run_tests();

__DATA__

=== TEST 1: reference: header("HTTP/1.1 299 Custom Reason")
--- request
GET /custom.php
--- error_code: 299
--- raw_response_headers_like: ^HTTP/1\.1 299 Custom Reason\r\n
--- response_body
custom
--- no_error_log
[error]



=== TEST 2: fpm: header("HTTP/1.1 299 Custom Reason")
--- request
GET /custom.php
--- error_code: 299
--- raw_response_headers_like: ^HTTP/1\.1 299 Custom Reason\r\n
--- response_body
custom
--- no_error_log
[error]



=== TEST 3: embedded: header("HTTP/1.1 299 Custom Reason")
--- request
GET /custom.php
--- error_code: 299
--- raw_response_headers_like: ^HTTP/1\.1 299 Custom Reason\r\n
--- response_body
custom
--- no_error_log
[error]



=== TEST 4: reference: http_response_code(428) takes PHP's reason
--- request
GET /table.php
--- error_code: 428
--- raw_response_headers_like: ^HTTP/1\.1 428 Precondition Required\r\n
--- response_body
table
--- no_error_log
[error]



=== TEST 5: fpm: http_response_code(428) takes PHP's reason
--- request
GET /table.php
--- error_code: 428
--- raw_response_headers_like: ^HTTP/1\.1 428 Precondition Required\r\n
--- response_body
table
--- no_error_log
[error]



=== TEST 6: embedded: http_response_code(428) takes PHP's reason
--- request
GET /table.php
--- error_code: 428
--- raw_response_headers_like: ^HTTP/1\.1 428 Precondition Required\r\n
--- response_body
table
--- no_error_log
[error]



=== TEST 7: reference: a Status header with its own reason
--- request
GET /header.php
--- error_code: 451
--- raw_response_headers_like: ^HTTP/1\.1 451 Not Here\r\n
--- response_body
header
--- no_error_log
[error]



=== TEST 8: fpm: a Status header with its own reason
--- request
GET /header.php
--- error_code: 451
--- raw_response_headers_like: ^HTTP/1\.1 451 Not Here\r\n
--- response_body
header
--- no_error_log
[error]



=== TEST 9: embedded: a Status header with its own reason
--- request
GET /header.php
--- error_code: 451
--- raw_response_headers_like: ^HTTP/1\.1 451 Not Here\r\n
--- response_body
header
--- no_error_log
[error]
