<?php header("Location: /hello.php", true, 301); echo "moved";
