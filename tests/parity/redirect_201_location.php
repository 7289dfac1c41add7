<?php http_response_code(201); header("Location: /created/1"); echo "with location";
