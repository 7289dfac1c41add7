<?php
function bench_inc_f11(int $x): int
{
    return $x * 12 + 1;
}
