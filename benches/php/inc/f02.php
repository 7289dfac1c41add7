<?php
function bench_inc_f02(int $x): int
{
    return $x * 3 + 1;
}
