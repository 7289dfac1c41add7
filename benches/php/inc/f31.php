<?php
function bench_inc_f31(int $x): int
{
    return $x * 32 + 1;
}
