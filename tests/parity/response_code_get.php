<?php echo var_export(http_response_code(), true); http_response_code(202); echo " ", http_response_code();
