<?php header("Status: 451 Not Here"); echo "a Status header's reason\n";
