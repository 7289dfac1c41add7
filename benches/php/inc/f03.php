<?php
function bench_inc_f03(int $x): int
{
    return $x * 4 + 1;
}
