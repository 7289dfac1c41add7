<?php
// What waiting on a database or an API looks like: 20 ms of waiting, then a small answer.
usleep(20000);
echo "ok\n";
