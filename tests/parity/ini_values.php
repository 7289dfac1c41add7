<?php
// Per-request ini (php-fpm pool php_value[] / php_admin_value[]; embedded [php.values] /
// [php.admin_values], nginx fephp_php_value / fephp_php_admin_value).
foreach (['memory_limit', 'upload_max_filesize', 'open_basedir', 'precision'] as $k) {
    echo "$k = ", var_export(ini_get($k), true), "\n";
}
echo "ini_set admin open_basedir: ", var_export(ini_set('open_basedir', '/'), true), "\n";
echo "ini_set admin precision: ", var_export(ini_set('precision', '3'), true), "\n";
echo "ini_set plain memory_limit: ", var_export(ini_set('memory_limit', '100M'), true), "\n";
echo "memory_limit now = ", ini_get('memory_limit'), "\n";
echo "precision in use: ", 1 / 3, "\n";
echo "outside open_basedir: ", var_export(@file_get_contents('/etc/hostname'), true), "\n";
echo "inside open_basedir: ", strlen(file_get_contents(__FILE__)) > 0 ? "readable" : "not readable", "\n";
foreach ($_FILES as $name => $f) {
    echo "upload $name: error ", $f['error'], "\n";
}
