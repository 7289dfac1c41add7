<?php header("HTTP/1.1 299 Custom Reason"); echo "custom\n";
