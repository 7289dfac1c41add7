<?php
function bench_inc_f19(int $x): int
{
    return $x * 20 + 1;
}
