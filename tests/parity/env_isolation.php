<?php echo count($_ENV), " ", isset($_SERVER["PATH"]) ? "path-leak" : "no-path";
