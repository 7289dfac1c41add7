<?php set_time_limit(1); $x = 0; while (true) { $x++; }
