<?php header("HTTP/1.1 200 Fine"); echo "a 200 keeps the standard reason (php-fpm sends no Status line)\n";
