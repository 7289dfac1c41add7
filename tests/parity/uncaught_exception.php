<?php echo "before"; throw new RuntimeException("boom");
