<?php
function bench_inc_f15(int $x): int
{
    return $x * 16 + 1;
}
