<?php echo var_export($_SERVER["PATH_INFO"] ?? null, true), " ", $_SERVER["SCRIPT_NAME"], " ", $_SERVER["PHP_SELF"];
