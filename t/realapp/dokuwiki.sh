#!/usr/bin/env bash
# End-to-end test with a real application: Debian's DokuWiki (flat files, no database) served
# by one nginx in three modes, one server (port) each:
#   embedded  fephp_pass embedded
#   fephp     fephp_pass unix:<php-fpm socket>
#   fastcgi   plain nginx fastcgi_pass unix:<same php-fpm socket> (the reference)
# Each mode gets its own COPY of DokuWiki's conf (/etc/dokuwiki) and data (/var/lib/dokuwiki/data)
# in a temp dir; the machine's wiki is only read. The code stays in /usr/share/dokuwiki; a PHP
# auto_prepend_file defines DOKU_MAIN_CONF / DOKU_CONF (Debian's inc/preload.php only sets them
# when undefined) from a WIKI_BASE param, and each copy's local.php points savedir at its data.
#
# Per mode, with a cookie jar and redirects followed by hand:
#   1. GET /            → 200, <title> with the wiki title (index doku.php)
#   2. login round-trip → GET ?do=login, take sectok, POST u/p of a user added to the copy's
#                         users.auth.php, follow the redirect, see the logout link
#   3. edit + save      → GET ?do=edit, take sectok/changecheck/date, POST do[save] with a new
#                         text, follow the redirect, GET the page and see the text; the page file
#                         exists in that mode's data copy
# The three result lines must be identical. As root, nginx runs `user www-data;` (master process
# on) and the php-fpm pool runs as www-data, Debian's defaults, so PHP writes the copies as
# www-data in both backends; otherwise everything runs as the current user (the `user`
# directive and FPM's user= need root). Needs TEST_NGINX_BINARY and TEST_NGINX_LOAD_MODULES
# (t/run.sh exports them), curl, php-fpm8.2 and the dokuwiki package.
set -euo pipefail

wiki=/usr/share/dokuwiki
if [ ! -f "$wiki/doku.php" ]; then
    echo "dokuwiki.sh: $wiki/doku.php missing (apt-get install dokuwiki)" >&2
    exit 1
