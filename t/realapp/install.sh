# Installing the real applications (sourced, not run): shared by the real-app tests
# (t/realapp/wordpress.sh, mediawiki.sh) and the benchmark (benches/compare.sh), so both serve
# the same installs. Nothing here starts a web server or depends on lib.sh: every function
# takes its directories and ports as arguments, prints what went wrong on stderr and returns
# non-zero; the caller decides whether that fails a test or marks a workload failed.
#
# MariaDB (private instance; root: mariadbd runs as mysql, so DIR must be traversable):
#   ri_mariadb_start DIR        mariadb-install-db into DIR/db, mariadbd on the unix socket
#                               DIR/dbrun/mysql.sock (no TCP); sets ri_db_sock, ri_db_pid
#   ri_mariadb_stop             TERM, up to 10 s, then KILL (safe under set -e, in a trap)
#   ri_sql ARGS...              the mariadb client as root on ri_db_sock
# WordPress (Debian's package: code in /usr/share/wordpress, content in /var/lib/wordpress):
#   ri_can_unshare              true when a private mount namespace is possible (root + unshare -m)
#   ri_wp_databases PASS DB...  user wp@localhost (password PASS) with all rights on each DB
#   ri_wp_etc DIR               a private copy of /etc/wordpress in DIR, bind-mounted over it
#                               (call it inside `unshare -m --propagation private` only)
#   ri_wp_config ETC NAME DB PASS SOCK   ETC/config-NAME.php, read by Debian's wp-config.php
#                               when the server sets the WORDPRESS_CONFIG param to NAME
#   ri_wp_docroot DIR           the document root: one symlink per entry of /usr/share/wordpress,
#                               wp-content -> /var/lib/wordpress/wp-content (Debian's layout;
#                               the server needs `disable_symlinks off`, nginx's default)
#   ri_wp_form TITLE PASS       sets the array ri_wp_form: the fields of the installer's POST
#                               (wp-admin/install.php?step=2), as curl arguments
#   ri_wp_install URL TITLE PASS   GET URL/wp-admin/install.php, then the POST; checks "Success!"
# MediaWiki (Debian's package, SQLite):
#   ri_mw_prepend FILE          writes the auto_prepend_file that defines MW_CONFIG_FILE from the
#                               MW_CONF param, so each server picks its own LocalSettings.php and
#                               the machine's /etc/mediawiki is only read
#   ri_mw_install DIR URL PASS  maintenance/install.php --dbtype sqlite: DIR/LocalSettings.php,
#                               databases in DIR/data, cache DIR/cache, $wgServer URL, admin
#                               "Admin" with PASS, site "fe-php wiki"; then our LocalSettings
#                               additions ($wgUsePathInfo pinned, see below)

ri_wp=/usr/share/wordpress
ri_mw=/usr/share/mediawiki
ri_mw_docroot=/var/lib/mediawiki

ri_mariadb_start() {
    local dir=$1
    mariadb-install-db --no-defaults --datadir="$dir/db" --user=mysql --skip-test-db \
        --auth-root-authentication-method=socket >"$dir/db-install.out" 2>&1 || {
        echo "mariadb-install-db: $(tail -5 "$dir/db-install.out")" >&2
        return 1
    }
    mkdir -m 0755 "$dir/dbrun"       # socket, pid and log: written by mariadbd as mysql
    chown mysql: "$dir/dbrun"
    ri_db_sock=$dir/dbrun/mysql.sock
    mariadbd --no-defaults --datadir="$dir/db" --socket="$ri_db_sock" --skip-networking \
        --user=mysql --pid-file="$dir/dbrun/mariadb.pid" --log-error="$dir/dbrun/mariadb.log" \
        --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --skip-log-bin \
        >"$dir/dbrun/mariadbd.out" 2>&1 &
    ri_db_pid=$!
    for _ in $(seq 150); do
        [ -S "$ri_db_sock" ] && return 0
        kill -0 "$ri_db_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "mariadbd did not start: $(tail -5 "$dir/dbrun/mariadb.log" 2>/dev/null)" >&2
    return 1
}

ri_mariadb_stop() {
    [ -n "${ri_db_pid:-}" ] || return 0
    kill -TERM "$ri_db_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$ri_db_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ri_db_pid" 2>/dev/null || true
    wait "$ri_db_pid" 2>/dev/null || true
    ri_db_pid=""
}

