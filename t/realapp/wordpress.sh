#!/usr/bin/env bash
# End-to-end test with a real application: Debian's WordPress (package `wordpress`, with the
# theme Debian recommends, wordpress-theme-twentytwentythree) on a private MariaDB, served by
# one nginx in three modes (see lib.sh): plain fastcgi_pass to php-fpm (the oracle), fephp_pass
# to the same php-fpm, fephp_pass embedded. nginx runs `user www-data;` and the FPM pool runs
# as www-data when the test runs as root.
#
# Debian's layout: the code stays in /usr/share/wordpress, the content in
# /var/lib/wordpress/wp-content; the document root ($tmp/www) holds one symlink per entry of
# /usr/share/wordpress, and wp-content -> /var/lib/wordpress/wp-content (what Debian's Apache
# aliases do). Debian's wp-config.php reads /etc/wordpress/config-$WORDPRESS_CONFIG.php; each
# mode's server sets the WORDPRESS_CONFIG param to its own name. Those config files are
# written into a private copy of /etc/wordpress bind-mounted over it in a mount namespace of
# this test only (unshare -m): the machine's /etc/wordpress is never written. Without root
# (no unshare) the test is skipped.
#
# MariaDB: mariadb-install-db into $tmp/db, mariadbd on $tmp/dbrun/mysql.sock (no TCP) started and
# stopped by the test, one database per mode (wp_fastcgi, wp_fephp, wp_embedded).
# These install steps (MariaDB, configs, docroot, the installer's form) are install.sh's,
# shared with benches/compare.sh's WordPress workloads.
#
# Per mode, with a cookie jar (and a second, anonymous one):
#   install       GET wp-admin/install.php, POST ?step=2 (title, admin, password, e-mail)
#   login         GET wp-login.php (test cookie), POST log/pwd -> 302 to wp-admin/, GET it
#   permalinks    GET wp-admin/options-permalink.php, POST /%postname%/ with its _wpnonce
#   front         GET /            (anonymous)
#   post          GET /hello-world/ (anonymous; the post the installer creates)
#   posts_json    GET /wp-json/wp/v2/posts (anonymous; through try_files -> /index.php)
#   create        GET admin-ajax.php?action=rest-nonce, POST /wp-json/wp/v2/posts (JSON,
#                 X-WP-Nonce) -> 201
#   readback      GET /wp-json/wp/v2/posts/ID and /fe-php-post/ (anonymous)
# Each response, normalised, must equal the oracle's. Removed before comparing (volatile):
#   - the port of each mode's server (in URLs and anywhere else it appears)
#   - nonces: _wpnonce / X-WP-Nonce values, "nonce" in JSON and in inline JS
#     (wpApiSettings, heartbeat, ...), the rest-nonce answer
#   - dates: ISO dates in JSON ("date", "date_gmt", "modified", "modified_gmt") and in
#     <time datetime=...>, and the post dates shown on pages ("December 2, 2026")
#   - the password the install form suggests (data-pw="...", random)
# Seen on the way (the same pages result, so the comparison does not show it): the installer
# probes pretty permalinks with two loopback requests to its own site (5 s timeout each). In
# embedded mode, when such a request lands on the nginx worker whose one PHP thread runs the
# installer, it waits behind it until the installer gives up (two 499s in access.log, 10 s);
# pretty permalinks are then set through the admin form in every mode anyway.
# Needs: wordpress, wordpress-theme-twentytwentythree, mariadb-server, php8.2-fpm with
# php8.2-mysql, curl; root (for unshare and the www-data identity).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck source=t/realapp/install.sh
source "$here/install.sh"
[ -f "$ri_wp/wp-settings.php" ] || { echo "wordpress.sh: $ri_wp missing (apt-get install wordpress)" >&2; exit 1; }
if [ -z "${FEPHP_WP_NS:-}" ]; then
    if ! ri_can_unshare; then
        echo "wordpress.sh: SKIP: needs root and unshare -m (a private /etc/wordpress for the test's configs)" >&2
        exit 0
    fi
    # Run again inside a private mount namespace (mounts made here vanish with the test).
    FEPHP_WP_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi

# shellcheck source=t/realapp/lib.sh
source "$here/lib.sh"
ra_setup wordpress

db_pass='wp-db-pass-1' admin_pass='fephp-Admin-pass-1'

# --- MariaDB (private instance), one database per mode
ri_mariadb_start "$tmp" || ra_fail "MariaDB"
ra_cleanups+=(ri_mariadb_stop)
ri_wp_databases "$db_pass" "${ra_modes[@]/#/wp_}" || ra_fail "creating the databases"

# --- /etc/wordpress: a private copy with one config per mode, mounted over the real one
ri_wp_etc "$tmp/etc-wordpress" || ra_fail "private /etc/wordpress"
for m in "${ra_modes[@]}"; do
    ri_wp_config "$tmp/etc-wordpress" "fephp-$m" "wp_$m" "$db_pass" "$ri_db_sock"
    ra_param "$m" WORDPRESS_CONFIG "fephp-$m"
done

# --- document root: Debian's layout, symlinked
ri_wp_docroot "$tmp/www"

ra_start_fpm
ra_start_nginx "$tmp/www" '
        index index.php;
        location / { try_files $uri $uri/ /index.php?$args; }
        location ~ \.php$ {
@PHP@
        }'

