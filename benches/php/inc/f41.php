<?php
function bench_inc_f41(int $x): int
{
    return $x * 42 + 1;
}
