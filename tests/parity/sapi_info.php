<?php echo PHP_SAPI === php_sapi_name() ? "consistent" : "mismatch", " ", ini_get("display_errors"), " ", ini_get("memory_limit"), " ", ini_get("output_buffering");
