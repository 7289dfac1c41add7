<?php
function bench_inc_f07(int $x): int
{
    return $x * 8 + 1;
}
