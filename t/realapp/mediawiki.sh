#!/usr/bin/env bash
# End-to-end test with a real application: Debian's MediaWiki (package `mediawiki`, SQLite),
# in Debian's own layout -- document root /var/lib/mediawiki, whose entries are symlinks into
# /usr/share/mediawiki -- served by one nginx in three modes (see lib.sh): plain fastcgi_pass
# to php-fpm (the oracle), fephp_pass to the same php-fpm, fephp_pass embedded. nginx runs
# `user www-data;` and the FPM pool runs as www-data when the test runs as root.
#
# Each mode is its own wiki: `maintenance/install.php --dbtype sqlite` writes its
# LocalSettings.php and databases into $tmp/MODE (owned by www-data); a PHP auto_prepend_file
# defines MW_CONFIG_FILE from the MW_CONF param of the mode's server (MediaWiki honours it), so
# the machine's /etc/mediawiki and /var/lib/mediawiki are only read. (The install steps are
# install.sh's, shared with benches/compare.sh's MediaWiki workload.)
#
# Per mode, with a cookie jar:
#   main_page     GET /index.php/Main_Page (the article path, through PATH_INFO)
#   login         login token, POST action=clientlogin as the installer's admin -> PASS
#   edit          csrf token, POST action=edit with a new page text -> Success
#   raw           GET index.php?title=Fephp_test&action=raw -> exactly that text
#   page          GET /index.php/Fephp_test, rendered, logged in
# One setting is pinned: $wgUsePathInfo = true (its default is derived from PHP_SAPI, which
# differs between php-fpm, "fpm-fcgi", and embedded PHP, "fe-php": see ri_mw_install in install.sh).
# Each response, normalised, must equal the oracle's. Removed before comparing (volatile):
#   - the port of each mode's server (in URLs and anywhere else it appears)
#   - tokens: login/csrf/patrol/watch tokens ("<hex>+\", in JSON and in the page's JS)
#   - request ids: wgRequestId (random per request)
#   - times: wgBackendResponseTime, timestamps of the edit and the page (newtimestamp,
#     "last edited on ...",
#     wgUserRegistration of the installer's admin, the parser cache comment's timestamp,
#     wgPageParseReport's cputime/walltime/cachereport timestamp/ttl/timingprofile, and in
#     the parser's report comments "Cached time", "Cache expiry", CPU and real time usage and
#     the transclusion time report's milliseconds)
# Needs: the mediawiki package, php-fpm8.2 with php8.2-{mbstring,intl,xml,sqlite3}, curl.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=t/realapp/lib.sh
source "$here/lib.sh"
# shellcheck source=t/realapp/install.sh
source "$here/install.sh"

docroot=$ri_mw_docroot
[ -L "$docroot/index.php" ] || { echo "mediawiki.sh: $docroot/index.php missing (apt-get install mediawiki)" >&2; exit 1; }
ra_setup mediawiki

admin_pass='fephp-Admin-pass-1'
text="Saved through fe-php's real-app test: '''bold''' and [[Main Page|a link]]."

ri_mw_prepend "$tmp/prepend.php"
mkdir -p "$tmp/sessions"
ra_ini auto_prepend_file "$tmp/prepend.php"
ra_ini session.save_path "$tmp/sessions"
ra_own "$tmp/sessions"

for m in "${ra_modes[@]}"; do
    ri_mw_install "$tmp/$m" "http://127.0.0.1:${port[$m]}" "$admin_pass" || ra_fail "$m: install.php"
    ra_own "$tmp/$m/data" "$tmp/$m/cache"
    ra_param "$m" MW_CONF "$tmp/$m/LocalSettings.php"
done

ra_start_fpm
ra_start_nginx "$docroot" '
        index index.php;
        location ~ ^/(cache|images/deleted|includes|languages|maintenance|serialized|tests|vendor|config)/ { deny all; }
        location ~ \.php(/|$) {
@PHP@
        }
        location / { try_files $uri $uri/ =404; }'

