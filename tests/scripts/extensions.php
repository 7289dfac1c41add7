<?php
// Which configuration the PHP behind this request runs with (tests/embedded_workers.rs).
$ext = [];
foreach (['mbstring', 'intl', 'mysqli', 'xml'] as $e) {
    $ext[] = $e . '=' . (extension_loaded($e) ? 1 : 0);
}
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
echo php_ini_loaded_file() ?: '', '|', implode(' ', $ext), '|opcache=', $status && $status['opcache_enabled'] ? 1 : 0,
    '|hard_timeout=', ini_get('hard_timeout'), "\n";
