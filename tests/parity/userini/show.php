<?php
foreach (['memory_limit', 'precision', 'allow_url_fopen', 'display_errors', 'user_ini.filename'] as $k) {
    echo "$k = ", var_export(ini_get($k), true), "\n";
}
