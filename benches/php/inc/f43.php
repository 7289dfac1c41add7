<?php
function bench_inc_f43(int $x): int
{
    return $x * 44 + 1;
}
