<?php
function bench_inc_f17(int $x): int
{
    return $x * 18 + 1;
}
