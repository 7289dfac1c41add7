<?php $s = function_exists("opcache_get_status") ? opcache_get_status(false) : false; echo var_export(is_array($s) && $s["opcache_enabled"], true);
