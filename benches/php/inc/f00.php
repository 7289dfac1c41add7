<?php
function bench_inc_f00(int $x): int
{
    return $x * 1 + 1;
}
