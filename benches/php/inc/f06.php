<?php
function bench_inc_f06(int $x): int
{
    return $x * 7 + 1;
}
