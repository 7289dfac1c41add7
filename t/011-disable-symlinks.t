# Script lookups follow the location's disable_symlinks, like nginx's static handler and
# fastcgi_pass: off (nginx's default) follows symlinks even out of the root (Debian's web-app
# layout: a document root holding symlinks into /usr/share/<app> and /var/lib/<app>); on and
# if_not_owner refuse with 403. Traversal and non-PHP targets stay refused whatever the setting.
#
# The symlinks live in a directory made here (the server root is wiped for every block):
#   $TEST_NGINX_SYMLINKS/root/link.php      -> ../outside/secret.php      (outside the root)
#   $TEST_NGINX_SYMLINKS/root/other.php     -> ../outside/secret.php      (the link owned by nobody)
#   $TEST_NGINX_SYMLINKS/root/css.php       -> ../outside/style.css       (not a PHP file)
#   $TEST_NGINX_SYMLINKS/root/mediawiki     -> ../lib (whose index.php -> ../share/index.php)
#   $TEST_NGINX_SYMLINKS/rootlink           -> root
use Test::Nginx::Socket;
use File::Temp qw(tempdir);
use File::Path qw(make_path);

my $dir = tempdir('fephp-symlinks.XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
make_path("$dir/root", "$dir/outside", "$dir/lib", "$dir/share");
sub spew { my ($f, $t) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $t; close $fh }
spew("$dir/root/plain.php", "<?php echo \"plain\\n\";\n");
spew("$dir/outside/secret.php", "<?php echo \"outside the root\\n\";\n");
spew("$dir/outside/style.css", "body {}\n");
spew("$dir/share/index.php", "<?php echo \"wiki \", \$_SERVER['SCRIPT_NAME'], ' ', \$_SERVER['PATH_INFO'] ?? '', \"\\n\";\n");
symlink("../outside/secret.php", "$dir/root/link.php") or die $!;
symlink("../outside/secret.php", "$dir/root/other.php") or die $!;
symlink("../outside/style.css", "$dir/root/css.php") or die $!;
symlink("../share/index.php", "$dir/lib/index.php") or die $!;
symlink("../lib", "$dir/root/mediawiki") or die $!;
symlink("root", "$dir/rootlink") or die $!;
# if_not_owner: a link whose owner differs from its target's (lchown needs root).
my $foreign = $> == 0 && system('chown', '-h', '65534:65534', "$dir/root/other.php") == 0;
$ENV{TEST_NGINX_SYMLINKS} = $dir;

plan skip_all => 'if_not_owner needs root to chown a symlink' unless $foreign;
plan tests => repeat_each() * (blocks() * 3);

no_long_string();
run_tests();

__DATA__

=== TEST 1: disable_symlinks off (the default): a symlink to a script outside the root runs
--- config
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /link.php
--- response_body
outside the root
--- no_error_log
[error]



=== TEST 2: disable_symlinks off: Debian's layout (a symlinked directory whose index.php is itself a symlink), with path info
--- config
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /mediawiki/index.php/Main_Page
--- response_body
wiki /mediawiki/index.php /Main_Page
--- no_error_log
[error]



=== TEST 3: disable_symlinks off, through php-fpm too
--- config
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- request
GET /mediawiki/index.php/Main_Page
--- response_body
wiki /mediawiki/index.php /Main_Page
--- no_error_log
[error]



=== TEST 4: disable_symlinks off: a .php symlink to a non-PHP file stays refused
--- config
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /css.php
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log
fephp: forbidden: /css.php points at a non-PHP file



=== TEST 5: disable_symlinks on: refused with 403, like nginx's static handler
--- config
    disable_symlinks on;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /link.php
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log eval
qr{fephp: forbidden: /link\.php: symlink \S+/root/link\.php refused by disable_symlinks}



=== TEST 6: disable_symlinks on: a symlinked directory is refused too (FPM)
--- config
    disable_symlinks on;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
--- request
GET /mediawiki/index.php
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log eval
qr{symlink \S+/root/mediawiki refused by disable_symlinks}



=== TEST 7: disable_symlinks on: a script without symlinks runs
--- config
    disable_symlinks on;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /plain.php
--- response_body
plain
--- no_error_log
[error]



=== TEST 8: disable_symlinks on with a symlinked root: refused
--- config
    disable_symlinks on;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/rootlink;
        fephp_pass embedded;
    }
--- request
GET /plain.php
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log
refused by disable_symlinks



=== TEST 8b: nginx's static handler refuses a symlinked file alike (403)
--- config
    disable_symlinks on;
    location ^~ /static/ {
        alias $TEST_NGINX_SYMLINKS/root/;
    }
--- request
GET /static/link.php
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log
link.php" failed (40: Too many levels of symbolic links)



=== TEST 9: disable_symlinks on from=$document_root: the root's own symlink is not checked
--- config
    disable_symlinks on from=$document_root;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/rootlink;
        fephp_pass embedded;
    }
--- request
GET /plain.php
--- response_body
plain
--- no_error_log
[error]



=== TEST 10: disable_symlinks on from=$document_root: links below the root are still refused
--- config
    disable_symlinks on from=$document_root;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /link.php
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log
refused by disable_symlinks



=== TEST 11: disable_symlinks if_not_owner: a link owned like its target runs
--- config
    disable_symlinks if_not_owner;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /link.php
--- response_body
outside the root
--- no_error_log
[error]



=== TEST 12: disable_symlinks if_not_owner: a link owned by someone else than its target is refused
--- config
    disable_symlinks if_not_owner;
    location ~ \.php(/|$) {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- request
GET /other.php
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log eval
qr{symlink \S+/root/other\.php refused by disable_symlinks}



=== TEST 13: the policy is per location (and so is the lookup cache): off, on, off again in one worker
--- config
    location ^~ /on/ {
        disable_symlinks on;
        rewrite ^/on(/.*)$ $1 break;
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
    location = /drive.php {
        root html;
        fephp_pass unix:$TEST_NGINX_FPM_SOCKET;
    }
    location ~ \.php$ {
        root $TEST_NGINX_SYMLINKS/root;
        fephp_pass embedded;
    }
--- user_files
>>> drive.php
<?php
// One request to the test, three lookups of the same script inside this nginx worker.
$codes = [];
foreach (['/link.php', '/on/link.php', '/link.php'] as $path) {
    $ctx = stream_context_create(['http' => ['ignore_errors' => true, 'header' => "Connection: close\r\n"]]);
    @file_get_contents('http://127.0.0.1:' . $_SERVER['SERVER_PORT'] . $path, false, $ctx);
    $codes[] = explode(' ', $http_response_header[0] ?? 'none none')[1];
}
echo implode(' ', $codes), "\n";
--- request
GET /drive.php
--- response_body
200 403 200
--- error_log
refused by disable_symlinks
