<?php
function bench_inc_f18(int $x): int
{
    return $x * 19 + 1;
}
