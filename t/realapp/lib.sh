# Shared by t/realapp/wordpress.sh and t/realapp/mediawiki.sh (sourced, not run): one nginx
# serving an application in three modes, one server (port) each, and the comparison of their
# pages against the oracle.
#
#   fastcgi   plain nginx fastcgi_pass unix:<php-fpm> with Debian's PHP snippet
#             (snippets/fastcgi-php.conf: fastcgi_split_path_info, try_files
#             $fastcgi_script_name =404, PATH_INFO, include fastcgi.conf) -- the oracle
#   fephp     fephp_pass unix:<the same php-fpm>
#   embedded  fephp_pass embedded
#
# Identity (issue 10, item 4): as root, nginx runs `user www-data;` (master process on) and the
# php-fpm pool runs as www-data, the Debian defaults, so embedded PHP (in the nginx workers)
# and FPM PHP both run as www-data and every file the application writes must be writable by
# www-data (ra_own gives a path to it). As another user, both run as that user (the `user`
# directive and FPM's user= need root); nothing else changes.
#
# Usage in a script:
#   source lib.sh; ra_setup NAME
#   ra_ini NAME VALUE...        PHP ini for both backends (php_admin_value / fephp_php_ini)
#   ra_start_fpm                php-fpm (Debian's pool settings) on $tmp/php-fpm.sock
#   ra_param MODE NAME VALUE    an extra CGI param of MODE's PHP location
#   ra_start_nginx ROOT BODY    BODY: the server's locations; @PHP@ in it becomes MODE's PHP
#                               handler (pass + params); port[MODE] is chosen by ra_setup
#   ra_http MODE NAME METHOD PATH [curl args]   request with MODE's cookie jar (ra_jar=NAME
#                               for another one); sets $status,
#                               $location; body in $tmp/MODE/NAME.body
#   ra_keep MODE NAME           normalises NAME.body (ra_normalize, the app's function) into
#                               $tmp/MODE/out/NAME; ra_note MODE LINE adds to out/summary
#   ra_compare                  every mode's out/ must equal fastcgi's (diff shown otherwise)
# server_name is 127.0.0.1, the name the clients use (Host: 127.0.0.1:PORT), as a production
# server's name is the one its clients ask for. RA_SERVER_NAME=localhost shows issue 10 item 5
# (fephp's SERVER_NAME is the Host, fastcgi_params' is $server_name): WordPress then drops
# <link rel='dns-prefetch' href='//127.0.0.1'> in the fephp modes only.
# RA_ALL_FASTCGI=1 serves every mode through fastcgi_pass (checks the normalisation itself);
# KEEP_TMP=1 keeps the temp dir.
# Needs TEST_NGINX_BINARY and TEST_NGINX_LOAD_MODULES (t/run.sh exports them), curl, php-fpm8.2.

ra_modes=(fastcgi fephp embedded)

ra_setup() {
    ra_app=$1
    ra_nginx=${TEST_NGINX_BINARY:?run through t/run.sh or set TEST_NGINX_BINARY}
    ra_module=${TEST_NGINX_LOAD_MODULES:?run through t/run.sh or set TEST_NGINX_LOAD_MODULES}
    # nginx's conf dir: next to the binary (our build), else Debian's /etc/nginx
    if [ -d "$(dirname "$ra_nginx")/../conf" ]; then
        ra_conf_dir=$(cd "$(dirname "$ra_nginx")/../conf" && pwd)
    else
        ra_conf_dir=/etc/nginx
    fi
    [ -f "$ra_conf_dir/fastcgi.conf" ] || { echo "$ra_app: $ra_conf_dir/fastcgi.conf missing (scripts/build-nginx.sh)" >&2; exit 1; }
    ra_fpm_bin=${PHP_FPM:-$(command -v php-fpm8.2 || command -v php-fpm)}
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/fephp-$ra_app.XXXXXX")
    chmod 0755 "$tmp"
    mkdir -p "$tmp/logs" "$tmp/tmp"
    if [ "$(id -u)" = 0 ]; then
        ra_user=www-data ra_group=www-data
    else
        # not root: nginx cannot switch users and FPM ignores user=; all runs as us
        ra_user=$(id -un) ra_group=$(id -gn)
    fi
    ra_ini_names=() ra_ini_values=() ra_pids=() ra_cleanups=()
    declare -gA port ra_params
    for m in "${ra_modes[@]}"; do
        mkdir -p "$tmp/$m/out"
        ra_params[$m]=""
        port[$m]=$(ra_free_port)
    done
    trap ra_cleanup EXIT INT TERM
}

