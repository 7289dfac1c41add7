<?php
function bench_inc_f14(int $x): int
{
    return $x * 15 + 1;
}
