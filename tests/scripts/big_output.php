<?php
// Streams $_GET['mb'] megabytes in 64 KB pieces without holding them in memory.
$mb = (int) ($_GET['mb'] ?? 1);
$piece = str_repeat('0123456789abcdef', 4096);
for ($i = 0; $i < $mb * 16; $i++) { echo $piece; }