fi
nginx=${TEST_NGINX_BINARY:?}
module=${TEST_NGINX_LOAD_MODULES:?}
fpm_bin=${PHP_FPM:-$(command -v php-fpm8.2 || command -v php-fpm)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fephp-dokuwiki.XXXXXX")
chmod 0755 "$tmp"
nginx_pid= fpm_pid=
cleanup() {
    for pid in $nginx_pid $fpm_pid; do
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_TMP:-}" = 1 ]; then echo "dokuwiki.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM

fail() {
    echo "dokuwiki.sh: FAIL: $*" >&2
    echo "--- nginx error.log (tail)" >&2; tail -20 "$tmp/logs/error.log" >&2 2>/dev/null || true
    echo "--- php-fpm log (tail)" >&2; tail -20 "$tmp/php-fpm.log" >&2 2>/dev/null || true
    exit 1
}

free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport'; }

modes=(embedded fephp fastcgi)
hash=$(php -r 'echo password_hash("s3cret-pass", PASSWORD_BCRYPT);')
mkdir -p "$tmp/logs" "$tmp/tmp" "$tmp/sessions"
for m in "${modes[@]}"; do
    mkdir -p "$tmp/$m"
    cp -rL /etc/dokuwiki "$tmp/$m/conf"
    cp -r /var/lib/dokuwiki/data "$tmp/$m/data"
    cat >>"$tmp/$m/conf/local.php" <<PHP

// fe-php real-app test ($m): this copy's data, no network lookups.
\$conf['savedir'] = '$tmp/$m/data';
\$conf['title'] = 'fe-php wiki';
\$conf['dnslookups'] = 0;
\$conf['updatecheck'] = 0;
PHP
    echo "tester:$hash:Test User:tester@example.invalid:user" >>"$tmp/$m/conf/users.auth.php"
done
cat >"$tmp/prepend.php" <<'PHP'
<?php
// Points DokuWiki at this test's copy of conf/ (per mode, from the WIKI_BASE param).
if (!empty($_SERVER['WIKI_BASE'])) {
    define('DOKU_MAIN_CONF', $_SERVER['WIKI_BASE'] . '/conf/');
    define('DOKU_CONF', $_SERVER['WIKI_BASE'] . '/conf/');
}
PHP

# php-fpm for the fephp and fastcgi modes (its own instance: the prepend is an admin value).
user_lines=""
if [ "$(id -u)" = 0 ]; then
    chown -R www-data:www-data "$tmp/sessions" "${modes[@]/#/$tmp/}"
    user_lines=$'user = www-data\ngroup = www-data\nlisten.owner = www-data\nlisten.group = www-data'
fi
cat >"$tmp/php-fpm.conf" <<CONF
[global]
pid = $tmp/php-fpm.pid
error_log = $tmp/php-fpm.log
daemonize = no

[dokuwiki]
$user_lines
listen = $tmp/php-fpm.sock
listen.mode = 0660
pm = static
pm.max_children = 2
catch_workers_output = yes
php_admin_value[auto_prepend_file] = $tmp/prepend.php
php_admin_value[session.save_path] = $tmp/sessions
CONF
"$fpm_bin" -F -y "$tmp/php-fpm.conf" >"$tmp/php-fpm.out" 2>&1 &
fpm_pid=$!
for _ in $(seq 100); do [ -S "$tmp/php-fpm.sock" ] && break; sleep 0.1; done
[ -S "$tmp/php-fpm.sock" ] || fail "php-fpm did not start: $(cat "$tmp/php-fpm.out")"

declare -A port
for m in "${modes[@]}"; do port[$m]=$(free_port); done

server() { # mode, php location body
    cat <<CONF
    server {
        listen 127.0.0.1:${port[$1]};
        server_name localhost;
        root $wiki;
        index doku.php;
        location ~ ^/(data|conf|bin|inc|vendor|install\.php) { deny all; }
        location ~ \.php$ {
$2
        }
    }
CONF
}
{
    echo "load_module $module;"
    if [ "$(id -u)" = 0 ]; then
        echo "daemon off; master_process on; user www-data www-data; worker_processes 1;"
    else
        echo "daemon off; master_process off; worker_processes 1;"
    fi
    echo "error_log $tmp/logs/error.log info; pid $tmp/logs/nginx.pid;"
    echo "events { worker_connections 256; }"
    echo "http {"
    echo "    access_log $tmp/logs/access.log; default_type text/plain;"
    for d in client_body proxy fastcgi uwsgi scgi; do echo "    ${d}_temp_path $tmp/tmp/$d;"; done
    echo "    fephp_php_ini auto_prepend_file $tmp/prepend.php;"
    echo "    fephp_php_ini session.save_path $tmp/sessions;"
    server embedded "            fephp_param WIKI_BASE $tmp/embedded;
            fephp_pass embedded;"
    server fephp "            fephp_param WIKI_BASE $tmp/fephp;
            fephp_pass unix:$tmp/php-fpm.sock;"
    server fastcgi "            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param SCRIPT_NAME \$fastcgi_script_name;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param REQUEST_URI \$request_uri;
            fastcgi_param DOCUMENT_URI \$document_uri;
            fastcgi_param DOCUMENT_ROOT \$document_root;
            fastcgi_param SERVER_PROTOCOL \$server_protocol;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param REMOTE_ADDR \$remote_addr;
            fastcgi_param REMOTE_PORT \$remote_port;
            fastcgi_param SERVER_ADDR \$server_addr;
            fastcgi_param SERVER_PORT \$server_port;
            fastcgi_param SERVER_NAME \$server_name;
            fastcgi_param REDIRECT_STATUS 200;
            fastcgi_param WIKI_BASE $tmp/fastcgi;
            fastcgi_pass unix:$tmp/php-fpm.sock;"
    echo "}"
} >"$tmp/nginx.conf"
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" -t -q >"$tmp/nginx-t.out" 2>&1 || fail "nginx -t: $(cat "$tmp/nginx-t.out")"
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:${port[fastcgi]}/lib/index.html" && break
    kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited: $(cat "$tmp/nginx.out")"
    sleep 0.1
done

# http MODE METHOD PATH [curl args...]: sets $status, $location; body in $tmp/$MODE.body.
http() {
    local m=$1 method=$2 path=$3
    shift 3
    status=$(curl -sS -X "$method" -o "$tmp/$m.body" -D "$tmp/$m.head" -b "$tmp/$m.jar" -c "$tmp/$m.jar" \
        -w '%{http_code}' "$@" "http://127.0.0.1:${port[$m]}$path") || fail "$m: curl $method $path"
    location=$(tr -d '\r' <"$tmp/$m.head" | sed -n 's/^[Ll]ocation: //p' | tail -1)
}
# follow MODE: GETs Location while the status is a redirect (at most 5 hops).
follow() {
    local m=$1 hops=0
    while [[ $status =~ ^30[1237]$ ]] && [ $hops -lt 5 ]; do
        [ -n "$location" ] || fail "$m: redirect $status without Location"
        location=${location#http://*/}
        location=/${location#/}
        http "$m" GET "$location"
        hops=$((hops + 1))
    done
}
field() { # MODE FORM-ID NAME: value of the input NAME inside the form FORM-ID of the last body
    perl -0ne 'if (/<form[^>]*id="\Q'"$2"'\E".*?<\/form>/s) { my $f = $&; print $1 if $f =~ /<input[^>]*name="\Q'"$3"'\E"[^>]*value="([^"]*)"/ }' "$tmp/$1.body"
}

declare -A result
for m in "${modes[@]}"; do
    # 1. home page
    http "$m" GET /
    home=$status
    title=$(perl -0ne 'print $1 if m{<title>([^<]*)</title>}' "$tmp/$m.body")
    [[ $title == *"fe-php wiki"* ]] && title_ok=ok || title_ok="bad($title)"

    # 2. login round-trip
    http "$m" GET "/doku.php?id=start&do=login"
    grep -q 'id="dw__login"' "$tmp/$m.body" || fail "$m: no login form"
    sectok=$(field "$m" dw__login sectok)   # empty while anonymous (DokuWiki checks it once logged in)
    http "$m" POST /doku.php --data-urlencode "id=start" --data-urlencode "do=login" \
        --data-urlencode "sectok=$sectok" --data-urlencode "u=tester" --data-urlencode "p=s3cret-pass"
    login_status=$status
    follow "$m"
    if grep -q 'do=logout' "$tmp/$m.body" && grep -q 'Test User' "$tmp/$m.body"; then login=ok; else login=bad; fi

    # 3. edit + save, then show
    text="Saved through $m at $$: fe-php real-app test."
    http "$m" GET "/doku.php?id=playground:fephp&do=edit"
    sectok=$(field "$m" dw__editform sectok) changecheck=$(field "$m" dw__editform changecheck)
    date=$(field "$m" dw__editform date)
    [ -n "$sectok" ] && [ -n "$changecheck" ] || fail "$m: no edit form (sectok=$sectok changecheck=$changecheck)"
    http "$m" POST /doku.php --data-urlencode "id=playground:fephp" --data-urlencode "sectok=$sectok" \
        --data-urlencode "changecheck=$changecheck" --data-urlencode "date=$date" \
        --data-urlencode "prefix=." --data-urlencode "suffix=" --data-urlencode "summary=test" \
        --data-urlencode "wikitext=$text" --data-urlencode "do[save]=Save"
    save_status=$status
    follow "$m"
    http "$m" GET "/doku.php?id=playground:fephp"
    show=$status
    grep -qF "$text" "$tmp/$m.body" && shown=ok || shown=bad
    grep -qF "$text" "$tmp/$m/data/pages/playground/fephp.txt" 2>/dev/null && stored=ok || stored=bad

    result[$m]="home=$home title=$title_ok login=$login_status→$login save=$save_status show=$show text=$shown file=$stored"
    printf '%-9s %s\n' "$m" "${result[$m]}"
done

for m in "${modes[@]}"; do
    [ "${result[$m]}" = "${result[fastcgi]}" ] || fail "$m differs from fastcgi"
done
case "${result[fastcgi]}" in
    "home=200 title=ok login="*"→ok save="*" show=200 text=ok file=ok") ;;
    *) fail "unexpected result: ${result[fastcgi]}" ;;
esac
grep -q '\[alert\]\|\[emerg\]' "$tmp/logs/error.log" && fail "alert/emerg in nginx error.log"
echo "dokuwiki.sh: ok (embedded, fephp_pass to php-fpm and fastcgi_pass agree)"
