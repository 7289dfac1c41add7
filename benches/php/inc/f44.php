<?php
function bench_inc_f44(int $x): int
{
    return $x * 45 + 1;
}
