<?php
function bench_inc_f34(int $x): int
{
    return $x * 35 + 1;
}
