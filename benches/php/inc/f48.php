<?php
function bench_inc_f48(int $x): int
{
    return $x * 49 + 1;
}
