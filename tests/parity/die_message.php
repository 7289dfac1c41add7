<?php echo "before "; die("bye");
