<?php http_response_code(201); echo "created";
