<?php echo "partial"; exit(3); echo "never";