ra_cleanup() {
    local pid
    for pid in "${ra_pids[@]}"; do
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    local c
    for c in "${ra_cleanups[@]}"; do eval "$c" || true; done
    if [ "${KEEP_TMP:-}" = 1 ]; then echo "$ra_app: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

ra_fail() {
    echo "$ra_app: FAIL: $*" >&2
    echo "--- nginx error.log (tail, no debug)" >&2
    grep -v '\[debug\]' "$tmp/logs/error.log" 2>/dev/null | tail -20 >&2 || true
    echo "--- php-fpm log (tail)" >&2; tail -20 "$tmp/php-fpm.log" >&2 2>/dev/null || true
    exit 1
}

ra_free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport'; }

# ra_own PATH...: the PHP user may write there (recursively).
ra_own() { chown -R "$ra_user:$ra_group" "$@"; }

ra_ini() { ra_ini_names+=("$1"); ra_ini_values+=("$2"); }

ra_param() { ra_params[$1]+="$2 $3"$'\n'; }

ra_start_fpm() {
    local i user_lines=""
    [ "$(id -u)" = 0 ] && user_lines="user = $ra_user"$'\n'"group = $ra_group"$'\n'"listen.owner = $ra_user"$'\n'"listen.group = $ra_group"
    {
        echo "[global]"
        echo "pid = $tmp/php-fpm.pid"
        echo "error_log = $tmp/php-fpm.log"
        echo "daemonize = no"
        echo "[$ra_app]"
        echo "$user_lines"
        echo "listen = $tmp/php-fpm.sock"
        echo "listen.mode = 0660"
        # Debian's www.conf process settings. Mind that each connection fephp keeps alive
        # holds a child while idle: with 2 children, one kept-alive connection left WordPress's
        # install with no child for its loopback request (a 5 s stall, in the oracle too).
        echo "pm = dynamic"
        echo "pm.max_children = 5"
        echo "pm.start_servers = 2"
        echo "pm.min_spare_servers = 1"
        echo "pm.max_spare_servers = 3"
        echo "catch_workers_output = yes"
        for i in "${!ra_ini_names[@]}"; do
            echo "php_admin_value[${ra_ini_names[$i]}] = ${ra_ini_values[$i]}"
        done
    } >"$tmp/php-fpm.conf"
    "$ra_fpm_bin" -F -y "$tmp/php-fpm.conf" >"$tmp/php-fpm.out" 2>&1 &
    ra_pids+=($!)
    for _ in $(seq 100); do [ -S "$tmp/php-fpm.sock" ] && break; sleep 0.1; done
    [ -S "$tmp/php-fpm.sock" ] || ra_fail "php-fpm did not start: $(cat "$tmp/php-fpm.out")"
}

# The PHP handler of MODE's server: the pass directive and the mode's params.
ra_php() {
    local m=$1 name value backend=$1
    # RA_ALL_FASTCGI=1: every mode through the oracle, which checks that the normalisation
    # removes everything that differs between two independent installs
    [ "${RA_ALL_FASTCGI:-}" = 1 ] && backend=fastcgi
    case $backend in
        fastcgi)
            # Debian's /etc/nginx/snippets/fastcgi-php.conf, then the pass
            echo "fastcgi_split_path_info ^(.+?\.php)(/.*)\$;"
            echo "try_files \$fastcgi_script_name =404;"
            echo "set \$path_info \$fastcgi_path_info;"
            echo "fastcgi_param PATH_INFO \$path_info;"
            echo "fastcgi_index index.php;"
            echo "include $ra_conf_dir/fastcgi.conf;"
            echo "fastcgi_pass unix:$tmp/php-fpm.sock;" ;;
        fephp) echo "fephp_pass unix:$tmp/php-fpm.sock;" ;;
        embedded) echo "fephp_pass embedded;" ;;
    esac
    while read -r name value; do
        [ -n "$name" ] || continue
        if [ "$backend" = fastcgi ]; then echo "fastcgi_param $name $value;"; else echo "fephp_param $name $value;"; fi
    done <<<"${ra_params[$m]}"
}

