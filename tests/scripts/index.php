<?php echo "index\n";
