<?php echo "out"; header("X-Late: 1"); echo " ", var_export(headers_sent(), true);