ra_normalize() {
    perl -pe '
        s/[0-9a-f]{32,}\+\\\\/TOKEN+\\\\/g;                       # tokens in JSON ("+\\")
        s/[0-9a-f]{32,}\+\\(?!\\)/TOKEN+\\/g;                     # tokens in HTML/JS ("+\")
        s/("wgRequestId":)"[^"]*"/$1"ID"/g;
        s/("wgBackendResponseTime":)\d+/$1N/g;
        s/("wgUserRegistration":)\d+/$1T/g;
        s/(parser cache with key .* and timestamp )\d{14}/${1}TIME/;
        s/("newtimestamp":)"[^"]*"/$1"TIME"/g;
        s/("(?:cputime|walltime|ttl|timestamp)":)"?[^",}]*"?/$1"X"/g;
        s/("timingprofile":)\[[^\]]*\]/$1\[\]/g;
        s/(last edited on )[^,]+, at [0-9:]+/$1DATE/g;
        s/(Cached time: )\d+/$1TIME/g;
        s/(Cache expiry: )\d+/$1N/g;
        s/(CPU time usage: |Real time usage: )[0-9.]+ seconds/${1}N seconds/g;
        s/^(\s*[\d.]+%\s+)[\d.]+(\s+\d+\s)/${1}N$2/;             # transclusion time report rows
    '
}

for m in "${ra_modes[@]}"; do
    ra_http "$m" main_page GET /index.php/Main_Page
    [ "$status" = 200 ] && grep -q 'fe-php wiki' "$tmp/$m/main_page.body" || ra_note "$m" "main_page: NOT the wiki's Main_Page"
    ra_keep "$m" main_page

    ra_http "$m" login_token GET '/api.php?action=query&meta=tokens&type=login&format=json'
    token=$(php -r 'echo json_decode(file_get_contents($argv[1]))->query->tokens->logintoken ?? "";' "$tmp/$m/login_token.body")
    ra_keep "$m" login_token
    ra_http "$m" login POST /api.php --data-urlencode action=clientlogin --data-urlencode username=Admin \
        --data-urlencode "password=$admin_pass" --data-urlencode "logintoken=$token" \
        --data-urlencode "loginreturnurl=http://127.0.0.1:${port[$m]}/" --data-urlencode format=json
    ra_keep "$m" login

    ra_http "$m" csrf_token GET '/api.php?action=query&meta=tokens&format=json'
    token=$(php -r 'echo json_decode(file_get_contents($argv[1]))->query->tokens->csrftoken ?? "";' "$tmp/$m/csrf_token.body")
    ra_keep "$m" csrf_token
    ra_http "$m" edit POST /api.php --data-urlencode action=edit --data-urlencode title=Fephp_test \
        --data-urlencode "text=$text" --data-urlencode summary=fe-php --data-urlencode "token=$token" \
        --data-urlencode format=json
    ra_keep "$m" edit

    ra_http "$m" raw GET '/index.php?title=Fephp_test&action=raw'
    ra_keep "$m" raw
    ra_http "$m" page GET /index.php/Fephp_test
    ra_keep "$m" page
done

# The oracle itself must have done the job.
o=$tmp/fastcgi
grep -q '"status":"PASS"' "$o/login.body" || ra_fail "fastcgi: login did not PASS: $(head -c 300 "$o/login.body")"
grep -q '"result":"Success"' "$o/edit.body" || ra_fail "fastcgi: edit failed: $(head -c 300 "$o/edit.body")"
[ "$(cat "$o/raw.body")" = "$text" ] || ra_fail "fastcgi: raw text differs: $(head -c 300 "$o/raw.body")"
grep -q '<b>bold</b>' "$o/page.body" || ra_fail "fastcgi: rendered page lacks the text"
ra_compare
echo "mediawiki.sh: ok (fastcgi_pass, fephp_pass to php-fpm and embedded agree on $(ls "$o/out" | grep -vc summary) responses)"
