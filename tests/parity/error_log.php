<?php error_log("parity error_log line"); echo "logged";
