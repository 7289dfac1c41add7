<?php header("X-A: 1"); setcookie("k", "v"); echo json_encode(headers_list());
