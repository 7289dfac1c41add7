<?php
// Probe used by compare.sh: is opcache serving this configuration?
$s = function_exists('opcache_get_status') ? @opcache_get_status(false) : false;
echo ($s && !empty($s['opcache_enabled'])) ? "on\n" : "off\n";