ra_normalize() {
    perl -pe '
        s/(_wpnonce(?:=|&#038;|%3D|\\u0026)?|_wpnonce" value="|"nonce":"|nonce=|X-WP-Nonce: )[0-9a-f]{10}\b/${1}NONCE/g;
        s/(name="_wpnonce" value=")[0-9a-f]{10}/${1}NONCE/g;
        s/^[0-9a-f]{10}$/NONCE/;                                     # the rest-nonce answer
        s/(data-pw=")[^"]*/${1}PASSWORD/g;
        s/("(?:date|date_gmt|modified|modified_gmt)":)"[0-9T:-]+"/$1"DATE"/g;
        s/(datetime=")[0-9T:+-]+/${1}DATE/g;
        s/\b(?:January|February|March|April|May|June|July|August|September|October|November|December) \d{1,2}, \d{4}\b/DATE/g;
    '
}

o=$tmp/fastcgi
for m in "${ra_modes[@]}"; do
    # install
    ra_http "$m" install_form GET /wp-admin/install.php
    ra_keep "$m" install_form
    ri_wp_form 'fe-php blog' "$admin_pass"
    ra_http "$m" install POST '/wp-admin/install.php?step=2' "${ri_wp_form[@]}"
    ra_keep "$m" install

    # login
    ra_http "$m" login_form GET /wp-login.php
    ra_keep "$m" login_form
    ra_http "$m" login POST /wp-login.php --data-urlencode log=admin --data-urlencode "pwd=$admin_pass" \
        --data-urlencode 'wp-submit=Log In' --data-urlencode testcookie=1 \
        --data-urlencode "redirect_to=http://127.0.0.1:${port[$m]}/wp-admin/"
    ra_note "$m" "login: $status ${location//${port[$m]}/PORT}"
    ra_http "$m" dashboard GET /wp-admin/
    grep -q 'Dashboard' "$tmp/$m/dashboard.body" && ra_note "$m" "dashboard: $status logged in" ||
        ra_note "$m" "dashboard: $status NOT logged in"

    # pretty permalinks through the admin form
    ra_http "$m" permalink_form GET /wp-admin/options-permalink.php
    nonce=$(perl -ne 'print $1 if /name="_wpnonce" value="([0-9a-f]+)"/' "$tmp/$m/permalink_form.body" | head -c 10)
    ra_http "$m" permalinks POST /wp-admin/options-permalink.php --data-urlencode "_wpnonce=$nonce" \
        --data-urlencode _wp_http_referer=/wp-admin/options-permalink.php \
        --data-urlencode 'selection=/%postname%/' --data-urlencode 'permalink_structure=/%postname%/' \
        --data-urlencode category_base= --data-urlencode tag_base= --data-urlencode 'submit=Save Changes'
    ra_note "$m" "permalinks: $status ${location//${port[$m]}/PORT}"
    ra_http "$m" permalink_saved GET /wp-admin/options-permalink.php
    perl -0ne 'print "permalink_structure: $1\n" if /id="permalink_structure"[^>]*value="([^"]*)"/' \
        "$tmp/$m/permalink_saved.body" >>"$tmp/$m/out/summary"

    # anonymous pages
    ra_jar=anon ra_http "$m" front GET /
    ra_keep "$m" front
    ra_jar=anon ra_http "$m" post GET /hello-world/
    ra_keep "$m" post
    ra_jar=anon ra_http "$m" posts_json GET /wp-json/wp/v2/posts
    ra_keep "$m" posts_json

    # a post created through the REST API, with the logged-in user's nonce
    ra_http "$m" rest_nonce GET '/wp-admin/admin-ajax.php?action=rest-nonce'
    nonce=$(cat "$tmp/$m/rest_nonce.body")
    ra_keep "$m" rest_nonce
    ra_http "$m" create POST /wp-json/wp/v2/posts -H "X-WP-Nonce: $nonce" -H 'Content-Type: application/json' \
        --data-binary '{"title":"fe-php post","slug":"fe-php-post","status":"publish","content":"<p>Created through the REST API by the fe-php real-app test.</p>"}'
    ra_keep "$m" create
    id=$(php -r 'echo json_decode(file_get_contents($argv[1]))->id ?? "none";' "$tmp/$m/create.body")
    ra_jar=anon ra_http "$m" readback_json GET "/wp-json/wp/v2/posts/$id"
    ra_keep "$m" readback_json
    ra_jar=anon ra_http "$m" readback GET /fe-php-post/
    ra_keep "$m" readback
done

# The oracle itself must have done the job.
grep -q 'Success!' "$o/install.body" || ra_fail "fastcgi: install failed: $(head -c 300 "$o/install.body")"
grep -q 'dashboard: 200 logged in' "$o/out/summary" || ra_fail "fastcgi: login failed"
grep -q 'permalink_structure: /%postname%/' "$o/out/summary" || ra_fail "fastcgi: permalinks not saved"
grep -q 'Hello world!' "$o/post.body" || ra_fail "fastcgi: /hello-world/ is not the post"
grep -q '"slug":"hello-world"' "$o/posts_json.body" || ra_fail "fastcgi: wp-json lacks the post"
grep -q '"slug":"fe-php-post"' "$o/create.body" || ra_fail "fastcgi: REST create failed: $(head -c 300 "$o/create.body")"
grep -q 'Created through the REST API' "$o/readback.body" || ra_fail "fastcgi: the new post is not shown"
ra_compare
echo "wordpress.sh: ok (fastcgi_pass, fephp_pass to php-fpm and embedded agree on $(ls "$o/out" | grep -vc summary) responses)"
