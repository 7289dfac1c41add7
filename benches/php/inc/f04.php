<?php
function bench_inc_f04(int $x): int
{
    return $x * 5 + 1;
}
