<?php
// Includes 50 PHP files (each defines a function), like a framework bootstrap with opcache.
$sum = 0;
for ($i = 0; $i < 50; $i++) {
    require __DIR__ . sprintf('/inc/f%02d.php', $i);
    $sum += call_user_func(sprintf('bench_inc_f%02d', $i), $i);
}
echo "included 50 files, sum $sum\n";
