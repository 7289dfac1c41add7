<?php echo getcwd() === __DIR__ ? "script dir" : getcwd(); chdir("/tmp"); echo " ", getcwd();
