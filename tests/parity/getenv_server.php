<?php echo getenv("REQUEST_METHOD"), " ", getenv("SCRIPT_NAME"), " ", var_export(getenv("HTTP_X_PARITY"), true);
