<?php
function bench_inc_f37(int $x): int
{
    return $x * 38 + 1;
}
