<?php
function bench_inc_f33(int $x): int
{
    return $x * 34 + 1;
}
