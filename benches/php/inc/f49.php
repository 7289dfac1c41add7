<?php
function bench_inc_f49(int $x): int
{
    return $x * 50 + 1;
}
