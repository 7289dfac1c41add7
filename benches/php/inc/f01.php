<?php
function bench_inc_f01(int $x): int
{
    return $x * 2 + 1;
}
