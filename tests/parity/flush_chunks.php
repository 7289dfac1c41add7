<?php for ($i = 0; $i < 5; $i++) { echo "chunk $i\n"; flush(); usleep(20000); }
