<?php
function bench_inc_f38(int $x): int
{
    return $x * 39 + 1;
}
