#!/usr/bin/env bash
# Installs the Debian packages fe-php needs to build and test (as root; idempotent: prints
# nothing and touches nothing when everything is already installed).
set -euo pipefail

packages=(
  build-essential pkg-config
  php8.2-fpm libphp8.2-embed php8.2-dev php8.2-opcache php8.2-sqlite3
  libclang-dev libpcre2-dev zlib1g-dev libssl-dev
  libtest-base-perl libtest-longstring-perl libtext-diff-perl liburi-perl libwww-perl
  libipc-run-perl liblist-moreutils-perl
  wrk valgrind golang-go curl python3
  dokuwiki
  wordpress wordpress-theme-twentytwentythree mediawiki mariadb-server
  php8.2-mbstring php8.2-intl php8.2-xml php8.2-mysql php8.2-curl php8.2-gd php8.2-zip
  php8.2-apcu
  php-symfony-http-foundation php-symfony-routing php-symfony-dependency-injection
  php-symfony-event-dispatcher php-symfony-config
  nginx nginx-dev lintian
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -y -qq)
apt-get "${apt_opts[@]}" update >/dev/null
apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
# nginx (for scripts/test-deb.sh: Debian's /usr/sbin/nginx and nginx-dev's sources) is only run by
# the tests, on private prefixes and ports. If its postinst just started the system service, stop
# it again (it was not running before: the package was not installed).
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  invoke-rc.d nginx stop >/dev/null 2>&1 || true
fi
