<?php http_response_code(428); echo "PHP's table: Precondition Required\n";
