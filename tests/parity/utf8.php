<?php header("Content-Type: text/plain; charset=utf-8"); echo "Grüße, 世界, 🚀\n";
