<?php
$s = (float) ($_GET['s'] ?? 1);
usleep((int) ($s * 1e6));
echo "slept $s\n";