# ra_start_nginx ROOT BODY: one server per mode (root ROOT, BODY with @PHP@ replaced).
ra_start_nginx() {
    local root=$1 body=$2 m i php
    {
        echo "load_module $ra_module;"
        echo "daemon off;"
        if [ "$(id -u)" = 0 ]; then
            echo "master_process on; user $ra_user $ra_group;"
        else
            echo "master_process off;"
        fi
        echo "worker_processes 2;"
        echo "error_log $tmp/logs/error.log info; pid $tmp/logs/nginx.pid;"
        echo "events { worker_connections 256; }"
        echo "http {"
        echo "    include $ra_conf_dir/mime.types; default_type application/octet-stream;"
        echo "    access_log $tmp/logs/access.log;"
        for d in client_body proxy fastcgi uwsgi scgi; do echo "    ${d}_temp_path $tmp/tmp/$d;"; done
        for i in "${!ra_ini_names[@]}"; do
            echo "    fephp_php_ini ${ra_ini_names[$i]} ${ra_ini_values[$i]};"
        done
        for m in "${ra_modes[@]}"; do
            php=$(ra_php "$m" | sed 's/^/            /')
            echo "    server {"
            echo "        listen 127.0.0.1:${port[$m]};"
            echo "        server_name ${RA_SERVER_NAME:-127.0.0.1};"
            echo "        root $root;"
            echo "        disable_symlinks off;   # nginx's default, Debian's layout needs it"
            echo "        client_max_body_size 32m;"
            PHP=$php perl -pe 's/^.*\@PHP\@.*$/$ENV{PHP}/' <<<"$body"
            echo "    }"
        done
        echo "}"
    } >"$tmp/nginx.conf"
    "$ra_nginx" -p "$tmp" -c "$tmp/nginx.conf" -t -q >"$tmp/nginx-t.out" 2>&1 || ra_fail "nginx -t: $(cat "$tmp/nginx-t.out")"
    "$ra_nginx" -p "$tmp" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
    ra_pids+=($!)
    for m in "${ra_modes[@]}"; do
        for i in $(seq 100); do
            curl -s -o /dev/null "http://127.0.0.1:${port[$m]}/" && break
            kill -0 "${ra_pids[-1]}" 2>/dev/null || ra_fail "nginx exited: $(cat "$tmp/nginx.out")"
            [ "$i" = 100 ] && ra_fail "nginx does not answer on port ${port[$m]} ($m)"
            sleep 0.1
        done
    done
}

# ra_http MODE NAME METHOD PATH [curl args...]
ra_http() {
    local m=$1 name=$2 method=$3 path=$4
    shift 4
    status=$(curl -sS -X "$method" -o "$tmp/$m/$name.body" -D "$tmp/$m/$name.head" \
        -b "$tmp/$m/${ra_jar:-cookies}" -c "$tmp/$m/${ra_jar:-cookies}" -w '%{http_code}' --max-time 60 \
        "$@" "http://127.0.0.1:${port[$m]}$path") || ra_fail "$m: curl $method $path"
    location=$(tr -d '\r' <"$tmp/$m/$name.head" | sed -n 's/^[Ll]ocation: //p' | tail -1)
}

ra_note() { echo "$2" >>"$tmp/$1/out/summary"; }

# ra_keep MODE NAME: NAME.body, normalised by the app's ra_normalize (stdin -> stdout), with
# this mode's port replaced by PORT first; the status, Content-Type and Location go to
# out/summary (compared too).
ra_keep() {
    local m=$1 name=$2 ctype
    perl -pe 's/(?<!\d)'"${port[$m]}"'(?!\d)/PORT/g' \
        "$tmp/$m/$name.body" | ra_normalize >"$tmp/$m/out/$name"
    ctype=$(tr -d '\r' <"$tmp/$m/$name.head" | sed -n 's/^[Cc]ontent-[Tt]ype: //p' | tail -1)
    ra_note "$m" "$name: $status $ctype${location:+ -> ${location//${port[$m]}/PORT}}"
}

ra_compare() {
    local m bad=0
    for m in "${ra_modes[@]}"; do
        [ "$m" = fastcgi ] && continue
        if ! diff -ru "$tmp/fastcgi/out" "$tmp/$m/out" >"$tmp/$m.diff"; then
            echo "$ra_app: $m differs from fastcgi (first 40 lines of the diff):" >&2
            head -40 "$tmp/$m.diff" >&2
            bad=1
        fi
    done
    [ $bad = 0 ] || ra_fail "pages differ from the fastcgi_pass oracle (KEEP_TMP=1 keeps $tmp)"
    grep -q '\[alert\]\|\[emerg\]' "$tmp/logs/error.log" && ra_fail "alert/emerg in nginx error.log"
    return 0
}
