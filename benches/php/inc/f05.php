<?php
function bench_inc_f05(int $x): int
{
    return $x * 6 + 1;
}
