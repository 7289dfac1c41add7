<?php
function bench_inc_f20(int $x): int
{
    return $x * 21 + 1;
}
