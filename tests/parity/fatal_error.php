<?php echo "before"; undefined_function_call();
