<?php echo "x", $undefined ?? "", "y";
