<?php echo $_SERVER["PATH_INFO"] ?? "none";