ri_sql() { mariadb --no-defaults -S "$ri_db_sock" -u root "$@"; }

ri_can_unshare() { [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; }

ri_wp_databases() {
    local pass=$1 db
    shift
    {
        echo "CREATE USER IF NOT EXISTS 'wp'@'localhost' IDENTIFIED BY '$pass';"
        for db in "$@"; do
            echo "CREATE DATABASE $db; GRANT ALL ON $db.* TO 'wp'@'localhost';"
        done
    } | ri_sql || { echo "creating the WordPress databases failed" >&2; return 1; }
}

ri_wp_etc() {
    local dir=$1
    cp -a /etc/wordpress "$dir" && mount --bind "$dir" /etc/wordpress
}

ri_wp_config() {
    local etc=$1 name=$2 db=$3 pass=$4 sock=$5
    cat >"$etc/config-$name.php" <<PHP
<?php
// fe-php ($name); read by Debian's /usr/share/wordpress/wp-config.php
define('DB_NAME', '$db');
define('DB_USER', 'wp');
define('DB_PASSWORD', '$pass');
define('DB_HOST', 'localhost:$sock');
define('WP_HTTP_BLOCK_EXTERNAL', true);   // no network (update checks, embeds)
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT',
          'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as \$k) {
    define(\$k, "fe-php real-app test \$k");
}
define('DISABLE_WP_CRON', true);          // no loopback requests behind the client's back
define('AUTOMATIC_UPDATER_DISABLED', true);
PHP
}

ri_wp_docroot() {
    local dir=$1 f
    mkdir "$dir" || return 1
    for f in "$ri_wp"/* "$ri_wp"/.htaccess; do
        [ "$(basename "$f")" = wp-content ] || ln -s "$f" "$dir/$(basename "$f")"
    done
    ln -s /var/lib/wordpress/wp-content "$dir/wp-content"
}

ri_wp_form() {
    local title=$1 pass=$2
    ri_wp_form=(--data-urlencode "weblog_title=$title"
        --data-urlencode user_name=admin --data-urlencode "admin_password=$pass"
        --data-urlencode "admin_password2=$pass" --data-urlencode pw_weak=1
        --data-urlencode admin_email=admin@example.invalid --data-urlencode blog_public=0
        --data-urlencode language= --data-urlencode 'Submit=Install WordPress')
}

# The installer probes pretty permalinks with loopback requests to URL: the server must be able
# to serve a second request while the installer runs (else a 5 s timeout per probe, and plain
# permalinks).
ri_wp_install() {
    local url=$1 title=$2 pass=$3 out
    curl -sS -o /dev/null --max-time 60 "$url/wp-admin/install.php" || return 1
    ri_wp_form "$title" "$pass"
    out=$(curl -sS --max-time 120 "${ri_wp_form[@]}" "$url/wp-admin/install.php?step=2") || return 1
    grep -q 'Success!' <<<"$out" || { echo "WordPress install failed: $(head -c 300 <<<"$out")" >&2; return 1; }
}

ri_mw_prepend() {
    cat >"$1" <<'PHP'
<?php
// fe-php: this server's LocalSettings.php (from the MW_CONF param).
if (!empty($_SERVER['MW_CONF'])) {
    define('MW_CONFIG_FILE', $_SERVER['MW_CONF']);
}
PHP
}

ri_mw_install() {
    local dir=$1 url=$2 pass=$3
    mkdir -p "$dir"
    php "$ri_mw/maintenance/install.php" --dbtype=sqlite --dbpath="$dir/data" \
        --dbname=wiki --server="$url" --scriptpath= --confpath="$dir" \
        --pass="$pass" --lang=en "fe-php wiki" Admin >"$dir/install.out" 2>&1 || {
        echo "MediaWiki install.php: $(tail -5 "$dir/install.out")" >&2
        return 1
    }
    cat >>"$dir/LocalSettings.php" <<PHP

// fe-php
\$wgShowExceptionDetails = true;
// MediaWiki's default depends on PHP_SAPI: no "cgi" in it (mod_php, embedded fe-php: "fe-php")
// means /index.php/Title links, php-fpm's "fpm-fcgi" means index.php?title=Title. Pinned so
// that every server makes the same links (and plain fastcgi_pass exercises PATH_INFO too).
\$wgUsePathInfo = true;
\$wgCacheDirectory = "$dir/cache";
PHP
    mkdir -p "$dir/cache"
}
