<?php
function bench_inc_f16(int $x): int
{
    return $x * 17 + 1;
}
