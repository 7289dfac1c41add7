<?php
// A 1 MB response, written in 64 KB pieces.
header('Content-Type: application/octet-stream');
$chunk = str_repeat('0123456789abcdef', 4096);
for ($i = 0; $i < 16; $i++) {
    echo $chunk;
}
