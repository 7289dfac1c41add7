<?php
// A slow request (a report, an export): one second. The `mixed` workload keeps 4 of these in
// flight while it measures hello.php.
sleep(1);
echo "slept\n";
